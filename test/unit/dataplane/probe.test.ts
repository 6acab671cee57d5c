import { describe, it, expect } from 'vitest';
import { deleteShift } from '../../../dataplane/tables/probe';

// A small linear-probing table of [word0, state, key] entries (state 0 = empty): with seq,
// word 0 is a sequence number; without, it is data that must move with its entry.
function table(slots: number, seq: boolean) {
  const words = 3;
  const e = new Int32Array(slots * words);
  const mask = slots - 1;
  const home = (key: number): number => Math.imul(key, 0x9e3779b1) >>> 28 & mask;
  const homeOf = (b: number): number => home(e[b + 2]);
  const find = (key: number): number => {
    for (let i = home(key); ; i = (i + 1) & mask) {
      if (e[i * words + 1] === 0) return -1;
      if (e[i * words + 2] === key) return i;
    }
  };
  const insert = (key: number): void => {
    let i = home(key);
    while (e[i * words + 1] !== 0) i = (i + 1) & mask;
    if (!seq) e[i * words] = key * 7;
    e[i * words + 1] = 1;
    e[i * words + 2] = key;
  };
  const remove = (key: number): void => deleteShift(e, find(key), mask, words, homeOf, seq);
  return { e, find, insert, remove, words };
}

describe('probe: backward-shift delete', () => {
  for (const seq of [true, false]) {
    it(`keeps every other key findable (${seq ? 'with' : 'without'} a sequence word)`, () => {
      const t = table(16, seq);
      const live = new Set<number>();
      let x = 12345;
      for (let step = 0; step < 4000; step++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        const key = 1 + ((x >>> 8) % 24);
        if (live.has(key)) { t.remove(key); live.delete(key); } else if (live.size < 12) { t.insert(key); live.add(key); }
        for (let k = 1; k <= 24; k++) {
          const i = t.find(k);
          expect(i >= 0, `key ${k} at step ${step}`).toBe(live.has(k));
          if (i >= 0 && !seq) expect(t.e[i * t.words]).toBe(k * 7);
          if (i >= 0 && seq) expect(t.e[i * t.words] & 1).toBe(0);
        }
      }
    });
  }
});
