// `vsw inject`: a capture's frames enter the switch as if port P had received them. The
// daemon reads the file (control/pcap-read.ts, in chunks: memory stays bounded), keeps the
// frames the --filter matches (dataplane/filter.ts), paces them (the capture's own timing,
// a rate in frames per second, or as fast as the worker takes them) and hands them in
// batches of at most MAX_BATCH to the worker that receives from P (workers/host.ts inject),
// which runs them through the whole pipeline like received frames (workers/loop.ts inject).
//
// The file is read once to count and check it before anything is sent: a damaged file is an
// error, not half an injection. Reading gives the daemon's event loop a turn every
// SCAN_YIELD records, and sending waits for each batch's answer: a big file does not
// stall the API or the DNS server. Frames a capture cannot carry (cut by its snap length,
// shorter than an Ethernet header, longer than a receive slot) are counted and not sent.
// The tally is per injection, from the pipeline's verdicts of exactly these frames: sent on
// (unicast or flood), taken by the switch (e.g. an ARP reply to a gateway), dropped by reason.
// Egress drops after the verdict (a full socket) show in the port's `vsw stats`, not here.

import { compileFilter, FilterError, type CompiledFilter } from '../dataplane/filter';
import { DROP_REASONS } from '../dataplane/drops';
import { MAX_BATCH } from '../workers/io';
import { copyBytes } from '../dataplane/wire/bytes';
import { maxInjectLen } from '../workers/loop';
import type { InjectTally } from '../workers/protocol';
import { noneUncarriable, scanPcapAsync, PcapReader, SCAN_YIELD, uncarriable, type Uncarriable } from './pcap-read';
import { InvalidArgumentError } from './errors';

export const INJECT_TIMINGS = ['original', 'rate', 'top-speed'] as const;
export type InjectTiming = (typeof INJECT_TIMINGS)[number];

/** POST /inject's body. */
export interface InjectSpec {
  port: string;
  /** The capture, an absolute path the daemon can read. */
  pcap: string;
  timing: InjectTiming;
  /** Frames per second, with timing 'rate'. */
  rate?: number;
  /** Send the capture this many times (default 1). */
  loop?: number;
  filter?: string;
}

/** A progress line of the answer stream (every PROGRESS_MS while it runs). */
export interface InjectProgress {
  type: 'progress';
  /** Records handled (sent, filtered out or not carriable) of `total` (records x loops). */
  done: number;
  total: number;
  sent: number;
  /** Frames sent per second so far. */
  rate: number;
  /** Seconds left at that pace (the capture's own timing: its remaining span). */
  leftSeconds: number;
}

/** The last line of the answer stream. */
export interface InjectSummary {
  type: 'summary';
  port: string;
  total: number;
  sent: number;
  /** Not matched by --filter. */
  filteredOut: number;
  /** Not sent: the capture cannot carry them. */
  notSent: Record<Uncarriable, number>;
  forwarded: number;
  /** Taken by the switch itself (ARP replies to a gateway, DNS queries it answered...). */
  local: number;
  /** Held by the port's `in` impairment: decided when released (see vsw stats). */
  impaired: number;
  /** Dropped by the pipeline, by reason (only non-zero reasons). */
  dropped: Record<string, number>;
  seconds: number;
  /** True when the client went away (Ctrl-C) before the end. */
  stopped: boolean;
}

const PROGRESS_MS = 500;
/** Waits shorter than this are not slept (timers are not that precise). */
const MIN_SLEEP_MS = 2;

export type InjectInto = (frames: Uint8Array, lens: number[]) => Promise<InjectTally>;

/** Check a spec's values (400 on anything wrong); returns the compiled filter. */
export function checkInjectSpec(s: InjectSpec): CompiledFilter | null {
  if (!INJECT_TIMINGS.includes(s.timing)) throw new InvalidArgumentError(`timing must be one of ${INJECT_TIMINGS.join(', ')}`);
  if (s.timing === 'rate' && !(typeof s.rate === 'number' && s.rate > 0 && Number.isFinite(s.rate))) {
    throw new InvalidArgumentError('timing rate needs a rate: frames per second, more than 0');
  }
  if (s.loop !== undefined && !(Number.isInteger(s.loop) && s.loop >= 1 && s.loop <= 1_000_000)) {
    throw new InvalidArgumentError('loop must be an integer from 1 to 1000000');
  }
  if (!s.pcap.startsWith('/')) throw new InvalidArgumentError('pcap must be an absolute path (the daemon reads it)');
  if (!s.filter) return null;
  try {
    return compileFilter(s.filter);
  } catch (e) {
    if (e instanceof FilterError) throw new InvalidArgumentError(e.message);
    throw e;
  }
}

/**
 * Run one injection: `into` takes a batch (the port's worker), `progress` is told how it goes,
 * `stopped()` says the client went away. Throws InvalidArgumentError on a bad file before
 * anything is sent.
 */
export async function runInject(spec: InjectSpec, portName: string, into: InjectInto,
  progress: (p: InjectProgress) => void, stopped: () => boolean, clock: () => number = () => performance.now()): Promise<InjectSummary> {
  const filter = checkInjectSpec(spec);
  const loops = spec.loop ?? 1;
  const scan = await scanPcapAsync(spec.pcap);
  const total = scan.records * loops;
  const span = scan.lastMs - scan.firstMs;
  const sum: InjectSummary = {
    type: 'summary', port: portName, total, sent: 0, filteredOut: 0, notSent: noneUncarriable(),
    forwarded: 0, local: 0, impaired: 0, dropped: {}, seconds: 0, stopped: false,
  };
  const tally: InjectTally = { forwarded: 0, local: 0, impaired: 0, drops: [] };
  const batch = new Uint8Array(MAX_BATCH * maxInjectLen > 4 << 20 ? 4 << 20 : MAX_BATCH * maxInjectLen);
  let used = 0;
  let lens: number[] = [];
  const t0 = clock();
  let nextProgress = t0 + PROGRESS_MS;
  let done = 0;
  // Original timing: the capture's span still ahead (ms), for the time left.
  let spanLeft = 0;
  const flush = async (): Promise<void> => {
    if (lens.length === 0) return;
    const t = await into(batch.subarray(0, used), lens);
    tally.forwarded += t.forwarded;
    tally.local += t.local;
    tally.impaired += t.impaired;
    t.drops.forEach((n, i) => { if (n) tally.drops[i] = (tally.drops[i] ?? 0) + n; });
    sum.sent += lens.length;
    used = 0;
    lens = [];
  };
  const say = (): void => {
    const elapsed = (clock() - t0) / 1000;
    const rate = elapsed > 0 ? sum.sent / elapsed : 0;
    const left = spec.timing === 'original' ? spanLeft / 1000 : spec.timing === 'rate' ? (total - done) / spec.rate! : rate > 0 ? (total - done) / rate : 0;
    progress({ type: 'progress', done, total, sent: sum.sent, rate: Math.round(rate), leftSeconds: Math.round(left * 10) / 10 });
  };
  let sentTotal = 0; // frames handed in so far, over every loop (the rate's schedule)
  let sinceTurn = 0; // records read since the event loop last had a turn (filtered-out runs never await a batch)
  for (let k = 0; k < loops && !sum.stopped; k++) {
    const r = PcapReader.open(spec.pcap);
    try {
      let first = -1;
      let loopStart = clock();
      for (let f = r.next(); f !== null; f = r.next()) {
        if (stopped()) { sum.stopped = true; break; }
        if (++sinceTurn === SCAN_YIELD) { sinceTurn = 0; await new Promise((res) => setImmediate(res)); }
        done++;
        const why = uncarriable(f, maxInjectLen);
        if (why !== undefined) { sum.notSent[why]++; continue; }
        if (filter !== null && !filter.match(f.buf, f.at, f.len)) { sum.filteredOut++; continue; }
        // When this frame is due, in ms of clock(); -1: now.
        let due = -1;
        const t = f.sec * 1000 + f.nsec / 1e6;
        if (spec.timing === 'original') {
          if (first < 0) { first = t; loopStart = clock(); }
          due = loopStart + Math.max(0, t - first);
          spanLeft = Math.max(0, scan.lastMs - t) + (loops - k - 1) * span;
        } else if (spec.timing === 'rate') {
          due = t0 + (sentTotal * 1000) / spec.rate!;
        }
        const wait = due - clock();
        if (wait >= MIN_SLEEP_MS || lens.length === MAX_BATCH || used + f.len > batch.length) {
          await flush();
          const w = due - clock();
          if (w >= MIN_SLEEP_MS) await new Promise((res) => setTimeout(res, w));
        }
        copyBytes(batch, used, f.buf, f.at, f.len);
        used += f.len;
        lens.push(f.len);
        sentTotal++;
        if (clock() >= nextProgress) {
          nextProgress = clock() + PROGRESS_MS;
          say();
        }
      }
      await flush();
    } finally {
      r.close();
    }
  }
  say();
  sum.forwarded = tally.forwarded;
  sum.local = tally.local;
  sum.impaired = tally.impaired;
  tally.drops.forEach((n, i) => { if (n) sum.dropped[DROP_REASONS[i]] = n; });
  sum.seconds = Math.round((clock() - t0) / 10) / 100;
  return sum;
}
