// `vsw capture` and live `vsw trace`: sessions that receive frames (or traced frames) from
// the workers' capture rings. Each session has an id 0..31; the workers get the whole set of
// sessions whenever it changes (workers/taps.ts) and tag every record with the bits of the
// sessions it is for. While any session is open, the rings are drained every 20 ms and each
// record handed to its sessions.

import type { DataplaneHost } from '../workers/host';
import { DIR_TRACE } from '../workers/capture-ring';
import { MAX_TAP_SESSIONS, type TapNames, type TapSpec } from '../workers/taps';
import { compileFilter, FilterError } from '../dataplane/filter';
import type { TraceResult } from '../dataplane/trace';
import { ConflictError, InvalidArgumentError } from './errors';

const DRAIN_MS = 20;

/** What captures need of the dataplane host: hand the workers the sessions, drain the rings. */
export type CaptureHost = Pick<DataplaneHost, 'setTaps' | 'drainCaptures'>;

export interface TapSession {
  stop(): Promise<void>;
  /** Records the workers could not store (rings full) while this session was open. */
  lost(): number;
}

/** A captured frame: its bytes, when, the port it was on and which way (DIR_RX received, DIR_TX sent). */
export type OnFrame = (frame: Uint8Array, timeMs: number, port: number, dir: number) => void;
type OnTrace = (r: TraceResult) => void;

interface Session {
  spec: TapSpec;
  onFrame?: OnFrame;
  onTrace?: OnTrace;
}

/** A filter the workers will accept, or a clear 400. */
export function checkFilter(filter: string): void {
  try {
    compileFilter(filter);
  } catch (e) {
    if (e instanceof FilterError) throw new InvalidArgumentError(e.message);
    throw e;
  }
}

export class CaptureHub {
  private readonly host: CaptureHost;
  private readonly names: () => TapNames;
  private readonly sessions = new Map<number, Session>();
  private timer: NodeJS.Timeout | undefined;
  private pushing: Promise<void> = Promise.resolve();
  /** Records lost by the rings since the start (all sessions), and by slow readers. */
  private ringLost = 0;
  private readerLost = 0;

  constructor(host: CaptureHost, names: () => TapNames = () => ({ ports: [], nets: [] })) {
    this.host = host;
    this.names = names;
  }

  /** A port's frames (-1: every port's): on the wire (stage -1, both directions) or after pipeline stage `stage`. */
  openCapture(port: number, o: { stage?: number; filter?: string }, onFrame: OnFrame): Promise<TapSession> {
    return this.open({ kind: 'capture', port, net: -1, stage: o.stage ?? -1, filter: o.filter ?? '', count: 0 }, { onFrame });
  }

  /** Traces of the frames that arrive on `port` (or in `net`; -1 = any) and match `filter`. */
  openTrace(o: { port: number; net: number; filter: string; count: number }, onTrace: OnTrace): Promise<TapSession> {
    return this.open({ kind: 'trace', port: o.port, net: o.net, stage: -1, filter: o.filter, count: o.count }, { onTrace });
  }

  private async open(a: Omit<TapSpec, 'sid'>, handlers: { onFrame?: OnFrame; onTrace?: OnTrace }): Promise<TapSession> {
    checkFilter(a.filter);
    let sid = 0;
    while (this.sessions.has(sid)) sid++;
    if (sid >= MAX_TAP_SESSIONS) throw new ConflictError(`at most ${MAX_TAP_SESSIONS} captures and traces at once`);
    const s: Session = { spec: { ...a, sid }, ...handlers };
    this.sessions.set(sid, s);
    try {
      await this.push();
    } catch (e) {
      this.sessions.delete(sid);
      throw e;
    }
    if (!this.timer) {
      this.timer = setInterval(() => this.drain(), DRAIN_MS);
      this.timer.unref();
    }
    let stopped = false;
    const base = this.ringLost;
    let lostAtStop = -1;
    return {
      lost: () => (lostAtStop >= 0 ? lostAtStop : this.ringLost - base),
      stop: async (): Promise<void> => {
        if (stopped) return;
        stopped = true;
        this.drain();
        lostAtStop = this.ringLost - base;
        this.sessions.delete(sid);
        if (this.sessions.size === 0 && this.timer) { clearInterval(this.timer); this.timer = undefined; }
        await this.push().catch(() => undefined);
      },
    };
  }

  /** Records lost so far: rings full, and records a slow reader could not take (for metrics). */
  lostTotal(): number {
    return this.ringLost + this.readerLost;
  }

  /** A reader (an API stream) skipped a record because its client was not keeping up. */
  readerSkipped(n = 1): void {
    this.readerLost += n;
  }

  /** Tell the workers the current set (one change at a time, in order). */
  private push(): Promise<void> {
    const next = this.pushing.then(() => this.host.setTaps([...this.sessions.values()].map((s) => s.spec), this.names()));
    this.pushing = next.catch(() => undefined);
    return next;
  }

  private drain(): void {
    const { frames, lost } = this.host.drainCaptures();
    this.ringLost = lost;
    for (const f of frames) {
      let trace: TraceResult | undefined;
      for (const [sid, s] of this.sessions) {
        if ((f.tag & (2 ** sid)) === 0) continue;
        if (f.dir === DIR_TRACE) {
          if (!s.onTrace) continue;
          trace ??= JSON.parse(Buffer.from(f.data).toString()) as TraceResult;
          s.onTrace(trace);
        } else if (s.onFrame) {
          s.onFrame(f.data, f.timeMs, f.port, f.dir);
        }
      }
    }
  }
}
