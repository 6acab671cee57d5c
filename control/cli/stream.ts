// The daemon's streams (events, live traces, captures): GET one until it ends or
// Ctrl-C/SIGTERM, and read the lost-records trailer at its end.

import * as http from 'http';
import { Client, unreachableMessage } from '../client';
import { DaemonUnreachableError, errorFromJson } from '../errors';
import { LOST_TRAILER } from '../types';

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
  return new Promise<void>((resolve, reject) => {
    const req = http.get({ socketPath: c.socketPath, path }, (res) => {
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
  });
}
