// Captures and live traces as streaming responses, with back-pressure: a client that does
// not read loses records (counted) instead of filling the daemon's memory; the stream ends
// with the lost count as a trailer.

import * as http from 'http';
import { LOST_TRAILER, type StreamSession } from '../types';

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
export async function serveStream<S extends StreamSession>(res: http.ServerResponse, count: number,
  start: (emit: (record: string | Uint8Array) => void) => Promise<S>,
  headers: (session: S) => http.OutgoingHttpHeaders, first: string | Uint8Array): Promise<void> {
  let n = 0;
  let done = false;
  // Assigned once, below; the callbacks above read it before then.
  // eslint-disable-next-line prefer-const
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
