// SharedArrayBuffer layouts shared by the main thread and the workers.
//
// Control words (Int32Array): STOP is set by the main thread to end every worker loop.
// Stats: one Float64Array per worker, written only by that worker, summed by the main
// thread on read. Row per port id: rx/tx packets and bytes, then one counter per drop
// reason (dataplane/drops.ts), then per-worker loop counters after the last port row.

import { NUM_DROP_REASONS } from '../dataplane/drops';
import type { EgressCounters } from '../dataplane/egress';

export const MAX_PORTS = 1024;
export const MAX_NETS = 4096;

export const CTRL_STOP = 0;
/** Bumped (and notified) by a worker after it punts frames to the main thread (DNS). */
export const CTRL_PUNT = 1;
/**
 * Adaptive busy-polling (`vsw daemon --busy-poll USEC`, 0 = off): once batches come closer
 * together than USEC, a worker keeps polling without sleeping until USEC after the last one
 * (workers/loop.ts). Set by the main thread; read by the workers every iteration.
 */
export const CTRL_BUSY_POLL_US = 2;
/** The largest --busy-poll: one second. */
export const MAX_BUSY_POLL_US = 1_000_000;
export const CTRL_WORDS = 4;

export const ST_RX_PKTS = 0;
export const ST_RX_BYTES = 1;
export const ST_TX_PKTS = 2;
export const ST_TX_BYTES = 3;
export const ST_DROP0 = 4;
export const ST_ROW = ST_DROP0 + NUM_DROP_REASONS;

/** The port rows of a worker's stats, as egress counts into them (tx, drops). */
export function portRows(stats: Float64Array): EgressCounters {
  return { stats, row: ST_ROW, txPackets: ST_TX_PKTS, txBytes: ST_TX_BYTES, drop0: ST_DROP0 };
}

// Per-worker counters, after the port rows.
export const WK_ITERATIONS = 0;   // poll loop iterations
export const WK_BATCHES = 1;      // receive batches that returned frames
export const WK_FRAMES = 2;       // frames through the pipeline
export const WK_BUSY_MS = 3;      // time spent outside poll(), milliseconds
export const WK_SPIN_MS = 4;      // time spent busy-polling (--busy-poll), milliseconds
export const WK_WORDS = 8;

// Per-stage counters, after the worker counters: frames each stage ended (gave a verdict
// to), in the order of dataplane/stages/order.ts.
export const MAX_STAGES = 32;

// DNS queries the worker answered itself, by result (dataplane/dns/answer.ts DNS_RESULTS
// order), after the stage counters.
export const DNS_WORDS = 8;

export function statsBytes(maxPorts = MAX_PORTS): number {
  return (maxPorts * ST_ROW + WK_WORDS + MAX_STAGES + DNS_WORDS) * 8;
}

export function dnsCountersOffset(maxPorts = MAX_PORTS): number {
  return maxPorts * ST_ROW + WK_WORDS + MAX_STAGES;
}

export function stageCountersOffset(maxPorts = MAX_PORTS): number {
  return maxPorts * ST_ROW + WK_WORDS;
}

export function workerCountersOffset(maxPorts = MAX_PORTS): number {
  return maxPorts * ST_ROW;
}
