import { describe, it, expect } from 'vitest';
import {
  Neigh, NeighConfig, NEIGH_DEFAULTS, NEIGH_FAILED, NEIGH_INCOMPLETE, NEIGH_LEARN_CHANGED, NEIGH_LEARN_FAILED,
  NEIGH_LEARN_NEW, NEIGH_LEARN_REFRESHED, NEIGH_REACHABLE, NEIGH_STALE, UPLINK_NET, neighBytes, neighStateName,
} from '../../../dataplane/tables/neigh';
import { rng } from '../../fixtures/frames';

const cfg: NeighConfig = { maxEntries: 64, reachableSeconds: 30, staleSeconds: 60, retrySeconds: 1, maxProbes: 3 };
const ip = (i: number): number => (0x0a000000 + i) >>> 0;        // 10.0.0.i
const mac = (i: number): [number, number] => [0x0242, (0xac110000 + i) >>> 0];

function stateOf(n: Neigh, net: number, addr: number, now: number): number {
  const e = n.list(now).find((x) => x.net === net && x.ip === addr);
  return e ? e.state : 0;
}

describe('Neigh', () => {
  it('has the documented constants and defaults', () => {
    expect(UPLINK_NET).toBe(4095);
    expect([NEIGH_REACHABLE, NEIGH_STALE, NEIGH_INCOMPLETE, NEIGH_FAILED]).toEqual([1, 2, 3, 4]);
    expect([NEIGH_LEARN_REFRESHED, NEIGH_LEARN_NEW, NEIGH_LEARN_CHANGED, NEIGH_LEARN_FAILED]).toEqual([0, 1, 2, 3]);
    expect(NEIGH_DEFAULTS).toEqual({ maxEntries: 4096, reachableSeconds: 30, staleSeconds: 60, retrySeconds: 1, maxProbes: 3 });
    expect(neighStateName(NEIGH_STALE)).toBe('STALE');
    expect(neighBytes(NEIGH_DEFAULTS) % 4).toBe(0);
    expect(() => new Neigh(cfg, new SharedArrayBuffer(64))).toThrow(RangeError);
    expect(() => new Neigh({ ...cfg, maxEntries: 0 })).toThrow(RangeError);
  });

  it('learns an address and finds its MAC; unknown addresses miss', () => {
    const n = new Neigh(cfg);
    expect(n.learn(1, ip(2), ...mac(2), 100)).toBe(NEIGH_LEARN_NEW);
    expect(n.lookup(1, ip(2), 100)).toBe(true);
    expect([n.hi, n.lo]).toEqual(mac(2));
    expect(n.state).toBe(NEIGH_REACHABLE);
    expect(n.lookup(1, ip(3), 100)).toBe(false);
    expect(n.learn(1, ip(2), ...mac(2), 101)).toBe(NEIGH_LEARN_REFRESHED);
    expect(n.counters()).toEqual({ entries: 1, learned: 1, changed: 0, solicited: 0, failed: 0, evicted: 0, unresolved: 0, refused: 0 });
    expect(n.list(105)).toEqual([{ net: 1, ip: ip(2), macHi: 0x0242, macLo: mac(2)[1], state: NEIGH_REACHABLE, ageSeconds: 4 }]);
  });

  it('handles the full IPv4 and MAC ranges (uint32 values above 2^31)', () => {
    const n = new Neigh(cfg);
    const big = 0xfffffffe; // 255.255.255.254
    // fe:ff:ff:ff:ff:fe: the highest unicast MAC (the I/G bit clear)
    n.learn(7, big, 0xfeff, 0xfffffffe, 1);
    expect(n.lookup(7, big, 1)).toBe(true);
    expect([n.hi, n.lo]).toEqual([0xfeff, 0xfffffffe]);
    expect(n.list(1)[0]).toMatchObject({ ip: big, macHi: 0xfeff, macLo: 0xfffffffe });
    expect(n.remove(7, big)).toBe(true);
  });

  it('keys on the network: the same IP in two networks (and the uplink) is two entries', () => {
    const n = new Neigh(cfg);
    n.learn(1, ip(5), ...mac(1), 100);
    n.learn(2, ip(5), ...mac(2), 100);
    n.learn(UPLINK_NET, ip(5), ...mac(3), 100);
    for (const [net, m] of [[1, 1], [2, 2], [UPLINK_NET, 3]]) {
      expect(n.lookup(net, ip(5), 100)).toBe(true);
      expect(n.lo).toBe(mac(m)[1]);
    }
    expect(n.lookup(3, ip(5), 100)).toBe(false);
    expect(n.counters().entries).toBe(3);
    expect(n.learn(2, ip(5), ...mac(9), 101)).toBe(NEIGH_LEARN_CHANGED); // net 2 only
    n.lookup(1, ip(5), 101);
    expect(n.lo).toBe(mac(1)[1]);
  });

  it('follows a MAC change (REACHABLE or STALE) and counts it', () => {
    const n = new Neigh(cfg);
    n.learn(1, ip(2), ...mac(2), 100);
    expect(n.learn(1, ip(2), ...mac(3), 101)).toBe(NEIGH_LEARN_CHANGED);
    expect(n.lookup(1, ip(2), 101) && n.lo).toBe(mac(3)[1]);
    n.age(200); // STALE now
    expect(stateOf(n, 1, ip(2), 200)).toBe(NEIGH_STALE);
    expect(n.learn(1, ip(2), 0x0200, 7, 200)).toBe(NEIGH_LEARN_CHANGED);
    expect(n.lookup(1, ip(2), 200)).toBe(true);
    expect([n.hi, n.lo, n.state]).toEqual([0x0200, 7, NEIGH_REACHABLE]);
    expect(n.counters()).toMatchObject({ entries: 1, learned: 1, changed: 2 });
  });

  it('goes REACHABLE -> STALE -> removed on the injected clock; a confirmation makes it REACHABLE again', () => {
    const n = new Neigh(cfg);
    n.learn(1, ip(2), ...mac(2), 1000);
    expect(n.lookup(1, ip(2), 1030)).toBe(true);
    expect(n.state).toBe(NEIGH_REACHABLE);
    // Past reachableSeconds a lookup already reports STALE (the MAC is still used), before age() runs.
    expect(n.lookup(1, ip(2), 1031)).toBe(true);
    expect(n.state).toBe(NEIGH_STALE);
    expect(n.age(1030)).toBe(0);
    expect(stateOf(n, 1, ip(2), 1030)).toBe(NEIGH_REACHABLE);
    expect(n.age(1031)).toBe(0);
    expect(stateOf(n, 1, ip(2), 1031)).toBe(NEIGH_STALE);
    expect(n.lookup(1, ip(2), 1031) && n.state).toBe(NEIGH_STALE);
    // Confirmed again: REACHABLE, and the clocks restart from 1040.
    expect(n.learn(1, ip(2), ...mac(2), 1040)).toBe(NEIGH_LEARN_REFRESHED);
    expect(n.lookup(1, ip(2), 1040) && n.state).toBe(NEIGH_REACHABLE);
    expect(n.age(1070)).toBe(0);
    expect(stateOf(n, 1, ip(2), 1070)).toBe(NEIGH_REACHABLE);
    expect(n.age(1071)).toBe(0);
    expect(stateOf(n, 1, ip(2), 1071)).toBe(NEIGH_STALE);
    // Stale for staleSeconds (60) without a confirmation: removed (1040 + 30 + 60 = 1130).
    expect(n.age(1130)).toBe(0);
    expect(n.lookup(1, ip(2), 1130)).toBe(true);
    expect(n.age(1131)).toBe(1);
    expect(n.lookup(1, ip(2), 1131)).toBe(false);
    expect(n.counters().entries).toBe(0);
  });

  it('solicit: creates INCOMPLETE, allows one request per retrySeconds, FAILED after maxProbes, for retrySeconds * 3', () => {
    const n = new Neigh(cfg);
    expect(n.solicit(1, ip(9), 100)).toBe(true);   // request 1
    expect(stateOf(n, 1, ip(9), 100)).toBe(NEIGH_INCOMPLETE);
    expect(n.lookup(1, ip(9), 100)).toBe(false);   // no MAC yet
    expect(n.solicit(1, ip(9), 100)).toBe(false);  // rate limited
    expect(n.solicit(1, ip(9), 100)).toBe(false);
    expect(n.solicit(1, ip(9), 101)).toBe(true);   // request 2
    expect(n.solicit(1, ip(9), 101)).toBe(false);
    expect(n.solicit(1, ip(9), 102)).toBe(true);   // request 3
    expect(n.solicit(1, ip(9), 103)).toBe(false);  // 3 unanswered: FAILED
    expect(stateOf(n, 1, ip(9), 103)).toBe(NEIGH_FAILED);
    expect(n.counters()).toMatchObject({ entries: 1, solicited: 3, unresolved: 1 });
    for (const t of [103, 104, 105]) expect(n.solicit(1, ip(9), t)).toBe(false);
    expect(n.lookup(1, ip(9), 105)).toBe(false);
    // Another address is not held back by this one.
    expect(n.solicit(1, ip(10), 105)).toBe(true);
    // FAILED until 103 + 3: age() removes it then...
    expect(n.age(105)).toBe(0);
    expect(n.age(106)).toBe(1);
    expect(stateOf(n, 1, ip(9), 106)).toBe(0);
    // ... and asking again starts over.
    expect(n.solicit(1, ip(9), 106)).toBe(true);
    expect(stateOf(n, 1, ip(9), 106)).toBe(NEIGH_INCOMPLETE);
    expect(n.counters().solicited).toBe(5);
  });

  it('solicit: a FAILED entry past its time starts over even when age() did not run', () => {
    const n = new Neigh(cfg);
    for (const t of [10, 11, 12]) expect(n.solicit(1, ip(9), t)).toBe(true);
    expect(n.solicit(1, ip(9), 13)).toBe(false);
    expect(n.solicit(1, ip(9), 15)).toBe(false);
    expect(n.solicit(1, ip(9), 16)).toBe(true);
    expect(stateOf(n, 1, ip(9), 16)).toBe(NEIGH_INCOMPLETE);
    expect(n.solicit(1, ip(9), 17)).toBe(true);
    expect(n.solicit(1, ip(9), 18)).toBe(true);
    expect(n.solicit(1, ip(9), 19)).toBe(false);
    expect(n.counters()).toMatchObject({ entries: 1, solicited: 6, unresolved: 2 });
  });

  it('solicit honours retrySeconds and maxProbes from the config', () => {
    const n = new Neigh({ ...cfg, retrySeconds: 5, maxProbes: 2 });
    expect(n.solicit(1, ip(9), 100)).toBe(true);
    expect(n.solicit(1, ip(9), 104)).toBe(false);
    expect(n.solicit(1, ip(9), 105)).toBe(true);
    expect(n.solicit(1, ip(9), 110)).toBe(false); // 2 unanswered
    expect(stateOf(n, 1, ip(9), 110)).toBe(NEIGH_FAILED);
    expect(n.solicit(1, ip(9), 124)).toBe(false);
    expect(n.solicit(1, ip(9), 125)).toBe(true);  // FAILED for 5 * 3 s
  });

  it('age(): INCOMPLETE whose requests all went unanswered -> FAILED; an abandoned INCOMPLETE -> removed', () => {
    const n = new Neigh(cfg);
    for (const t of [10, 11, 12]) n.solicit(1, ip(1), t);   // 3 requests, then the sender gives up
    n.solicit(1, ip(2), 10);                                // 1 request, never asked again
    expect(n.age(12)).toBe(0);
    expect(stateOf(n, 1, ip(1), 12)).toBe(NEIGH_INCOMPLETE);
    expect(n.age(13)).toBe(0);
    expect(stateOf(n, 1, ip(1), 13)).toBe(NEIGH_FAILED);
    expect(stateOf(n, 1, ip(2), 13)).toBe(NEIGH_INCOMPLETE);
    expect(n.age(14)).toBe(1);                              // ip(2): quiet > 1 * 3 s
    expect(stateOf(n, 1, ip(2), 14)).toBe(0);
    expect(n.age(16)).toBe(1);                              // ip(1): FAILED since 13, for 3 s
    expect(n.counters()).toMatchObject({ entries: 0, unresolved: 1 });
  });

  it('an answer resolves an INCOMPLETE or FAILED entry (learned, not changed)', () => {
    const n = new Neigh(cfg);
    n.solicit(1, ip(9), 100);
    expect(n.learn(1, ip(9), ...mac(9), 100)).toBe(NEIGH_LEARN_NEW);
    expect(n.lookup(1, ip(9), 100)).toBe(true);
    expect([n.hi, n.lo, n.state]).toEqual([...mac(9), NEIGH_REACHABLE]);
    expect(n.solicit(1, ip(9), 101)).toBe(false); // resolved: nothing to ask
    for (const t of [100, 101, 102, 103]) n.solicit(1, ip(8), t);
    expect(stateOf(n, 1, ip(8), 103)).toBe(NEIGH_FAILED);
    expect(n.learn(1, ip(8), ...mac(8), 104)).toBe(NEIGH_LEARN_NEW); // a late reply or a gratuitous ARP
    expect(n.lookup(1, ip(8), 104)).toBe(true);
    expect(n.counters()).toMatchObject({ entries: 2, learned: 2, changed: 0 });
  });

  it('solicit on an entry in use that went STALE: one request per retrySeconds, the MAC stays usable', () => {
    const n = new Neigh(cfg);
    n.learn(UPLINK_NET, ip(1), ...mac(1), 0);
    expect(n.solicit(UPLINK_NET, ip(1), 10)).toBe(false); // REACHABLE: nothing to ask
    expect(n.solicit(UPLINK_NET, ip(1), 30)).toBe(false);
    expect(n.lookup(UPLINK_NET, ip(1), 31) && n.state).toBe(NEIGH_STALE);
    expect(n.solicit(UPLINK_NET, ip(1), 31)).toBe(true);
    expect(n.solicit(UPLINK_NET, ip(1), 31)).toBe(false);
    expect(n.lookup(UPLINK_NET, ip(1), 31)).toBe(true);
    n.age(32);
    expect(n.solicit(UPLINK_NET, ip(1), 32)).toBe(true);
    expect(n.lookup(UPLINK_NET, ip(1), 32)).toBe(true);
    expect(n.learn(UPLINK_NET, ip(1), ...mac(1), 32)).toBe(NEIGH_LEARN_REFRESHED);
    expect(n.lookup(UPLINK_NET, ip(1), 33) && n.state).toBe(NEIGH_REACHABLE);
    expect(n.solicit(UPLINK_NET, ip(1), 33)).toBe(false);
    expect(n.counters()).toMatchObject({ solicited: 2, unresolved: 0, entries: 1 });
  });

  it('when full: evicts the oldest STALE entry, else the oldest INCOMPLETE/FAILED; never a REACHABLE one', () => {
    const n = new Neigh({ ...cfg, maxEntries: 4 });
    n.learn(1, ip(1), ...mac(1), 100);
    n.learn(1, ip(2), ...mac(2), 101);
    n.learn(1, ip(3), ...mac(3), 110);
    n.learn(1, ip(4), ...mac(4), 111);
    // All REACHABLE: refused, and nothing is lost.
    expect(n.learn(1, ip(5), ...mac(5), 112)).toBe(NEIGH_LEARN_FAILED);
    expect(n.solicit(1, ip(5), 112)).toBe(false);
    expect(n.counters()).toMatchObject({ entries: 4, failed: 2, evicted: 0 });
    for (let i = 1; i <= 4; i++) expect(n.lookup(1, ip(i), 112)).toBe(true);
    // At 132, ip(1) and ip(2) are stale (whether or not age() ran): the oldest goes first.
    expect(n.learn(1, ip(5), ...mac(5), 132)).toBe(NEIGH_LEARN_NEW);
    expect(n.lookup(1, ip(1), 132)).toBe(false);
    expect(n.lookup(1, ip(2), 132)).toBe(true);
    n.age(132);
    expect(n.solicit(1, ip(6), 132)).toBe(true);            // evicts ip(2), the last stale one
    expect(n.lookup(1, ip(2), 132)).toBe(false);
    expect(n.solicit(1, ip(7), 133)).toBe(true);            // no stale entry: evicts INCOMPLETE ip(6)
    expect(stateOf(n, 1, ip(6), 133)).toBe(0);
    expect(n.learn(1, ip(8), ...mac(8), 134)).toBe(NEIGH_LEARN_NEW); // evicts INCOMPLETE ip(7)
    expect(n.learn(1, ip(9), ...mac(9), 134)).toBe(NEIGH_LEARN_FAILED);
    expect(n.counters()).toMatchObject({ entries: 4, evicted: 4, failed: 3 });
    const left = n.list(134).map((e) => e.ip - ip(0)).sort((a, b) => a - b);
    expect(left).toEqual([3, 4, 5, 8]);
  });

  it('when full: a STALE entry goes before an older INCOMPLETE/FAILED one; among those, the oldest', () => {
    const n = new Neigh({ ...cfg, maxEntries: 4 });
    n.solicit(1, ip(1), 10);                    // INCOMPLETE, oldest of all
    for (const t of [20, 21, 22, 23]) n.solicit(1, ip(2), t); // FAILED at 23
    n.learn(1, ip(3), ...mac(3), 50);           // STALE from 81
    n.learn(1, ip(4), ...mac(4), 90);
    expect(n.learn(1, ip(5), ...mac(5), 90)).toBe(NEIGH_LEARN_NEW);
    expect(n.lookup(1, ip(3), 90)).toBe(false); // the stale one, though the others are older
    expect(stateOf(n, 1, ip(1), 90)).toBe(NEIGH_INCOMPLETE);
    expect(n.learn(1, ip(6), ...mac(6), 90)).toBe(NEIGH_LEARN_NEW);
    expect(stateOf(n, 1, ip(1), 90)).toBe(0);   // then the oldest of INCOMPLETE/FAILED
    expect(stateOf(n, 1, ip(2), 90)).toBe(NEIGH_FAILED);
    expect(n.learn(1, ip(7), ...mac(7), 90)).toBe(NEIGH_LEARN_NEW);
    expect(stateOf(n, 1, ip(2), 90)).toBe(0);
    expect(n.counters()).toMatchObject({ entries: 4, evicted: 3 });
  });

  it('remove() and flushNet()', () => {
    const n = new Neigh(cfg);
    for (let i = 0; i < 10; i++) n.learn(1, ip(i), ...mac(i), 100);
    for (let i = 0; i < 5; i++) n.learn(2, ip(i), ...mac(i), 100);
    n.solicit(1, ip(50), 100);
    n.learn(UPLINK_NET, ip(1), ...mac(1), 100);
    expect(n.remove(1, ip(3))).toBe(true);
    expect(n.remove(1, ip(3))).toBe(false);
    expect(n.remove(3, ip(4))).toBe(false);
    expect(n.lookup(1, ip(3), 100)).toBe(false);
    expect(n.flushNet(1)).toBe(10);             // 9 learned + the INCOMPLETE one
    expect(n.flushNet(1)).toBe(0);
    for (let i = 0; i < 10; i++) expect(n.lookup(1, ip(i), 100)).toBe(false);
    for (let i = 0; i < 5; i++) expect(n.lookup(2, ip(i), 100)).toBe(true);
    expect(n.lookup(UPLINK_NET, ip(1), 100)).toBe(true);
    expect(n.counters().entries).toBe(6);
  });

  it('stays consistent with a Map model through random learns, solicits, removals and flushes', () => {
    // Key spaces that fit the cap (no eviction), the small ones with the table full.
    for (const [maxEntries, nets, ips] of [[300, 4, 70], [12, 2, 6], [8, 1, 8]]) {
      const n = new Neigh({ ...cfg, maxEntries });
      const NETS = [UPLINK_NET, 1, 2, 3];
      const model = new Map<string, number>(); // key -> MAC lo, or -1 (INCOMPLETE)
      const rnd = rng(maxEntries * 7919);
      const pick = (k: number): number => Math.floor(rnd() * k);
      for (let step = 0; step < 20000; step++) {
        const net = NETS[pick(nets)];
        const a = ip(pick(ips));
        const key = `${net}/${a}`;
        const op = pick(20);
        if (op < 10) {
          const m = 1 + pick(3);
          const before = model.get(key);
          const want = before === undefined || before === -1 ? NEIGH_LEARN_NEW : before === m ? NEIGH_LEARN_REFRESHED : NEIGH_LEARN_CHANGED;
          expect(n.learn(net, a, 0x0242, m, 100)).toBe(want);
          model.set(key, m);
        } else if (op < 14) {
          const absent = !model.has(key);
          expect(n.solicit(net, a, 100)).toBe(absent); // same second: only a new entry may ask
          if (absent) model.set(key, -1);
        } else if (op < 19) {
          expect(n.remove(net, a)).toBe(model.delete(key));
        } else if (pick(10) === 0) {
          let want = 0;
          for (const k of [...model.keys()]) if (k.startsWith(`${net}/`)) { model.delete(k); want++; }
          expect(n.flushNet(net)).toBe(want);
        }
        if (step % (maxEntries < 20 ? 7 : 250) === 0) {
          for (let i = 0; i < ips; i++) {
            for (const nn of NETS.slice(0, nets)) {
              const m = model.get(`${nn}/${ip(i)}`);
              const hit = n.lookup(nn, ip(i), 100);
              const want = m !== undefined && m !== -1;
              if (hit !== want || (hit && n.lo !== m)) expect(`${step} ${nn}/${i}: ${hit} ${n.lo}`).toBe(`${m}`);
            }
          }
          expect(n.counters().entries).toBe(model.size);
          expect(n.list(100).length).toBe(model.size);
        }
      }
    }
  });

  it('is shared: two Neigh objects over one SharedArrayBuffer see each other\'s changes', () => {
    const a = new Neigh(cfg);
    const b = new Neigh(cfg, a.sab);
    expect(a.sab.byteLength).toBe(neighBytes(cfg));
    a.learn(1, ip(7), ...mac(7), 100);
    expect(b.lookup(1, ip(7), 100)).toBe(true);
    expect([b.hi, b.lo]).toEqual(mac(7));
    // The rate limit is per address, not per view.
    expect(b.solicit(1, ip(8), 100)).toBe(true);
    expect(a.solicit(1, ip(8), 100)).toBe(false);
    b.learn(1, ip(7), ...mac(9), 101);
    expect(a.lookup(1, ip(7), 101) && a.lo).toBe(mac(9)[1]);
    expect(a.counters()).toEqual(b.counters());
    expect(a.counters()).toMatchObject({ entries: 2, learned: 1, changed: 1, solicited: 1 });
    b.flushNet(1);
    expect(a.lookup(1, ip(7), 101)).toBe(false);
    expect(a.counters().entries).toBe(0);
  });
});
