// The daemon's HTTP/JSON API on a Unix socket: routes -> Engine (see docs/DESIGN.md,
// "API routes"). A bad request never crashes the daemon: every failure becomes an error
// answer { error: { code, message } } with the VswError's status (500 for anything else).

import * as fs from 'fs';
import * as http from 'http';
import { pcapHeader, pcapRecord } from './pcap';
import * as net from 'net';
import * as path from 'path';
import { ConflictError, InvalidArgumentError, NotFoundError, SystemError, VswError } from './errors';
import { checkAliasesJson, checkLinksJson, checkPublishJson } from './publish';
import type { ContainerCreate, DnsOrder, Engine, NetworkCreate, StreamSession, TrunkCreate } from './types';

/** Largest request body accepted (413 beyond). */
/** Frames one dry-run trace request may carry. */
export const MAX_TRACE_FRAMES = 1000;
export const MAX_BODY_BYTES = 1024 * 1024;

export interface ApiServer {
  /** Stop accepting, finish (or after a grace period cut) open requests, remove the socket. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Socket setup

export async function startApi(engine: Engine, socketPath: string): Promise<ApiServer> {
  const dir = path.dirname(socketPath);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new SystemError(`cannot create the API socket directory ${dir}: ${(e as Error).message}`);
  }
  await removeStaleSocket(socketPath);

  const server = http.createServer((req, res) => {
    handle(engine, req, res).catch((e) => {
      // handle() answers every error itself; this is the last line of defence.
      logInternal(req, e);
      try { res.destroy(); } catch { /* ignore */ }
    });
  });
  server.on('clientError', (err, socket) => {
    // Malformed HTTP: answer 400 if we still can; never let it reach 'error'.
    if (socket.writable && (err as NodeJS.ErrnoException).code !== 'ECONNRESET') {
      const body = JSON.stringify({ error: { code: 'E_INVALID_ARGUMENT', message: 'malformed HTTP request' } });
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    } else {
      socket.destroy();
    }
  });

  await listen(server, socketPath);
  let ino: number | undefined;
  try {
    fs.chmodSync(socketPath, 0o600);
    ino = fs.statSync(socketPath).ino;
  } catch (e) {
    await new Promise<void>((r) => server.close(() => r()));
    throw new SystemError(`cannot secure the API socket ${socketPath}: ${(e as Error).message}`);
  }

  let closing: Promise<void> | undefined;
  return {
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        const grace = setTimeout(() => server.closeAllConnections(), 2000);
        grace.unref();
        server.close(() => {
          clearTimeout(grace);
          // Remove the socket file only if it is still ours (not replaced by another daemon).
          try {
            if (ino !== undefined && fs.statSync(socketPath).ino === ino) fs.unlinkSync(socketPath);
          } catch { /* already gone */ }
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

function listen(server: http.Server, socketPath: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(e.code === 'EADDRINUSE'
        ? new ConflictError(`the API socket ${socketPath} is already in use`)
        : new SystemError(`cannot listen on the API socket ${socketPath}: ${e.message}`));
    };
    server.once('error', onError);
    // The socket is created by bind() inside listen(): a restrictive umask closes the window
    // before the chmod below (umask cannot be changed in worker threads: then rely on chmod).
    let oldMask: number | undefined;
    try { oldMask = process.umask(0o177); } catch { /* worker thread */ }
    try {
      server.listen(socketPath, () => {
        server.off('error', onError);
        server.on('error', (e) => console.error(`vsw api: server error: ${e.message}`));
        resolve();
      });
    } finally {
      if (oldMask !== undefined) process.umask(oldMask);
    }
  });
}

/** A socket file left by a daemon that died is removed; a live one is a conflict. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new SystemError(`cannot check the API socket ${socketPath}: ${(e as Error).message}`);
  }
  if (!st.isSocket()) {
    throw new ConflictError(`${socketPath} exists and is not a socket; remove it or choose another --socket`);
  }
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.connect(socketPath);
    const done = (v: boolean): void => { s.destroy(); resolve(v); };
    s.setTimeout(1000, () => done(true)); // something holds it but is slow: treat as alive
    s.once('connect', () => done(true));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'));
  });
  if (alive) throw new ConflictError(`a vsw daemon is already listening on ${socketPath}`);
  try {
    fs.unlinkSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SystemError(`cannot remove the stale API socket ${socketPath}: ${(e as Error).message}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Requests

/** Protocol-level errors without a class of their own in errors.ts (405, 413). */
class HttpError extends VswError {
  allow?: string;
}

function methodNotAllowed(method: string, pathname: string, allowed: string[]): VswError {
  const e = new HttpError(`${method} is not allowed on ${pathname} (allowed: ${allowed.join(', ')})`, 'E_INVALID_ARGUMENT', 405);
  e.allow = allowed.join(', ');
  return e;
}

async function handle(engine: Engine, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  let pathname = '?';
  try {
    const url = new URL(req.url ?? '/', 'http://vsw');
    pathname = url.pathname;
    const segs = splitPath(pathname);
    const body = await readBody(req);
    const route = (allowed: string[]): void => {
      if (!allowed.includes(method)) throw methodNotAllowed(method, pathname, allowed);
    };
    const json = (): Record<string, unknown> => parseJsonObject(body);

    const [a, name, action, ...rest] = segs;
    if (rest.length > 0) throw notFound(pathname);

    if (a === 'info' && segs.length === 1) {
      route(['GET']);
      return send(res, 200, engine.info());
    }

    if (a === 'networks') {
      if (segs.length === 1) {
        route(['GET', 'POST']);
        if (method === 'GET') return send(res, 200, engine.listNetworks());
        return send(res, 201, await engine.createNetwork(networkCreate(json())));
      }
      if (segs.length === 2) {
        route(['GET', 'DELETE']);
        if (method === 'GET') return send(res, 200, engine.inspectNetwork(name));
        await engine.removeNetwork(name);
        return send(res, 204);
      }
      if (action === 'connect') {
        route(['POST']);
        const b = json();
        checkFields(b, ['container', 'ip', 'aliases']);
        const container = reqString(b, 'container');
        const opts = compact<{ ip?: string; aliases?: string[] }>({
          ip: optString(b, 'ip'),
          aliases: b.aliases === undefined || b.aliases === null ? undefined : checkAliasesJson(b.aliases),
        });
        return send(res, 200, await engine.connectWith(name, container, opts));
      }
      if (action === 'disconnect') {
        route(['POST']);
        const b = json();
        checkFields(b, ['container']);
        await engine.disconnect(name, reqString(b, 'container'));
        return send(res, 204);
      }
      throw notFound(pathname);
    }

    if (a === 'containers') {
      if (segs.length === 1) {
        route(['GET', 'POST']);
        if (method === 'GET') return send(res, 200, engine.listContainers());
        return send(res, 201, await engine.createContainer(containerCreate(json())));
      }
      if (segs.length === 2) {
        route(['GET', 'DELETE']);
        if (method === 'GET') return send(res, 200, engine.inspectContainer(name));
        await engine.removeContainer(name, flag(url.searchParams.get('force'), 'force'));
        return send(res, 204);
      }
      if (action === 'exited') {
        route(['POST']);
        const b = json();
        checkFields(b, ['code']);
        const code = b.code;
        if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 255) {
          throw new InvalidArgumentError("field 'code' must be an integer from 0 to 255");
        }
        await engine.containerExited(name, code);
        return send(res, 204);
      }
      throw notFound(pathname);
    }

    if (a === 'trunks') {
      if (segs.length === 1) {
        route(['GET', 'POST']);
        if (method === 'GET') return send(res, 200, engine.listTrunks());
        return send(res, 201, await engine.addTrunk(trunkCreate(json())));
      }
      if (segs.length === 2) {
        route(['DELETE']);
        await engine.removeTrunk(name);
        return send(res, 204);
      }
      throw notFound(pathname);
    }

    if (a === 'fdb' && segs.length === 1) {
      route(['GET']);
      const netName = url.searchParams.get('net');
      return send(res, 200, engine.fdb(netName ? netName : undefined));
    }

    if (a === 'neigh' && segs.length === 1) {
      route(['GET']);
      const netName = url.searchParams.get('net');
      return send(res, 200, engine.neigh(netName ? netName : undefined));
    }

    if (a === 'conntrack' && segs.length === 1) {
      route(['GET']);
      return send(res, 200, engine.conntrack());
    }

    if (a === 'trace' && name === 'dry-run' && segs.length === 2) {
      route(['POST']);
      const b = json();
      checkFields(b, ['port', 'frames']);
      const frames = optStringArray(b, 'frames') ?? [];
      if (frames.length > MAX_TRACE_FRAMES) throw new InvalidArgumentError(`at most ${MAX_TRACE_FRAMES} frames per trace`);
      return send(res, 200, engine.traceDryRun(reqString(b, 'port'), frames));
    }

    if (a === 'events' && segs.length === 1) {
      route(['GET']);
      // Newline-delimited JSON, one event per line, until the client goes away.
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('');
      const unsubscribe = engine.subscribeEvents((e) => { res.write(`${JSON.stringify(e)}\n`); });
      res.on('close', unsubscribe);
      return;
    }

    if (a === 'trace' && segs.length === 1) {
      route(['GET']);
      // Live trace: NDJSON, one TraceResult per frame, until `count` or the client goes away.
      const count = countParam(url);
      const opt = (k: string): string | undefined => url.searchParams.get(k) || undefined;
      await serveStream(res, count,
        (emit) => engine.startTrace({ port: opt('port'), network: opt('net'), filter: opt('filter'), count },
          (r) => emit(`${JSON.stringify(r)}\n`)),
        () => ({ 'content-type': 'application/x-ndjson' }), '');
      return;
    }

    if (a === 'capture' && segs.length === 1) {
      route(['GET']);
      const port = url.searchParams.get('port');
      if (!port) throw new InvalidArgumentError("query parameter 'port' is required");
      await serveStream(res, countParam(url),
        (emit) => engine.startCapture(port, (frame, timeMs) => emit(pcapRecord(frame, timeMs)),
          { stage: url.searchParams.get('stage') || undefined, filter: url.searchParams.get('filter') || undefined }),
        (session) => ({ 'content-type': 'application/vnd.tcpdump.pcap', 'x-vsw-port': session.port }), pcapHeader());
      return;
    }

    if (a === 'stats' && segs.length === 1) {
      route(['GET']);
      return send(res, 200, engine.stats());
    }

    throw notFound(pathname);
  } catch (e) {
    sendError(req, res, method, pathname, e);
  }
}

/** Trailer of capture and trace streams: records lost (rings full, or the client too slow). */
export const LOST_TRAILER = 'x-vsw-lost';

/**
 * Writes records to a streaming response. While the client is not reading (the socket's
 * buffer is full) records are skipped and counted rather than piling up in the daemon's
 * memory. write() says whether the record was sent.
 */
function streamWriter(res: http.ServerResponse, onSkip: (n: number) => void): { write(chunk: string | Uint8Array): boolean; skipped(): number } {
  let paused = false;
  let skipped = 0;
  return {
    write(chunk) {
      if (paused || res.destroyed) { skipped++; onSkip(1); return false; }
      if (!res.write(chunk)) { paused = true; res.once('drain', () => { paused = false; }); }
      return true;
    },
    skipped: () => skipped,
  };
}

/**
 * A capture or live trace as a streaming response: `start` opens the session with an emit
 * function; records are written (with back-pressure, streamWriter) until `count` of them
 * (0 = no limit) or the client goes away; then the session stops and the stream ends with
 * the lost count as a trailer.
 */
async function serveStream<S extends StreamSession>(res: http.ServerResponse, count: number,
  start: (emit: (record: string | Uint8Array) => void) => Promise<S>,
  headers: (session: S) => http.OutgoingHttpHeaders, first: string | Uint8Array): Promise<void> {
  let n = 0;
  let done = false;
  let session: S | undefined;
  const out = streamWriter(res, (k) => session?.skipped?.(k));
  const finish = (): void => {
    if (done || !session) return;
    done = true;
    const s = session;
    void s.stop().finally(() => endWithLost(res, s.lost() + out.skipped()));
  };
  // Records arrive from a timer, so none can come before the header below is written.
  session = await start((record) => {
    if (done) return;
    if (out.write(record) && count > 0 && ++n >= count) finish();
  });
  res.writeHead(200, { ...headers(session), trailer: LOST_TRAILER });
  res.write(first);
  res.on('close', finish);
}

/** End a stream, telling the client how many records were lost on the way. */
function endWithLost(res: http.ServerResponse, lost: number): void {
  if (res.writableEnded || res.destroyed) return;
  res.addTrailers({ [LOST_TRAILER]: String(lost) });
  res.end();
}

/** ?count=N: a whole number (0 or absent = no limit). */
function countParam(url: URL): number {
  const text = url.searchParams.get('count') ?? '0';
  if (!/^\d{1,9}$/.test(text)) throw new InvalidArgumentError("query parameter 'count' must be a whole number");
  return Number(text);
}

function notFound(pathname: string): VswError {
  return new NotFoundError(`no such API route: ${pathname}`);
}

/** '/networks/my%20net/connect' -> ['networks', 'my net', 'connect'] (one trailing '/' allowed). */
function splitPath(pathname: string): string[] {
  let p = pathname;
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p === '/' || p === '') return [];
  const segs = p.slice(1).split('/');
  return segs.map((s) => {
    if (s === '') throw notFound(pathname);
    try {
      return decodeURIComponent(s);
    } catch {
      throw new InvalidArgumentError(`malformed URL encoding in ${pathname}`);
    }
  });
}

/** The whole body as a string (max MAX_BODY_BYTES; beyond: drain it, then 413). */
function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      if (!tooLarge) chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) {
        reject(new HttpError(`request body too large (max ${MAX_BODY_BYTES} bytes)`, 'E_INVALID_ARGUMENT', 413));
      } else {
        resolve(Buffer.concat(chunks).toString('utf8'));
      }
    });
    req.on('error', reject);
  });
}

function parseJsonObject(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InvalidArgumentError('request body must be a JSON object');
  }
  return v as Record<string, unknown>;
}

function checkFields(b: Record<string, unknown>, known: string[]): void {
  for (const k of Object.keys(b)) {
    if (!known.includes(k)) throw new InvalidArgumentError(`unknown field '${k}' (expected: ${known.join(', ')})`);
  }
}

function reqString(b: Record<string, unknown>, field: string): string {
  const v = b[field];
  if (v === undefined || v === null) throw new InvalidArgumentError(`field '${field}' is required`);
  if (typeof v !== 'string') throw new InvalidArgumentError(`field '${field}' must be a string`);
  if (v === '') throw new InvalidArgumentError(`field '${field}' must not be empty`);
  return v;
}

function optString(b: Record<string, unknown>, field: string): string | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new InvalidArgumentError(`field '${field}' must be a string`);
  return v;
}

function optBool(b: Record<string, unknown>, field: string): boolean | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`field '${field}' must be a boolean`);
  return v;
}

function optInt(b: Record<string, unknown>, field: string): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new InvalidArgumentError(`field '${field}' must be an integer`);
  return v;
}

function optStringArray(b: Record<string, unknown>, field: string): string[] | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new InvalidArgumentError(`field '${field}' must be an array of strings`);
  }
  return v as string[];
}

/** Drop absent optional fields so the engine sees exactly what the client sent. */
function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}

const DNS_ORDERS: readonly DnsOrder[] = ['rotate', 'random', 'fixed'];

function networkCreate(b: Record<string, unknown>): NetworkCreate {
  checkFields(b, ['name', 'subnet', 'gateway', 'ipRange', 'mtu', 'internal', 'icc', 'dnsOrder', 'vlan']);
  const dnsOrder = optString(b, 'dnsOrder');
  if (dnsOrder !== undefined && !DNS_ORDERS.includes(dnsOrder as DnsOrder)) {
    throw new InvalidArgumentError(`field 'dnsOrder' must be one of ${DNS_ORDERS.join(', ')}`);
  }
  return compact<NetworkCreate>({
    name: reqString(b, 'name'),
    subnet: optString(b, 'subnet'),
    gateway: optString(b, 'gateway'),
    ipRange: optString(b, 'ipRange'),
    mtu: optInt(b, 'mtu'),
    internal: optBool(b, 'internal'),
    icc: optBool(b, 'icc'),
    dnsOrder: dnsOrder as DnsOrder | undefined,
    vlan: optInt(b, 'vlan'),
  });
}

function trunkCreate(b: Record<string, unknown>): TrunkCreate {
  checkFields(b, ['device', 'vlans', 'native', 'tap']);
  return compact<TrunkCreate>({
    device: reqString(b, 'device'),
    vlans: optString(b, 'vlans'),
    native: optInt(b, 'native'),
    tap: optBool(b, 'tap'),
  });
}

/** publish/aliases/links are checked here (shapes, port ranges, DNS names): the engine gets
 *  PortMappings with hostIp and proto filled in. */
function containerCreate(b: Record<string, unknown>): ContainerCreate {
  checkFields(b, ['name', 'network', 'ip', 'cmd', 'detach', 'rm', 'publish', 'aliases', 'links']);
  const opt = <T>(field: string, check: (v: unknown) => T): T | undefined =>
    (b[field] === undefined || b[field] === null ? undefined : check(b[field]));
  return compact<ContainerCreate>({
    name: reqString(b, 'name'),
    network: optString(b, 'network'),
    ip: optString(b, 'ip'),
    cmd: optStringArray(b, 'cmd'),
    detach: optBool(b, 'detach'),
    rm: optBool(b, 'rm'),
    publish: opt('publish', checkPublishJson),
    aliases: opt('aliases', checkAliasesJson),
    links: opt('links', checkLinksJson),
  });
}

/** Query flag: absent/''/0/false/no -> false; 1/true/yes -> true. */
function flag(v: string | null, name: string): boolean {
  if (v === null) return false;
  const s = v.toLowerCase();
  if (s === '' || s === '0' || s === 'false' || s === 'no') return false;
  if (s === '1' || s === 'true' || s === 'yes') return true;
  throw new InvalidArgumentError(`query parameter '${name}' must be 1 or 0`);
}

// ---------------------------------------------------------------------------------------
// Answers

function send(res: http.ServerResponse, status: number, data?: unknown): void {
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

function sendError(req: http.IncomingMessage, res: http.ServerResponse, method: string, pathname: string, e: unknown): void {
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

function logInternal(req: http.IncomingMessage, e: unknown, what = `${req.method} ${req.url}`): void {
  const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
  console.error(`vsw api: internal error on ${what}: ${detail}`);
}
