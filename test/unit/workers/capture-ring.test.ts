import { describe, it, expect } from 'vitest';
import { CaptureRing, captureRingBytes, DIR_RX, DIR_TX } from '../../../workers/capture-ring';

describe('CaptureRing', () => {
  it('hands frames to the consumer in order, with port, direction and time, across wraps', () => {
    const ring = new CaptureRing(new SharedArrayBuffer(captureRingBytes(4096)));
    let seed = 7;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
    let sent = 0;
    let got = 0;
    for (let round = 0; round < 200; round++) {
      const batch = 1 + rnd(5);
      for (let i = 0; i < batch; i++) {
        const len = 1 + rnd(300);
        const f = new Uint8Array(len + 10).fill(sent & 0xff);
        ring.push(f, 10, len, sent % 7, sent % 2 ? DIR_TX : DIR_RX, 1000 + sent);
        sent++;
      }
      for (const fr of ring.drain()) {
        expect(fr.timeMs).toBe(1000 + got);
        expect(fr.port).toBe(got % 7);
        expect(fr.dir).toBe(got % 2 ? DIR_TX : DIR_RX);
        expect(fr.data.every((b) => b === (got & 0xff))).toBe(true);
        got++;
      }
    }
    expect(got).toBe(sent);
    expect(ring.lost()).toBe(0);
  });

  it('counts frames as lost when full instead of overwriting, and recovers after a drain', () => {
    const ring = new CaptureRing(new SharedArrayBuffer(captureRingBytes(1024)));
    const f = new Uint8Array(200).fill(1);
    for (let i = 0; i < 10; i++) ring.push(f, 0, 200, 1, DIR_RX, i);
    const first = ring.drain();
    expect(first.length).toBeGreaterThan(0);
    expect(first.length + ring.lost()).toBe(10);
    expect(first.map((x) => x.timeMs)).toEqual(first.map((_, i) => i));   // the oldest kept
    ring.push(f, 0, 200, 1, DIR_RX, 99);
    expect(ring.drain().map((x) => x.timeMs)).toEqual([99]);
    ring.push(new Uint8Array(900), 0, 900, 1, DIR_RX, 1);                  // bigger than half
    expect(ring.drain()).toEqual([]);
  });
});
