import { describe, it, expect } from 'vitest';
import { Fdb, LEARN_NEW, LEARN_REFRESHED, LEARN_MOVED, FDB_EV_AGED, FDB_EV_EVICTED, FDB_EV_LEARNED, FDB_EV_MOVED } from '../../../dataplane/tables/fdb';

const cfg = { maxEntries: 64, maxPerPort: 16, maxPorts: 32, agingSeconds: 300 };
const mac = (i: number): [number, number] => [0x0242, (0x0a000000 + i) >>> 0];

describe('Fdb', () => {
  it('learns a MAC and finds its port; unknown MACs are -1', () => {
    const f = new Fdb(cfg);
    expect(f.learn(1, 0, ...mac(2), 5, 100)).toBe(LEARN_NEW);
    expect(f.lookup(1, 0, ...mac(2))).toBe(5);
    expect(f.lookup(1, 0, ...mac(3))).toBe(-1);
    expect(f.learn(1, 0, ...mac(2), 5, 101)).toBe(LEARN_REFRESHED);
    expect(f.counters()).toMatchObject({ entries: 1, learned: 1 });
  });

  it('keys on network and VLAN: the same MAC in two networks or VLANs is two entries', () => {
    const f = new Fdb(cfg);
    f.learn(1, 0, ...mac(2), 5, 100);
    f.learn(2, 0, ...mac(2), 6, 100);
    f.learn(1, 10, ...mac(2), 7, 100);
    expect(f.lookup(1, 0, ...mac(2))).toBe(5);
    expect(f.lookup(2, 0, ...mac(2))).toBe(6);
    expect(f.lookup(1, 10, ...mac(2))).toBe(7);
    expect(f.lookup(3, 0, ...mac(2))).toBe(-1);
    const list = f.entries().map((e) => `${e.net}/${e.vlan}/${e.mac}/${e.port}`).sort();
    expect(list).toEqual(['1/0/02:42:0a:00:00:02/5', '1/10/02:42:0a:00:00:02/7', '2/0/02:42:0a:00:00:02/6']);
  });

  it('handles a MAC that moves to another port', () => {
    const f = new Fdb(cfg);
    f.learn(1, 0, ...mac(2), 5, 100);
    expect(f.learn(1, 0, ...mac(2), 9, 101)).toBe(LEARN_MOVED);
    expect(f.lookup(1, 0, ...mac(2))).toBe(9);
    expect(f.portEntries(5)).toBe(0);
    expect(f.portEntries(9)).toBe(1);
    expect(f.counters()).toMatchObject({ entries: 1, moved: 1 });
  });

  it('ages entries on the injected clock, keeping refreshed ones', () => {
    const f = new Fdb({ ...cfg, agingSeconds: 300 });
    f.learn(1, 0, ...mac(1), 1, 1000);
    f.learn(1, 0, ...mac(2), 1, 1000);
    f.learn(1, 0, ...mac(2), 1, 1200); // refreshed
    expect(f.age(1300)).toBe(0);      // 300 s old: not yet past the aging time
    expect(f.age(1301)).toBe(1);
    expect(f.lookup(1, 0, ...mac(1))).toBe(-1);
    expect(f.lookup(1, 0, ...mac(2))).toBe(1);
    expect(f.age(1501)).toBe(1);
    expect(f.counters()).toMatchObject({ entries: 0, aged: 2 });
  });

  it('caps a port: a flood of MACs on one port evicts its own entries, not its neighbours', () => {
    const f = new Fdb(cfg);
    for (let i = 0; i < 4; i++) f.learn(1, 0, ...mac(1000 + i), 2, 100); // a quiet neighbour
    for (let i = 0; i < 500; i++) f.learn(1, 0, ...mac(i), 1, 100);      // MAC flood on port 1
    expect(f.portEntries(1)).toBe(cfg.maxPerPort);
    expect(f.portEntries(2)).toBe(4);
    for (let i = 0; i < 4; i++) expect(f.lookup(1, 0, ...mac(1000 + i))).toBe(2);
    // The newest MAC of the flood is always learned.
    expect(f.lookup(1, 0, ...mac(499))).toBe(1);
    expect(f.counters().evicted).toBe(500 - cfg.maxPerPort);
  });

  it('caps the total: when full, evicts from the port with the most entries', () => {
    const f = new Fdb({ ...cfg, maxEntries: 20, maxPerPort: 16 });
    for (let i = 0; i < 4; i++) f.learn(1, 0, ...mac(1000 + i), 2, 100);
    for (let i = 0; i < 16; i++) f.learn(1, 0, ...mac(i), 1, 100);
    expect(f.counters().entries).toBe(20);
    f.learn(1, 0, ...mac(2000), 3, 100); // a new station on a third port
    expect(f.counters().entries).toBe(20);
    expect(f.lookup(1, 0, ...mac(2000))).toBe(3);
    expect(f.portEntries(1)).toBe(15);   // the busiest port paid
    expect(f.portEntries(2)).toBe(4);
  });

  it('stays consistent through many inserts, moves and deletions (backward-shift delete)', () => {
    const f = new Fdb({ maxEntries: 200, maxPerPort: 200, maxPorts: 8, agingSeconds: 10 });
    const truth = new Map<number, number>();
    let seed = 12345;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
    for (let step = 0; step < 20000; step++) {
      const m = rnd(150);
      const op = rnd(10);
      if (op < 7) { f.learn(1, 0, ...mac(m), rnd(8), 100); truth.set(m, -2); }
      else if (op < 9) {
        const port = rnd(8);
        f.flushPort(port);
        for (const [k, v] of truth) if (v === port) truth.delete(k);
      }
      // resolve ports from the table for the -2 markers, then check every key
      for (const [k, v] of truth) if (v === -2) truth.set(k, f.lookup(1, 0, ...mac(k)));
      if (step % 500 === 0) {
        for (let k = 0; k < 150; k++) {
          const want = truth.has(k) ? truth.get(k) : -1;
          expect(f.lookup(1, 0, ...mac(k))).toBe(want);
        }
        expect(f.counters().entries).toBe(truth.size);
      }
    }
  });

  it('is shared: a second view over the same SharedArrayBuffer sees what the first learned', () => {
    const a = new Fdb(cfg);
    const b = new Fdb(cfg, a.sab);
    a.learn(1, 0, ...mac(7), 3, 100);
    expect(b.lookup(1, 0, ...mac(7))).toBe(3);
    b.flushNet(1);
    expect(a.lookup(1, 0, ...mac(7))).toBe(-1);
  });

  it('tells its hook of every change: learned, moved, evicted, aged (not refreshes)', () => {
    const f = new Fdb({ ...cfg, maxPerPort: 2 });
    const seen: number[][] = [];
    f.hook = (ev, net, vlan, hi, lo, port, old) => seen.push([ev, net, vlan, hi, lo, port, old]);
    f.learn(1, 10, ...mac(1), 5, 100);
    f.learn(1, 10, ...mac(1), 5, 101);          // refresh: no event
    f.learn(1, 10, ...mac(1), 6, 102);          // move
    f.learn(1, 10, ...mac(2), 6, 103);
    f.learn(1, 10, ...mac(3), 6, 104);          // port 6 at its cap of 2: one of its own goes
    f.age(1000);
    const kinds = seen.map((e) => e[0]);
    expect(kinds.slice(0, 5)).toEqual([FDB_EV_LEARNED, FDB_EV_MOVED, FDB_EV_LEARNED, FDB_EV_EVICTED, FDB_EV_LEARNED]);
    expect(seen[0]).toEqual([FDB_EV_LEARNED, 1, 10, 0x0242, 0x0a000001, 5, -1]);
    expect(seen[1]).toEqual([FDB_EV_MOVED, 1, 10, 0x0242, 0x0a000001, 6, 5]);
    expect(kinds.slice(5)).toEqual([FDB_EV_AGED, FDB_EV_AGED]);
  });
});
