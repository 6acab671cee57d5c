// Link impairment of one port in one direction, after netem (tc-netem(8), sch_netem.c): a
// pure state machine that the worker loop (live) and an offline replay (virtual clock) drive
// the same way. Nothing here reads a clock or Math.random(): every time is a parameter and
// every random choice comes from the Prng this object owns, seeded from the spec.
//
//   offer(buf, off, len, hdr, now)   a frame arrives (buf[off, off+len), `hdr` bytes of
//                                    virtio-net header first): it is lost, or copied into
//                                    the delay queue (twice when duplicated), due later;
//   nextDeadline()                   when the next frame is due (Infinity: none waits);
//   due(now, sink, max)              hand every frame due at `now` to sink(), in due order.
//
// `now` and every time here are milliseconds (a float; the live worker uses its
// performance.now(), a replay the capture's timestamps).
//
// Per frame, in netem's order: duplicate? (one more copy), lost? (one copy fewer: nothing
// left = dropped), corrupt? (the first copy gets one random bit flipped), then each copy's
// delay (delay + jitter from the distribution); reorder? (netem's rule: once `gap - 1`
// frames were delayed, each frame is sent at once with probability `reorder`, jumping the
// queue); rate (a token bucket of `burst` bytes filled at `rate`: a frame leaves when the
// bucket holds its bytes, and never before the frame in front of it); then the queue
// (frames and bytes bounded: full = impair-queue-full, or impair-rate when the frame was
// waiting for the rate). Every frame is copied, even one sent at once: the receive buffer it
// came in is reused by the next batch. A 64 KB TCP segment (a GSO frame) is one frame: delayed
// whole, counted once, its bytes all charged to the rate.

import { DROP } from '../drops';
import { finishPartialChecksum } from '../wire/checksum';
import { VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE } from '../wire/vnet';
import { LossGenerator, sampleDelay } from './models';
import { Prng } from '../rng';
import { DelayQueue } from './queue';
import type { ImpairSpec } from './spec';

// What offer() did to the last frame (Impairment.lastFlags), for traces.
export const IMP_DELAYED = 1;
export const IMP_LOST = 2;
export const IMP_DUPLICATED = 4;
export const IMP_CORRUPTED = 8;
export const IMP_REORDERED = 16;
export const IMP_QUEUE_FULL = 32;
export const IMP_RATE_FULL = 64;

const LOSS = DROP['impair-loss'];
const DUPLICATE = DROP['impair-duplicate'];
const CORRUPT = DROP['impair-corrupt'];
const QUEUE_FULL = DROP['impair-queue-full'];
const RATE_FULL = DROP['impair-rate'];

/** Receives a released frame: pool[off, off+len) (the same header as offered), the delay it had, what was done (IMP_*). */
export type ReleaseSink = (pool: Uint8Array, off: number, len: number, delayMs: number, flags: number) => void;

/** What impairment did to a frame on a port, for a live trace (dataplane/trace.ts impairSteps). */
export interface ImpairNote {
  port: number;
  dir: 'in' | 'out';
  flags: number;
  delay: number;
}

export class Impairment {
  readonly rng: Prng;
  readonly queue: DelayQueue;
  /** What offer() did to the last frame (IMP_* bits) and the delay of its first copy, ms. */
  lastFlags = 0;
  lastDelay = 0;
  private readonly loss: LossGenerator;
  /** Frames delayed since the last reordered one (netem's counter, for gap). */
  private counter = 0;
  // The token bucket: bytes in it as of `bucketAt` (ms); bytes per ms.
  private tokens = 0;
  private bucketAt = -Infinity;
  private readonly bytesPerMs: number;
  private readonly burst: number;

  /** `count(reason)`: a drop reason of dataplane/drops.ts happened to a frame (the caller's counters). */
  constructor(readonly spec: ImpairSpec, private readonly count: (reason: number) => void) {
    this.rng = new Prng(spec.seed);
    this.loss = new LossGenerator(spec.loss, spec.lossModel);
    this.queue = new DelayQueue(spec.limit, spec.limitBytes);
    this.bytesPerMs = spec.rate / 8000;
    this.burst = spec.burst;
  }

  /** A frame arrives at `now`: lost, or queued (each copy) to leave when due. */
  offer(buf: Uint8Array, off: number, len: number, hdr: number, now: number): void {
    const s = this.spec;
    const rng = this.rng;
    let flags = 0;
    let copies = 1;
    if (rng.chance(s.duplicate)) { copies++; flags |= IMP_DUPLICATED; this.count(DUPLICATE); }
    if (s.loss > 0 || s.lossModel !== undefined) {
      if (this.loss.lost(rng)) { copies--; flags |= IMP_LOST; this.count(LOSS); }
    }
    let corrupt = copies > 0 && rng.chance(s.corrupt);
    this.lastDelay = 0;
    for (let k = 0; k < copies; k++) {
      let due = now;
      if (s.reorder > 0 && this.counter >= s.gap - 1 && rng.chance(s.reorder)) {
        this.counter = 0;
        flags |= IMP_REORDERED;
      } else {
        this.counter++;
        due = now + sampleDelay(rng, s.delay, s.jitter, s.distribution);
      }
      const frameBytes = len - hdr;
      if (!this.queue.fits(len)) {
        const rateBound = this.bytesPerMs > 0 && this.waitsForRate(due, frameBytes);
        this.count(rateBound ? RATE_FULL : QUEUE_FULL);
        flags |= rateBound ? IMP_RATE_FULL : IMP_QUEUE_FULL;
        continue;
      }
      if (this.bytesPerMs > 0 && (flags & IMP_REORDERED) === 0) due = this.shape(due, frameBytes);
      const slot = this.queue.push(buf, off, len, due, due - now);
      let tag = due > now ? IMP_DELAYED : 0;
      if (k === 0) this.lastDelay = due - now;
      if (corrupt) {
        corrupt = false;
        this.corrupt(this.queue.pool, this.queue.off[slot], len, hdr);
        tag |= IMP_CORRUPTED;
        this.count(CORRUPT);
      }
      if ((flags & IMP_REORDERED) !== 0 && due === now) tag |= IMP_REORDERED;
      if (k > 0) tag |= IMP_DUPLICATED;
      this.queue.tag[slot] = tag;
      flags |= tag;
    }
    this.lastFlags = flags;
  }

  /** When the next frame is due, ms; Infinity when the queue is empty. */
  nextDeadline(): number {
    return this.queue.nextDue();
  }

  /** Release up to `max` frames due at `now`, in due order. Returns how many. */
  due(now: number, sink: ReleaseSink, max = Infinity): number {
    const q = this.queue;
    let n = 0;
    while (n < max) {
      const s = q.popDue(now);
      if (s < 0) break;
      sink(q.pool, q.off[s], q.len[s], q.note[s], q.tag[s]);
      q.free(s);
      n++;
    }
    return n;
  }

  /** Frames waiting. */
  get queued(): number {
    return this.queue.size;
  }

  /**
   * The token bucket: the time (>= t) the frame may leave, its bytes taken. Never before the
   * previous frame (so the rate keeps the order, as netem's rate does).
   */
  private shape(t: number, bytes: number): number {
    let at = t;
    if (at > this.bucketAt) {
      // (The first frame: bucketAt is -Infinity, the bucket starts full.)
      this.tokens = Math.min(this.burst, this.tokens + (at - this.bucketAt) * this.bytesPerMs);
      this.bucketAt = at;
    } else {
      at = this.bucketAt;
    }
    if (this.tokens >= bytes) {
      this.tokens -= bytes;
      return at;
    }
    const leave = at + (bytes - this.tokens) / this.bytesPerMs;
    this.tokens = 0;
    this.bucketAt = leave;
    return leave;
  }

  /** Whether a frame due at t would have to wait for the bucket (no state changed). */
  private waitsForRate(t: number, bytes: number): boolean {
    if (t <= this.bucketAt) return true;
    return Math.min(this.burst, this.tokens + (t - this.bucketAt) * this.bytesPerMs) < bytes;
  }

  /**
   * Flip one random bit of the Ethernet frame at buf[off + hdr, off + len). A partial
   * checksum (virtio-net NEEDS_CSUM) is finished first, so the receiver sees a frame whose
   * checksum no longer matches (netem: skb_checksum_help before corrupting). A GSO frame's
   * checksums are computed by the kernel when it is cut into segments, after the flip.
   */
  private corrupt(buf: Uint8Array, off: number, len: number, hdr: number): void {
    const eth = off + hdr;
    const ethLen = len - hdr;
    if (ethLen <= 0) return;
    if (hdr > 0 && (buf[off] & VNET_F_NEEDS_CSUM) !== 0 && (buf[off + 1] & ~VNET_GSO_ECN) === VNET_GSO_NONE) {
      const start = buf[off + 6] | (buf[off + 7] << 8);
      const field = buf[off + 8] | (buf[off + 9] << 8);
      if (finishPartialChecksum(buf, eth, start, field, ethLen)) buf[off] &= ~VNET_F_NEEDS_CSUM;
    }
    const bit = this.rng.below(ethLen * 8);
    buf[eth + (bit >>> 3)] ^= 1 << (bit & 7);
  }
}

/** What impairment did to a frame, in words (vsw trace): "delayed 20.3 ms, duplicated". */
export function describeImpair(flags: number, delayMs: number): string {
  const out: string[] = [];
  if ((flags & IMP_LOST) !== 0 && (flags & IMP_DUPLICATED) === 0) return 'dropped (loss)';
  if ((flags & IMP_QUEUE_FULL) !== 0) out.push('dropped (queue full)');
  if ((flags & IMP_RATE_FULL) !== 0) out.push('dropped (rate: queue full)');
  if ((flags & IMP_REORDERED) !== 0) out.push('reordered (sent at once)');
  if ((flags & IMP_DELAYED) !== 0) out.push(`delayed ${delayMs.toFixed(1)} ms`);
  if ((flags & IMP_DUPLICATED) !== 0) out.push((flags & IMP_LOST) !== 0 ? 'duplicated, one copy lost' : 'duplicated');
  if ((flags & IMP_CORRUPTED) !== 0) out.push('corrupted (one bit flipped)');
  return out.length === 0 ? 'passed' : out.join(', ');
}
