// Link impairment (dataplane/impair/) with a fake clock: every time is a number we pass in.

import { describe, it, expect } from 'vitest';
import { Impairment, IMP_DELAYED, IMP_REORDERED, describeImpair } from '../../../dataplane/impair/impair';
import { emptySpec, type ImpairSpec } from '../../../dataplane/impair/spec';
import { Prng } from '../../../dataplane/rng';
import { LossGenerator, expectedLoss, sampleDelay } from '../../../dataplane/impair/models';
import { DelayQueue } from '../../../dataplane/impair/queue';
import { DROP, DROP_REASONS } from '../../../dataplane/drops';
import { VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../../dataplane/wire/vnet';

/** An impairment with counters by reason name, and what it released (frame id = first byte pair, time). */
function harness(over: Partial<ImpairSpec>): {
  imp: Impairment; counts: Record<string, number>; out: { id: number; at: number; bytes: Uint8Array }[];
  send: (id: number, now: number, len?: number) => void; run: (now: number) => void;
} {
  const counts: Record<string, number> = {};
  const imp = new Impairment({ ...emptySpec(7), ...over }, (r) => { counts[DROP_REASONS[r]] = (counts[DROP_REASONS[r]] ?? 0) + 1; });
  const out: { id: number; at: number; bytes: Uint8Array }[] = [];
  let clock = 0;
  const sink = (pool: Uint8Array, off: number, len: number): void => {
    out.push({ id: pool[off] | (pool[off + 1] << 8), at: clock, bytes: pool.slice(off, off + len) });
  };
  return {
    imp, counts, out,
    send: (id, now, len = 100) => {
      const f = new Uint8Array(len);
      f[0] = id & 255; f[1] = id >> 8;
      for (let i = 2; i < len; i++) f[i] = i & 255;
      imp.offer(f, 0, len, 0, now);
    },
    run: (now) => { clock = now; imp.due(now, sink); },
  };
}

/** Step a fake clock by 0.1 ms from 0 to `end`, releasing what is due. */
function runUntil(h: ReturnType<typeof harness>, end: number): void {
  for (let t = 0; t <= end; t = Math.round((t + 0.1) * 10) / 10) h.run(t);
}

describe('delay and jitter', () => {
  it('holds a frame exactly the delay; nothing is due before', () => {
    const h = harness({ delay: 20 });
    h.send(1, 5);
    expect(h.imp.nextDeadline()).toBe(25);
    h.run(24.9);
    expect(h.out).toHaveLength(0);
    h.run(25);
    expect(h.out.map((o) => o.id)).toEqual([1]);
    expect(h.imp.nextDeadline()).toBe(Infinity);
  });

  it('copies the frame: the caller may reuse its buffer at once', () => {
    const h = harness({ delay: 1 });
    const f = new Uint8Array(60).fill(9);
    h.imp.offer(f, 0, 60, 0, 0);
    f.fill(0);
    h.run(1);
    expect([...h.out[0].bytes]).toEqual(new Array(60).fill(9));
  });

  it.each(['uniform', 'normal', 'pareto'] as const)('%s jitter: mean near the delay, spread of the jitter\'s scale', (distribution) => {
    const rng = new Prng(42);
    const xs = Array.from({ length: 20000 }, () => sampleDelay(rng, 20, 5, distribution));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.abs(mean - 20)).toBeLessThan(0.5);
    if (distribution === 'uniform') {
      expect(Math.min(...xs)).toBeGreaterThanOrEqual(15);
      expect(Math.max(...xs)).toBeLessThanOrEqual(25);
      expect(sd).toBeCloseTo(5 / Math.sqrt(3), 0);
    } else if (distribution === 'normal') {
      expect(sd).toBeGreaterThan(4.7);
      expect(sd).toBeLessThan(5.3);
    } else {
      expect(Math.max(...xs)).toBeGreaterThan(40); // the heavy tail
    }
  });

  it('jitter without a rate may reorder frames (as netem): they leave in due order', () => {
    const h = harness({ delay: 10, jitter: 5, seed: 3 });
    for (let i = 0; i < 200; i++) h.send(i, i * 0.5);
    runUntil(h, 200);
    expect(h.out).toHaveLength(200);
    const ats = h.out.map((o) => o.at);
    expect([...ats].sort((a, b) => a - b)).toEqual(ats);
    expect(h.out.some((o, i) => i > 0 && o.id < h.out[i - 1].id)).toBe(true);
  });
});

describe('loss, duplicate, corrupt', () => {
  it('random loss drops about P of the frames, each counted as impair-loss', () => {
    const h = harness({ loss: 0.1 });
    for (let i = 0; i < 20000; i++) { h.send(i, 0); h.run(0); }
    const lost = 20000 - h.out.length;
    expect(lost).toBe(h.counts['impair-loss']);
    expect(lost / 20000).toBeGreaterThan(0.09);
    expect(lost / 20000).toBeLessThan(0.11);
  });

  it('duplicate sends a second copy and counts it', () => {
    const h = harness({ duplicate: 0.25 });
    for (let i = 0; i < 4000; i++) { h.send(i, 0); h.run(0); }
    expect(h.out.length - 4000).toBe(h.counts['impair-duplicate']);
    expect(h.counts['impair-duplicate'] / 4000).toBeGreaterThan(0.22);
    expect(h.counts['impair-duplicate'] / 4000).toBeLessThan(0.28);
  });

  it('corrupt flips exactly one bit of a frame that is still sent', () => {
    const h = harness({ corrupt: 1 });
    h.send(0x0101, 0, 200);
    h.run(0);
    expect(h.counts['impair-corrupt']).toBe(1);
    const f = new Uint8Array(200); f[0] = 1; f[1] = 1; for (let i = 2; i < 200; i++) f[i] = i & 255;
    let bits = 0;
    for (let i = 0; i < 200; i++) for (let x = f[i] ^ h.out[0].bytes[i]; x; x &= x - 1) bits++;
    expect(bits).toBe(1);
  });

  it('corrupt finishes a partial checksum first (the flip is then detectable) and never touches the virtio-net header', () => {
    const counts: number[] = [];
    const imp = new Impairment({ ...emptySpec(5), corrupt: 1 }, (r) => counts.push(r));
    // vnet header + Ethernet + IPv4 + UDP, checksum partial from the UDP header.
    const len = VNET_HDR_LEN + 14 + 20 + 8 + 32;
    const f = new Uint8Array(len);
    writeVnetHdr(f, 0, { flags: VNET_F_NEEDS_CSUM, csumStart: 34, csumOffset: 6 });
    f[VNET_HDR_LEN + 12] = 0x08; f[VNET_HDR_LEN + 14] = 0x45;
    imp.offer(f, 0, len, VNET_HDR_LEN, 0);
    let got: Uint8Array | undefined;
    imp.due(0, (pool, off, l) => { got = pool.slice(off, off + l); });
    expect(counts).toEqual([DROP['impair-corrupt']]);
    expect(got![0] & VNET_F_NEEDS_CSUM).toBe(0);
    expect([...got!.subarray(1, VNET_HDR_LEN)]).toEqual([...f.subarray(1, VNET_HDR_LEN)]);
    expect(got![VNET_HDR_LEN + 34 + 6] | got![VNET_HDR_LEN + 34 + 7]).not.toBe(0); // a checksum was written
  });
});

describe('reorder', () => {
  it('sends about P of the frames at once, the rest delayed; gap N reorders at most every Nth', () => {
    const h = harness({ delay: 10, reorder: 0.25, limit: 5000 });
    let at = 0;
    for (let i = 0; i < 4000; i++) { h.send(i, 0); if ((h.imp.lastFlags & IMP_REORDERED) !== 0) at++; }
    expect(at / 4000).toBeGreaterThan(0.22);
    expect(at / 4000).toBeLessThan(0.28);
    h.run(0);
    expect(h.out).toHaveLength(at);

    const g = harness({ delay: 10, reorder: 1, gap: 5 });
    const flags: number[] = [];
    for (let i = 0; i < 20; i++) { g.send(i, 0); flags.push(g.imp.lastFlags & (IMP_REORDERED | IMP_DELAYED)); }
    // netem: 4 delayed, then the 5th sent at once, and again.
    expect(flags.map((f) => (f === IMP_REORDERED ? 'R' : 'D')).join('')).toBe('DDDDRDDDDRDDDDRDDDDR');
  });
});

describe('rate (token bucket)', () => {
  it('spaces frames by their serialisation time: 10 Mbit/s, 1250-byte frames leave 1 ms apart', () => {
    const h = harness({ rate: 10e6 });
    for (let i = 0; i < 10; i++) h.send(i, 0, 1250);
    runUntil(h, 20);
    expect(h.out.map((o) => o.at)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('a burst goes back to back, then the rate holds; an idle bucket fills up to the burst only', () => {
    const h = harness({ rate: 8e6, burst: 3000 }); // 1000 bytes per ms
    h.run(0);
    for (let i = 0; i < 5; i++) h.send(i, 100, 1000); // bucket starts full at the first frame
    runUntil(h, 200);
    expect(h.out.map((o) => o.at)).toEqual([100, 100, 100, 101, 102]);
    for (let i = 0; i < 5; i++) h.send(10 + i, 1000, 1000);
    runUntil(h, 1100);
    expect(h.out.slice(5).map((o) => o.at)).toEqual([1000, 1000, 1000, 1001, 1002]);
  });

  it('frames waiting for the rate that find the queue full are counted as impair-rate', () => {
    const h = harness({ rate: 1e6, limit: 10 });
    for (let i = 0; i < 30; i++) h.send(i, 0, 1000);
    expect(h.counts['impair-rate']).toBe(20);
    expect(h.imp.queued).toBe(10);
  });
});

describe('Gilbert-Elliott and the 4-state model', () => {
  it('gilbert p,r,1-h,1-k: the long-run loss is p/(p+r)(1-h) + r/(p+r)(1-k), in bursts', () => {
    const m = { kind: 'gilbert' as const, p: 0.05, r: 0.3, lossBad: 0.8, lossGood: 0.01 };
    const gen = new LossGenerator(0, m);
    const rng = new Prng(11);
    const n = 200000;
    let lost = 0;
    let runs = 0;
    let prev = false;
    for (let i = 0; i < n; i++) {
      const l = gen.lost(rng);
      if (l) { lost++; if (!prev) runs++; }
      prev = l;
    }
    const expected = expectedLoss(0, m);
    expect(expected).toBeCloseTo((0.05 / 0.35) * 0.8 + (0.3 / 0.35) * 0.01, 10);
    expect(Math.abs(lost / n - expected)).toBeLessThan(0.005);
    expect(lost / runs).toBeGreaterThan(1.5); // losses come in bursts, unlike Bernoulli at the same rate
  });

  it('4-state p13,p31,p32,p23,p14: the measured loss rate matches the chain\'s stationary one', () => {
    const m = { kind: 'state' as const, p13: 0.02, p31: 0.4, p32: 0.3, p23: 0.1, p14: 0.01 };
    const gen = new LossGenerator(0, m);
    const rng = new Prng(12);
    const n = 200000;
    let lost = 0;
    for (let i = 0; i < n; i++) if (gen.lost(rng)) lost++;
    expect(Math.abs(lost / n - expectedLoss(0, m))).toBeLessThan(0.005);
  });
});

describe('seed', () => {
  it('the same seed gives the same choices; another seed others', () => {
    const pattern = (seed: number): string => {
      const h = harness({ loss: 0.3, delay: 5, jitter: 2, duplicate: 0.1, seed });
      for (let i = 0; i < 300; i++) h.send(i, i);
      runUntil(h, 400);
      return h.out.map((o) => `${o.id}@${o.at}`).join(',');
    };
    expect(pattern(99)).toBe(pattern(99));
    expect(pattern(99)).not.toBe(pattern(100));
  });
});

describe('queue bounds', () => {
  it('holds at most limit frames, then counts impair-queue-full', () => {
    const h = harness({ delay: 100, limit: 5 });
    for (let i = 0; i < 8; i++) h.send(i, 0);
    expect(h.imp.queued).toBe(5);
    expect(h.counts['impair-queue-full']).toBe(3);
    h.run(100);
    expect(h.out.map((o) => o.id)).toEqual([0, 1, 2, 3, 4]);
  });

  it('holds at most its pool\'s bytes: a 64 KB segment is taken whole or not at all, and counted once', () => {
    const h = harness({ delay: 10, limitBytes: 150000 });
    h.send(1, 0, 65536);
    h.send(2, 0, 65536);
    h.send(3, 0, 65536);
    expect(h.imp.queued).toBe(2);
    expect(h.counts['impair-queue-full']).toBe(1);
    h.run(10);
    expect(h.out.map((o) => o.bytes.length)).toEqual([65536, 65536]);
  });

  it('reuses the pool as a ring under out-of-order release, never overwriting a waiting frame', () => {
    const q = new DelayQueue(64, 4096);
    const rng = new Prng(1);
    const waiting = new Map<number, number>(); // slot -> first byte
    let now = 0;
    let id = 0;
    for (let step = 0; step < 20000; step++) {
      now += 0.1;
      const len = 50 + rng.below(400);
      const f = new Uint8Array(len).fill(id & 255);
      const s = q.push(f, 0, len, now + rng.float() * 5, 0);
      if (s >= 0) waiting.set(s, id++ & 255);
      for (let t = q.popDue(now); t >= 0; t = q.popDue(now)) {
        const bytes = q.pool.subarray(q.off[t], q.off[t] + q.len[t]);
        expect(bytes.every((b) => b === waiting.get(t))).toBe(true);
        waiting.delete(t);
        q.free(t);
      }
    }
    expect(id).toBeGreaterThan(5000);
  });
});

describe('describeImpair', () => {
  it('says what was done, as vsw trace prints it', () => {
    const h = harness({ delay: 20, loss: 1 });
    h.send(1, 0);
    expect(describeImpair(h.imp.lastFlags, h.imp.lastDelay)).toBe('dropped (loss)');
    const d = harness({ delay: 20 });
    d.send(1, 0);
    expect(describeImpair(d.imp.lastFlags, d.imp.lastDelay)).toBe('delayed 20.0 ms');
  });
});
