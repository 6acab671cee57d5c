// The API's answers: JSON with its status, and every failure as { error: { code, message } }
// with the VswError's status (500, logged, for anything else).

import * as http from 'http';
import { NotFoundError, VswError } from '../errors';


/** Protocol-level errors without a class of their own in errors.ts (405, 413). */
export class HttpError extends VswError {
  allow?: string;
}

export function methodNotAllowed(method: string, pathname: string, allowed: string[]): VswError {
  const e = new HttpError(`${method} is not allowed on ${pathname} (allowed: ${allowed.join(', ')})`, 'E_INVALID_ARGUMENT', 405);
  e.allow = allowed.join(', ');
  return e;
}

export function notFound(pathname: string): VswError {
  return new NotFoundError(`no such API route: ${pathname}`);
}


export function send(res: http.ServerResponse, status: number, data?: unknown): void {
  if (res.headersSent) return;
  if (status === 204 || data === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const body = Buffer.from(JSON.stringify(data));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

export function sendError(req: http.IncomingMessage, res: http.ServerResponse, method: string, pathname: string, e: unknown): void {
  let err: VswError;
  if (e instanceof VswError) {
    err = e;
  } else {
    logInternal(req, e, `${method} ${pathname}`);
    err = new VswError(e instanceof Error ? e.message : String(e), 'E_INTERNAL', 500);
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpError && err.allow) res.setHeader('Allow', err.allow);
  // After a 413 the client may still be sending: close the connection once answered.
  if (err.status === 413) res.setHeader('Connection', 'close');
  send(res, err.status, { error: { code: err.code, message: err.message } });
}

export function logInternal(req: http.IncomingMessage, e: unknown, what = `${req.method} ${req.url}`): void {
  const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
  console.error(`vsw api: internal error on ${what}: ${detail}`);
}
