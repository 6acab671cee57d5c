// The daemon's streams (events, live traces, captures) as HTTP responses, with back-pressure
// (docs/STREAMS.md). Each client has a bounded queue: the bytes its response holds that the
// kernel has not taken yet (res.writableLength). While that queue is at its bound a record
// is skipped and counted instead of being queued, so a client that stops reading costs the
// daemon at most STREAM_QUEUE_BYTES (+ the socket's kernel buffer), never more.
//
// What the client is told:
// - NDJSON streams (events, trace): when the queue has drained, one line
//   {"time":ISO,"type":"skipped","count":N} says how many records were skipped meanwhile;
// - every stream that ends (trace, capture) carries the total lost (rings full + skipped)
//   as the x-vsw-lost trailer.
// The daemon's totals per stream kind are streamSkipped() (metrics: vsw_stream_skipped_total).

import * as http from 'http';
import { LOST_TRAILER, type InjectProgress, type InjectSummary, type StreamSession, type VswEvent } from '../types';
import { VswError } from '../errors';

/** Bytes one client's response may hold before its records are skipped. */
export const STREAM_QUEUE_BYTES = 256 * 1024;

export const STREAM_KINDS = ['events', 'trace', 'capture'] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

const skippedTotals: Record<StreamKind, number> = { events: 0, trace: 0, capture: 0 };

/** Records skipped for slow readers since the daemon started, per stream kind (monotonic). */
export function streamSkipped(): Record<StreamKind, number> {
  return { ...skippedTotals };
}

/** The line an NDJSON stream carries when a slow reader has caught up. */
export function skippedLine(count: number): string {
  return `${JSON.stringify({ time: new Date().toISOString(), type: 'skipped', count })}\n`;
}

export interface BoundedWriterOptions {
  /** The queue's bound in bytes (default STREAM_QUEUE_BYTES; at least the socket's high-water mark). */
  queueBytes?: number;
  /** What to write once the queue has drained after records were skipped (NDJSON streams). */
  notice?: (skipped: number) => string | Uint8Array;
  /** Told of each skipped record (the engine's capture counters). */
  onSkip?: (n: number) => void;
}

/**
 * One client's bounded queue. offer() writes a record if the queue has room, else skips and
 * counts it; once the response drains, the notice (if any) tells the client how many it
 * missed. `make` is called only for records that are written (no JSON for skipped ones).
 */
export class BoundedWriter {
  private full = false;
  private sinceNotice = 0;
  private total = 0;
  private readonly queueBytes: number;

  constructor(private readonly res: http.ServerResponse, private readonly kind: StreamKind,
    private readonly o: BoundedWriterOptions = {}) {
    this.queueBytes = o.queueBytes ?? STREAM_QUEUE_BYTES;
  }

  /** Write the record or skip it; true when it was written. */
  offer(make: () => string | Uint8Array): boolean {
    const res = this.res;
    if (res.destroyed || res.writableEnded || this.full) return this.skip();
    res.write(make());
    // At the bound with the socket asking to wait: skip until 'drain' (which then follows).
    if (res.writableLength >= this.queueBytes && res.writableNeedDrain) {
      this.full = true;
      res.once('drain', this.onDrain);
    }
    return true;
  }

  /** Records skipped on this stream so far. */
  skipped(): number {
    return this.total;
  }

  private skip(): false {
    this.total++;
    this.sinceNotice++;
    skippedTotals[this.kind]++;
    this.o.onSkip?.(1);
    return false;
  }

  private readonly onDrain = (): void => {
    this.full = false;
    if (this.sinceNotice > 0 && this.o.notice && !this.res.destroyed && !this.res.writableEnded) {
      this.res.write(this.o.notice(this.sinceNotice));
    }
    this.sinceNotice = 0;
  };
}

/**
 * GET /events: NDJSON, one VswEvent a line, until the client goes away. The first line is
 * {"time":ISO,"type":"ready"}, written once the subscription is made: a client that has
 * read it sees every event from then on.
 */
export function serveEvents(res: http.ServerResponse, subscribe: (fn: (e: VswEvent) => void) => () => void,
  o: Omit<BoundedWriterOptions, 'notice'> = {}): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  const out = new BoundedWriter(res, 'events', { ...o, notice: skippedLine });
  const unsubscribe = subscribe((e) => { out.offer(() => `${JSON.stringify(e)}\n`); });
  res.on('close', unsubscribe);
  res.write(`${JSON.stringify({ time: new Date().toISOString(), type: 'ready' })}\n`);
}

/**
 * A capture or live trace as a streaming response: `start` opens the session with an emit
 * function; records are written (through a BoundedWriter) until `count` of them (0 = no
 * limit) or the client goes away; then the session stops and the stream ends with the lost
 * count as a trailer. NDJSON streams (ndjson: true) also carry the skipped line inline.
 */
export async function serveStream<S extends StreamSession>(res: http.ServerResponse, kind: StreamKind, count: number,
  start: (emit: (record: string | Uint8Array) => void) => Promise<S>,
  headers: (session: S) => http.OutgoingHttpHeaders, first: string | Uint8Array,
  o: Omit<BoundedWriterOptions, 'notice' | 'onSkip'> & { ndjson?: boolean } = {}): Promise<void> {
  let n = 0;
  let done = false;
  // Assigned once, below; the callbacks above read it before then.
  // eslint-disable-next-line prefer-const
  let session: S | undefined;
  const out = new BoundedWriter(res, kind, {
    queueBytes: o.queueBytes, notice: o.ndjson ? skippedLine : undefined, onSkip: (k) => session?.skipped?.(k),
  });
  const finish = (): void => {
    if (done || !session) return;
    done = true;
    const s = session;
    void s.stop().finally(() => endWithLost(res, s.lost() + out.skipped()));
  };
  // Records arrive from a timer, so none can come before the header below is written.
  session = await start((record) => {
    if (done) return;
    if (out.offer(() => record) && count > 0 && ++n >= count) finish();
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

/**
 * POST /inject: NDJSON, a progress line now and then and the summary last. The status line
 * waits for the first line, so a bad request (unknown port, unreadable or damaged file) is
 * an ordinary error answer; a failure after that is a last {"type":"error"} line. The client
 * going away stops the injection (between batches). Progress lines are not queued behind a
 * slow reader: one is dropped while the previous one is still waiting.
 */
export async function serveInject(res: http.ServerResponse,
  run: (progress: (p: InjectProgress) => void, stopped: () => boolean) => Promise<InjectSummary>): Promise<void> {
  let gone = false;
  res.on('close', () => { gone = true; });
  const head = (): void => { if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-ndjson' }); };
  let summary: InjectSummary;
  try {
    summary = await run((p) => {
      head();
      if (!res.writableNeedDrain && !gone) res.write(`${JSON.stringify(p)}\n`);
    }, () => gone);
  } catch (e) {
    if (!res.headersSent) throw e;
    const message = e instanceof Error ? e.message : String(e);
    if (!gone) res.end(`${JSON.stringify({ type: 'error', code: e instanceof VswError ? e.code : 'E_INTERNAL', message })}\n`);
    return;
  }
  head();
  if (!gone) res.end(`${JSON.stringify(summary)}\n`);
}
