// The daemon's streams (events, live traces, captures): GET one until it ends or
// Ctrl-C/SIGTERM, and read the lost-records trailer at its end.
//
// Back-pressure (docs/STREAMS.md): the CLI reads the socket only as fast as its own stdout
// drains. When stdout is a pipe nobody reads, the response is paused, the socket stops being
// read, and the daemon's per-client bound takes over (it skips and counts, and says so with
// a `skipped` line once we read again). Nothing piles up in the CLI.

import * as http from 'http';
import { Client, unreachableMessage } from '../client';
import { DaemonUnreachableError, errorFromJson } from '../errors';
import { LineReader } from '../lines';
import { LOST_TRAILER } from '../types';

/** Where the CLI's output goes; its back-pressure decides when the stream is read. */
type Sink = Pick<NodeJS.WriteStream, 'writableNeedDrain' | 'once'>;

/**
 * Hand every line of `res` to onLine, pausing `res` while `sink` (stdout) is not drained:
 * at most one chunk's lines are ever waiting in stdout's buffer beyond its high-water mark.
 */
export function followLines(res: http.IncomingMessage, onLine: (line: string) => void, sink: Sink = process.stdout): void {
  const reader = new LineReader(onLine);
  let waiting = false;
  res.on('data', (d: Buffer) => {
    reader.push(d);
    if (!waiting && sink.writableNeedDrain) {
      waiting = true;
      res.pause();
      sink.once('drain', () => { waiting = false; res.resume(); });
    }
  });
}

/** What the CLI says on stderr when the daemon skipped records for it (a `skipped` line). */
export function skippedText(count: unknown, what: string): string {
  return `vsw: ${Number(count)} ${what} skipped (slow reader)\n`;
}

/** The daemon's count of records lost on the way (a trailer of capture/trace streams). */
export function lostText(res: http.IncomingMessage): string {
  const n = Number(res.trailers?.[LOST_TRAILER] ?? 0);
  return n > 0 ? `; ${n} lost: the capture could not keep up (filter, or write to a faster sink)` : '';
}

/**
 * GET a stream from the daemon (events, capture) until it ends or Ctrl-C/SIGTERM. `open` is
 * given the response to consume and returns what to do at the end. An error answer becomes
 * the daemon's error; a daemon that cannot be reached says so.
 */
export function streamGet(c: Client, path: string, open: (res: http.IncomingMessage) => () => Promise<void> | void): Promise<void> {
  return streamRequest(c, 'GET', path, undefined, open);
}

/** streamGet with a method and a JSON body (POST /inject). */
export function streamRequest(c: Client, method: string, path: string, body: unknown,
  open: (res: http.IncomingMessage) => () => Promise<void> | void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
    const req = http.request({ socketPath: c.socketPath, path, method, headers }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8'); // a character split across chunks stays whole
        res.on('data', (d: string) => { body += d; });
        res.on('end', () => {
          let parsed: unknown;
          try { parsed = JSON.parse(body); } catch { parsed = undefined; }
          reject(errorFromJson(res.statusCode ?? 500, parsed));
        });
        return;
      }
      const finish = open(res);
      const stop = (): void => { req.destroy(); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        Promise.resolve(finish()).then(() => resolve(), reject);
      };
      for (const ev of ['end', 'aborted', 'close', 'error']) res.on(ev, end);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') return; // our own Ctrl-C
      reject(['ENOENT', 'ECONNREFUSED', 'EACCES'].includes(e.code ?? '') ? new DaemonUnreachableError(unreachableMessage(c.socketPath)) : e);
    });
    req.end(payload);
  });
}
