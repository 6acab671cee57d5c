// Reading the workers' counters on the main thread: each worker writes only its own stats
// (workers/shared.ts layout); a reading is the sum over the workers, taken at any moment
// (counters only grow, so a sum is never torn by more than the frames in flight).

import { DROP_REASONS } from '../dataplane/drops';
import { STAGE_NAMES } from '../dataplane/stages/order';
import type { WorkerSlot } from './pool';
import {
  DNS_WORDS, dnsCountersOffset, MAX_PORTS, ST_DROP0, ST_ROW, ST_RX_BYTES, ST_RX_PKTS, ST_TX_BYTES, ST_TX_PKTS,
  WK_BATCHES, WK_BUSY_MS, WK_FRAMES, WK_ITERATIONS, WK_SPIN_MS, stageCountersOffset, workerCountersOffset,
} from './shared';

export interface PortCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  drops: Record<string, number>;
}

export interface WorkerCounters {
  worker: number;
  ports: number;
  iterations: number;
  batches: number;
  frames: number;
  busyMs: number;
  /** Time spent busy-polling (--busy-poll): the CPU it cost, in ms. */
  spinMs: number;
}

/** Counters of one port, summed over the workers. */
export function portCounters(slots: readonly Pick<WorkerSlot, 'stats'>[], id: number): PortCounters {
  const c: PortCounters = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: {} };
  const row = id * ST_ROW;
  for (const w of slots) {
    c.rxPackets += w.stats[row + ST_RX_PKTS];
    c.rxBytes += w.stats[row + ST_RX_BYTES];
    c.txPackets += w.stats[row + ST_TX_PKTS];
    c.txBytes += w.stats[row + ST_TX_BYTES];
    DROP_REASONS.forEach((r, i) => {
      const v = w.stats[row + ST_DROP0 + i];
      if (v) c.drops[r] = (c.drops[r] ?? 0) + v;
    });
  }
  return c;
}

/** A port id is reused: its row starts from zero in every worker. */
export function clearPortCounters(slots: readonly WorkerSlot[], id: number): void {
  for (const w of slots) w.stats.fill(0, id * ST_ROW, (id + 1) * ST_ROW);
}

/** Frames each stage ended (gave a verdict to), summed over the workers. */
export function stageCounters(slots: readonly WorkerSlot[]): { stage: string; ended: number }[] {
  const off = stageCountersOffset(MAX_PORTS);
  return STAGE_NAMES.map((stage, i) => ({
    stage, ended: slots.reduce((sum, w) => sum + w.stats[off + i], 0),
  }));
}

export function workerCounters(slots: readonly WorkerSlot[]): WorkerCounters[] {
  const off = workerCountersOffset(MAX_PORTS);
  return slots.map((w, i) => ({
    worker: i, ports: w.rxPorts,
    iterations: w.stats[off + WK_ITERATIONS], batches: w.stats[off + WK_BATCHES],
    frames: w.stats[off + WK_FRAMES], busyMs: w.stats[off + WK_BUSY_MS], spinMs: w.stats[off + WK_SPIN_MS],
  }));
}

/** DNS queries the workers answered themselves, by result (DNS_RESULTS order), summed. */
export function workerDnsCounters(slots: readonly WorkerSlot[]): number[] {
  const off = dnsCountersOffset(MAX_PORTS);
  const out = new Array<number>(DNS_WORDS).fill(0);
  for (const w of slots) for (let i = 0; i < DNS_WORDS; i++) out[i] += w.stats[off + i];
  return out;
}
