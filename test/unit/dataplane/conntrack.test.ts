import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import {
  Conntrack, ConntrackConfig, CONNTRACK_DEFAULTS, conntrackBytes, CT_DIR_ORIG, CT_DIR_REPLY, CT_ERR_FULL,
  CT_ERR_NO_PORT, CT_ERR_SOURCE_LIMIT, CT_EV_EXPIRED, CT_EV_NEW, CT_EV_REMOVED, CT_KIND_DNAT, CT_KIND_DNS,
  CT_KIND_MASQ, CtEntry,
} from '../../../dataplane/tables/conntrack';

const TCP = 6;
const UDP = 17;
const ICMP = 1;
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

const ip = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const C1 = ip(10, 0, 0, 2);        // containers
const C2 = ip(10, 0, 0, 3);
const S = ip(93, 184, 216, 34);    // a server outside
const U = ip(192, 168, 1, 10);     // the uplink address

const cfg: ConntrackConfig = { maxEntries: 64, maxPerSource: 64, portMin: 1024, portMax: 65535 };

/** A masqueraded connection C:sport -> S:dport, NAT'd to U (allocating a port when needed). */
function masq(ct: Conntrack, proto: number, c: number, sport: number, dport: number, now: number, server = S): number {
  return ct.create(proto, c, server, sport, dport, server, U, dport, sport, true, 1, -1, CT_KIND_MASQ, now);
}

function state(ct: Conntrack, h: number): string {
  return ct.entry(h)!.state;
}

function ttl(ct: Conntrack, h: number, now: number): number {
  return ct.entry(h)!.expires - now;
}

describe('Conntrack: tables and lookups', () => {
  it('sizes its buffer from the config and refuses a small one or a bad config', () => {
    expect(conntrackBytes(cfg)).toBeGreaterThan(64 * 64);
    expect(() => new Conntrack(cfg, new SharedArrayBuffer(16))).toThrow(RangeError);
    expect(() => new Conntrack({ ...cfg, maxEntries: 0 })).toThrow(RangeError);
    expect(() => new Conntrack({ ...cfg, portMin: 2000, portMax: 1000 })).toThrow(RangeError);
    expect(CONNTRACK_DEFAULTS).toEqual({ maxEntries: 65536, maxPerSource: 16384, portMin: 1024, portMax: 65535 });
    expect(conntrackBytes(CONNTRACK_DEFAULTS)).toBeLessThan(16 * 1024 * 1024);
  });

  it('finds a connection from both directions and says what each direction becomes', () => {
    const ct = new Conntrack(cfg);
    const h = ct.create(TCP, C1, S, 40000, 443, S, U, 443, 40000, true, 7, -1, CT_KIND_MASQ, 1000);
    expect(h).toBeGreaterThanOrEqual(0);
    expect(h & 1).toBe(CT_DIR_ORIG);
    expect(ct.find(TCP, C1, S, 40000, 443, 1000)).toBe(h);
    // Outbound: C1:40000 -> S:443 becomes U:40000 -> S:443.
    expect([ct.xSrc(h), ct.xDst(h), ct.xSport(h), ct.xDport(h)]).toEqual([U, S, 40000, 443]);
    // The answer S:443 -> U:40000 belongs to the same connection, reply direction ...
    const r = ct.find(TCP, S, U, 443, 40000, 1000);
    expect(r).toBe(h | 1);
    expect(r & 1).toBe(CT_DIR_REPLY);
    // ... and becomes S:443 -> C1:40000.
    expect([ct.xSrc(r), ct.xDst(r), ct.xSport(r), ct.xDport(r)]).toEqual([S, C1, 443, 40000]);
    expect([ct.net(r), ct.kind(r), ct.mapping(r)]).toEqual([7, CT_KIND_MASQ, -1]);
    // Accessors read the record for handles other than the last one found.
    ct.find(TCP, C1, S, 40000, 443, 1000);
    expect([ct.xSrc(r), ct.xDst(r), ct.xSport(r), ct.xDport(r), ct.net(r)]).toEqual([S, C1, 443, 40000, 7]);
    // Not the same connection: other protocol, other port, other address.
    expect(ct.find(UDP, C1, S, 40000, 443, 1000)).toBe(-1);
    expect(ct.find(TCP, C1, S, 40001, 443, 1000)).toBe(-1);
    expect(ct.find(TCP, C2, S, 40000, 443, 1000)).toBe(-1);
    expect(ct.size()).toBe(1);
  });

  it('handles addresses with the top bit set and port 65535', () => {
    const ct = new Conntrack(cfg);
    const hi = ip(250, 1, 2, 3);
    const h = ct.create(UDP, hi, ip(255, 255, 255, 254), 65535, 65534, ip(200, 0, 0, 1), hi, 65533, 65535, false, 4095, 3, CT_KIND_DNAT, 5);
    expect(ct.find(UDP, hi, ip(255, 255, 255, 254), 65535, 65534, 5)).toBe(h);
    expect(ct.find(UDP, ip(200, 0, 0, 1), hi, 65533, 65535, 5)).toBe(h | 1);
    expect([ct.xSrc(h), ct.xDst(h), ct.xSport(h), ct.xDport(h)]).toEqual([hi, ip(200, 0, 0, 1), 65535, 65533]);
    const e = ct.list(5)[0];
    expect(e.orig).toEqual({ src: hi, dst: ip(255, 255, 255, 254), sport: 65535, dport: 65534 });
    expect(e.reply).toEqual({ src: ip(200, 0, 0, 1), dst: hi, sport: 65533, dport: 65535 });
    expect([e.net, e.mapping, e.kind]).toEqual([4095, 3, CT_KIND_DNAT]);
  });

  it('refuses to track an original tuple twice (the caller should have found it)', () => {
    const ct = new Conntrack(cfg);
    masq(ct, UDP, C1, 5000, 53, 100);
    expect(masq(ct, UDP, C1, 5000, 53, 100)).toBe(CT_ERR_FULL);
    // Nor a tuple that is some connection's reply tuple.
    expect(ct.create(UDP, S, U, 53, 5000, C2, S, 1, 2, false, 1, -1, CT_KIND_DNAT, 100)).toBe(CT_ERR_FULL);
    expect(ct.size()).toBe(1);
    expect(ct.counters().full).toBe(0); // not counted as a full table
  });

  it('lists live connections with their packet and byte counts', () => {
    const ct = new Conntrack(cfg);
    const h = ct.create(UDP, C1, S, 5353, 53, S, U, 53, 5353, true, 2, 9, CT_KIND_DNS, 100);
    ct.seen(h, 0, 60, 100);
    ct.seen(h, 0, 40, 100);
    ct.seen(h | 1, 0, 200, 101);
    const list = ct.list(101);
    expect(list).toEqual<CtEntry[]>([{
      proto: UDP, state: 'REPLIED', kind: CT_KIND_DNS, net: 2, mapping: 9, expires: 221,
      orig: { src: C1, dst: S, sport: 5353, dport: 53 }, reply: { src: S, dst: U, sport: 53, dport: 5353 },
      packets: [2, 1], bytes: [100, 200],
    }]);
    expect(ct.entry(h | 1)).toEqual(list[0]);
    expect(ct.list(221)).toEqual([]); // expired: not live any more
  });
});

describe('Conntrack: TCP state machine', () => {
  // [direction, flags, state after, timeout after]
  type Step = [number, number, string, number];
  const O = CT_DIR_ORIG;
  const R = CT_DIR_REPLY;
  const run = (steps: Step[]): void => {
    const ct = new Conntrack(cfg);
    const h = masq(ct, TCP, C1, 40000, 80, 1000);
    expect(state(ct, h)).toBe('NONE');
    expect(ttl(ct, h, 1000)).toBe(120);
    let now = 1000;
    for (const [dir, flags, st, timeout] of steps) {
      now += 1;
      ct.seen(h | dir, flags, 60, now);
      expect({ dir, flags, st: state(ct, h), timeout: ttl(ct, h, now) }).toEqual({ dir, flags, st, timeout });
    }
  };

  it('opens and closes, client first: every state with its Linux timeout', () => {
    run([
      [O, SYN, 'SYN_SENT', 120],
      [O, SYN, 'SYN_SENT', 120],             // retransmitted SYN
      [R, SYN | ACK, 'SYN_RECV', 60],
      [R, SYN | ACK, 'SYN_RECV', 60],        // retransmitted SYN+ACK
      [R, ACK, 'SYN_RECV', 60],
      [O, ACK, 'ESTABLISHED', 432000],
      [O, PSH | ACK, 'ESTABLISHED', 432000],
      [R, ACK, 'ESTABLISHED', 432000],
      [O, SYN, 'ESTABLISHED', 432000],       // a stray SYN is ignored
      [O, FIN | ACK, 'FIN_WAIT', 120],
      [O, FIN | ACK, 'FIN_WAIT', 120],       // retransmitted FIN
      [O, ACK, 'FIN_WAIT', 120],             // the closer's own ACK answers nothing
      [R, ACK, 'CLOSE_WAIT', 60],            // the FIN is acknowledged: half closed
      [R, PSH | ACK, 'CLOSE_WAIT', 60],      // the other side still sends
      [O, FIN | ACK, 'CLOSE_WAIT', 60],      // the first closer's FIN again
      [R, FIN | ACK, 'LAST_ACK', 30],        // the other side closes too
      [R, ACK, 'LAST_ACK', 30],              // not the ACK of the last FIN
      [O, ACK, 'TIME_WAIT', 120],            // the last FIN is acknowledged
      [O, ACK, 'TIME_WAIT', 120],
      [O, SYN, 'SYN_SENT', 120],             // the port is reused: reopened
      [R, RST | ACK, 'CLOSE', 10],
      [O, ACK, 'CLOSE', 10],
      [O, SYN, 'SYN_SENT', 120],             // reopened after a reset
    ]);
  });

  it('closes, server first', () => {
    run([
      [O, SYN, 'SYN_SENT', 120],
      [R, SYN | ACK, 'SYN_RECV', 60],
      [O, ACK, 'ESTABLISHED', 432000],
      [R, FIN | ACK, 'FIN_WAIT', 120],
      [O, ACK, 'CLOSE_WAIT', 60],
      [O, FIN | ACK, 'LAST_ACK', 30],
      [O, ACK, 'LAST_ACK', 30],
      [R, ACK, 'TIME_WAIT', 120],
    ]);
  });

  it('closes simultaneously (FINs cross)', () => {
    run([
      [O, SYN, 'SYN_SENT', 120],
      [R, SYN | ACK, 'SYN_RECV', 60],
      [O, ACK, 'ESTABLISHED', 432000],
      [O, FIN | ACK, 'FIN_WAIT', 120],
      [R, FIN | ACK, 'LAST_ACK', 30],
      [R, ACK, 'LAST_ACK', 30],
      [O, ACK, 'TIME_WAIT', 120],
    ]);
  });

  it('resets from any state', () => {
    run([[O, SYN, 'SYN_SENT', 120], [R, RST | ACK, 'CLOSE', 10]]);
    run([[O, SYN, 'SYN_SENT', 120], [R, SYN | ACK, 'SYN_RECV', 60], [O, RST, 'CLOSE', 10]]);
    run([[O, SYN, 'SYN_SENT', 120], [R, SYN | ACK, 'SYN_RECV', 60], [O, ACK, 'ESTABLISHED', 432000], [R, RST, 'CLOSE', 10]]);
    run([[O, ACK, 'ESTABLISHED', 300], [O, FIN | ACK, 'FIN_WAIT', 120], [R, RST, 'CLOSE', 10]]);
    run([[O, RST, 'CLOSE', 10]]);
  });

  it('ignores what does not fit the handshake', () => {
    run([
      [O, SYN, 'SYN_SENT', 120],
      [O, ACK, 'SYN_SENT', 120],             // no SYN+ACK yet
      [R, ACK, 'SYN_SENT', 120],
      [O, FIN, 'SYN_SENT', 120],
      [O, SYN | ACK, 'SYN_SENT', 120],       // SYN+ACK from the wrong side
      [R, SYN | ACK, 'SYN_RECV', 60],
      [O, SYN, 'SYN_RECV', 60],              // retransmitted SYN
      [O, 0, 'SYN_RECV', 60],                // no flags at all
      [O, FIN | ACK, 'FIN_WAIT', 120],       // FIN in SYN_RECV
    ]);
  });

  it('opens simultaneously (both send SYN)', () => {
    run([
      [O, SYN, 'SYN_SENT', 120],
      [R, SYN, 'SYN_RECV', 60],
      [O, SYN | ACK, 'SYN_RECV', 60],
      [O, ACK, 'ESTABLISHED', 432000],
    ]);
  });

  it('picks up a connection mid-stream (nf_conntrack_tcp_loose): ESTABLISHED, 5 min until a reply, then 5 days', () => {
    run([
      [O, PSH | ACK, 'ESTABLISHED', 300],
      [O, ACK, 'ESTABLISHED', 300],
      [R, ACK, 'ESTABLISHED', 432000],
      [O, ACK, 'ESTABLISHED', 432000],
    ]);
    run([[O, FIN | ACK, 'FIN_WAIT', 120], [R, ACK, 'CLOSE_WAIT', 60]]);
    run([[O, SYN | ACK, 'ESTABLISHED', 300]]);
    run([[O, 0, 'NONE', 120]]);
  });

  it('counts the reply direction as replied for TCP too', () => {
    const ct = new Conntrack(cfg);
    const h = masq(ct, TCP, C1, 40000, 80, 0);
    ct.seen(h, SYN, 60, 0);
    ct.seen(h | 1, SYN | ACK, 60, 0);
    expect(ct.entry(h)!.packets).toEqual([1, 1]);
  });
});

describe('Conntrack: expiry on a fake clock', () => {
  it('TCP: a SYN_SENT connection lasts 120 s', () => {
    const ct = new Conntrack(cfg);
    const h = masq(ct, TCP, C1, 40000, 80, 1000);
    ct.seen(h, SYN, 60, 1000);
    expect(ct.find(TCP, C1, S, 40000, 80, 1119)).toBe(h);
    expect(ct.find(TCP, S, U, 80, 40000, 1119)).toBe(h | 1);
    expect(ct.find(TCP, C1, S, 40000, 80, 1120)).toBe(-1); // expired: gone for lookups
    expect(ct.expire(1119)).toBe(0);
    expect(ct.size()).toBe(1);
    expect(ct.expire(1120)).toBe(1);
    expect(ct.size()).toBe(0);
    expect(ct.counters()).toMatchObject({ entries: 0, created: 1, expired: 1 });
  });

  it('TCP: an established connection lasts 5 days from its last packet, a closed one 10 s', () => {
    const ct = new Conntrack(cfg);
    const h = masq(ct, TCP, C1, 40000, 80, 0);
    ct.seen(h, SYN, 60, 0);
    ct.seen(h | 1, SYN | ACK, 60, 1);
    ct.seen(h, ACK, 60, 2);
    expect(ct.expire(432001)).toBe(0);
    ct.seen(h, ACK, 60, 400000);
    expect(ct.expire(432002)).toBe(0);
    expect(ct.find(TCP, C1, S, 40000, 80, 832000 - 1)).toBe(h);
    ct.seen(h | 1, RST, 40, 500000);
    expect(ct.find(TCP, C1, S, 40000, 80, 500009)).toBe(h);
    expect(ct.find(TCP, C1, S, 40000, 80, 500010)).toBe(-1);
    expect(ct.expire(500010)).toBe(1);
  });

  it('UDP: 30 s unreplied, 120 s once a reply was seen', () => {
    const ct = new Conntrack(cfg);
    const h = masq(ct, UDP, C1, 5000, 53, 1000);
    expect(ttl(ct, h, 1000)).toBe(30);            // before any seen(): the unreplied timeout
    ct.seen(h, 0, 60, 1000);
    expect(state(ct, h)).toBe('UNREPLIED');
    ct.seen(h, 0, 60, 1010);                      // refreshed by a second query
    expect(ttl(ct, h, 1010)).toBe(30);
    expect(ct.find(UDP, C1, S, 5000, 53, 1039)).toBe(h);
    ct.seen(h | 1, 0, 100, 1039);                 // the answer
    expect(state(ct, h)).toBe('REPLIED');
    expect(ttl(ct, h, 1039)).toBe(120);
    ct.seen(h, 0, 60, 1040);                      // the original direction keeps 120 s now
    expect(ttl(ct, h, 1040)).toBe(120);
    expect(ct.expire(1159)).toBe(0);
    expect(ct.expire(1160)).toBe(1);
    const unanswered = masq(ct, UDP, C1, 5001, 53, 2000);
    ct.seen(unanswered, 0, 60, 2000);
    expect(ct.find(UDP, C1, S, 5001, 53, 2029)).toBe(unanswered);
    expect(ct.find(UDP, C1, S, 5001, 53, 2030)).toBe(-1);
    expect(ct.expire(2030)).toBe(1);
  });

  it('ICMP echo: 30 s from the last packet, identifier as both ports', () => {
    const ct = new Conntrack(cfg);
    const h = masq(ct, ICMP, C1, 0x1234, 0x1234, 1000);
    ct.seen(h, 0, 84, 1000);
    expect(ct.find(ICMP, S, U, 0x1234, 0x1234, 1000)).toBe(h | 1);
    ct.seen(h | 1, 0, 84, 1001);
    expect(state(ct, h)).toBe('REPLIED');
    expect(ttl(ct, h, 1001)).toBe(30);
    expect(ct.find(ICMP, C1, S, 0x1234, 0x1234, 1030)).toBe(h);
    expect(ct.find(ICMP, C1, S, 0x1234, 0x1234, 1031)).toBe(-1);
    expect(ct.expire(1031)).toBe(1);
  });

  it('reuses the tuples of an expired connection that was not swept yet', () => {
    const ct = new Conntrack(cfg);
    const events: number[] = [];
    ct.hook = (ev) => events.push(ev);
    const a = masq(ct, UDP, C1, 5000, 53, 1000);
    // Same original tuple after expiry: the old one is reclaimed, not refused.
    const b = masq(ct, UDP, C1, 5000, 53, 1030);
    expect(b).toBeGreaterThanOrEqual(0);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(ct.size()).toBe(1);
    expect(events).toEqual([CT_EV_NEW, CT_EV_EXPIRED, CT_EV_NEW]);
    // Its reply tuple (the NAT port) is free again too.
    const c = ct.create(UDP, C2, S, 6000, 53, S, U, 53, 6000, true, 1, -1, CT_KIND_MASQ, 1030);
    expect(ct.xSport(c)).toBe(6000);
    ct.expire(1060 + 1);
    const d = ct.create(UDP, C2, S, 7000, 53, S, U, 53, 5000, false, 1, -1, CT_KIND_MASQ, 1061);
    expect(d).toBeGreaterThanOrEqual(0);
    expect(ct.counters().expired).toBe(3);
  });
});

describe('Conntrack: NAT port allocation', () => {
  it('keeps the source port when it is free', () => {
    const ct = new Conntrack(cfg);
    const h = masq(ct, TCP, C1, 40000, 80, 0);
    expect(ct.xSport(h)).toBe(40000);
    expect(ct.list(0)[0].reply).toEqual({ src: S, dst: U, sport: 80, dport: 40000 });
  });

  it('gives two containers with the same source port to the same server different NAT ports', () => {
    const ct = new Conntrack(cfg);
    const a = masq(ct, TCP, C1, 40000, 80, 0);
    const b = masq(ct, TCP, C2, 40000, 80, 0);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(b).toBeGreaterThanOrEqual(0);
    const pa = ct.xSport(a);
    const pb = ct.xSport(b);
    expect(pa).toBe(40000);
    expect(pb).not.toBe(40000);
    expect(pb).toBeGreaterThanOrEqual(1024);
    // Each answer finds its own container.
    expect(ct.xDst(ct.find(TCP, S, U, 80, pa, 0))).toBe(C1);
    expect(ct.xDst(ct.find(TCP, S, U, 80, pb, 0))).toBe(C2);
    expect(ct.xDport(ct.find(TCP, S, U, 80, pb, 0))).toBe(40000);
    // Another server, or another protocol, does not collide: the port is kept.
    expect(ct.xSport(masq(ct, TCP, C2, 40000, 80, 0, ip(1, 1, 1, 1)))).toBe(40000);
    expect(ct.xSport(masq(ct, UDP, C2, 40000, 80, 0))).toBe(40000);
  });

  it('tries the original source port first when the requested reply port is taken', () => {
    const ct = new Conntrack(cfg);
    // Someone holds S:80 -> U:2000.
    masq(ct, TCP, C1, 2000, 80, 0);
    // C2:3000 asks for NAT port 2000 (taken): it gets its own source port 3000.
    const h = ct.create(TCP, C2, S, 3000, 80, S, U, 80, 2000, true, 1, -1, CT_KIND_MASQ, 0);
    expect(ct.xSport(h)).toBe(3000);
  });

  it('allocates ICMP identifiers (both ports of the reply tuple)', () => {
    const ct = new Conntrack(cfg);
    const a = masq(ct, ICMP, C1, 7, 7, 0);
    const b = masq(ct, ICMP, C2, 7, 7, 0);
    expect(ct.xSport(a)).toBe(7);
    const id = ct.xSport(b);
    expect(id).not.toBe(7);
    expect(ct.xDport(b)).toBe(id);
    expect(ct.list(0).find((e) => e.orig.src === C2)!.reply).toEqual({ src: S, dst: U, sport: id, dport: id });
    expect(ct.find(ICMP, S, U, id, id, 0)).toBe(b | 1);
  });

  it('rotates through the range and fails with CT_ERR_NO_PORT when it is exhausted', () => {
    const ct = new Conntrack({ ...cfg, portMin: 2000, portMax: 2003 });
    const ports = new Set<number>();
    // Five containers, all from port 40000 to S:80: 40000 then the four ports of the range.
    for (let i = 0; i < 5; i++) {
      const h = masq(ct, TCP, ip(10, 0, 0, 10 + i), 40000, 80, 0);
      expect(h).toBeGreaterThanOrEqual(0);
      ports.add(ct.xSport(h));
    }
    expect([...ports].sort()).toEqual([2000, 2001, 2002, 2003, 40000]);
    expect(masq(ct, TCP, ip(10, 0, 0, 20), 40000, 80, 0)).toBe(CT_ERR_NO_PORT);
    expect(ct.counters()).toMatchObject({ noPort: 1, entries: 5 });
    // Other servers are not affected.
    expect(masq(ct, TCP, ip(10, 0, 0, 20), 40000, 80, 0, ip(8, 8, 8, 8))).toBeGreaterThanOrEqual(0);
    // A port comes back when its connection goes.
    ct.removeWhere((e) => e.orig.src === ip(10, 0, 0, 12));
    const h = masq(ct, TCP, ip(10, 0, 0, 20), 40000, 80, 0);
    expect(h).toBeGreaterThanOrEqual(0);
  });

  it('uses every port of the full range, then fails fast (the search is bounded)', () => {
    const ct = new Conntrack({ maxEntries: 70000, maxPerSource: 70000, portMin: 1024, portMax: 65535 });
    const used = new Set<number>();
    for (let i = 0; i < 64512; i++) {
      const h = masq(ct, TCP, (0x0a000000 + i) >>> 0, 40000, 443, 0);
      if (h >= 0) used.add(ct.xSport(h));
    }
    expect(used.size).toBe(64512);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 20; i++) expect(masq(ct, TCP, ip(11, 0, 0, i), 40000, 443, 0)).toBe(CT_ERR_NO_PORT);
    expect(Number(process.hrtime.bigint() - t0) / 20 / 1e6).toBeLessThan(2); // ms per failed create
    // Holes left by closed connections are found again.
    const freed = ct.removeWhere((e) => e.orig.src % 1000 === 0);
    expect(freed).toBeGreaterThan(50);
    let ok = 0;
    for (let i = 0; i < 65; i++) if (masq(ct, TCP, ip(12, 0, 0, i), 40000, 443, 0) >= 0) ok++;
    expect(ok).toBeGreaterThan(0);
    expect(ct.size()).toBe(64512 - freed + ok);
  });

  it('without allocPort a taken reply tuple is CT_ERR_NO_PORT', () => {
    const ct = new Conntrack(cfg);
    masq(ct, TCP, C1, 40000, 80, 0);
    expect(ct.create(TCP, C2, S, 40000, 80, S, U, 80, 40000, false, 1, -1, CT_KIND_MASQ, 0)).toBe(CT_ERR_NO_PORT);
    // A reply tuple equal to the original tuple is taken too.
    expect(ct.create(TCP, C2, C2, 1, 1, C2, C2, 1, 1, false, 1, -1, CT_KIND_MASQ, 0)).toBe(CT_ERR_NO_PORT);
    expect(ct.counters().noPort).toBe(2);
  });
});

describe('Conntrack: limits', () => {
  it('fails with CT_ERR_FULL when the table is full, and has room again after expiry', () => {
    const ct = new Conntrack({ ...cfg, maxEntries: 4 });
    for (let i = 0; i < 4; i++) expect(masq(ct, UDP, C1, 5000 + i, 53, 100 + i)).toBeGreaterThanOrEqual(0);
    expect(masq(ct, UDP, C1, 6000, 53, 104)).toBe(CT_ERR_FULL);
    expect(ct.counters()).toMatchObject({ entries: 4, full: 1 });
    expect(ct.expire(131)).toBe(2);
    expect(masq(ct, UDP, C1, 6000, 53, 131)).toBeGreaterThanOrEqual(0);
    expect(masq(ct, UDP, C1, 6001, 53, 131)).toBeGreaterThanOrEqual(0);
    expect(masq(ct, UDP, C1, 6002, 53, 131)).toBe(CT_ERR_FULL);
    expect(ct.find(UDP, C1, S, 5003, 53, 131)).toBeGreaterThanOrEqual(0);
  });

  it('caps connections per original source address', () => {
    const ct = new Conntrack({ ...cfg, maxPerSource: 3 });
    for (let i = 0; i < 3; i++) expect(masq(ct, TCP, C1, 40000 + i, 80, 0)).toBeGreaterThanOrEqual(0);
    expect(masq(ct, TCP, C1, 40003, 80, 0)).toBe(CT_ERR_SOURCE_LIMIT);
    expect(masq(ct, TCP, C2, 40003, 80, 0)).toBeGreaterThanOrEqual(0); // another source is fine
    expect(ct.counters().sourceLimit).toBe(1);
    expect(ct.sourceCount(C1)).toBe(3);
    expect(ct.sourceCount(C2)).toBe(1);
    ct.removeWhere((e) => e.orig.sport === 40001);
    expect(ct.sourceCount(C1)).toBe(2);
    expect(masq(ct, TCP, C1, 40003, 80, 0)).toBeGreaterThanOrEqual(0);
    ct.removeNet(1);
    expect(ct.sourceCount(C1)).toBe(0);
    expect(ct.sourceCount(C2)).toBe(0);
  });
});

describe('Conntrack: removal and events', () => {
  it('removes the connections of a published-port rule, and of a network', () => {
    const ct = new Conntrack(cfg);
    const client = ip(203, 0, 113, 5);
    // Published port 8080 (rule 4) -> C1:80 in network 2; rule 5 -> C2:22 in network 3.
    const d1 = ct.create(TCP, client, U, 50000, 8080, C1, client, 80, 50000, false, 2, 4, CT_KIND_DNAT, 0);
    const d2 = ct.create(TCP, client, U, 50001, 8080, C1, client, 80, 50001, false, 2, 4, CT_KIND_DNAT, 0);
    const d3 = ct.create(TCP, client, U, 50002, 2222, C2, client, 22, 50002, false, 3, 5, CT_KIND_DNAT, 0);
    const m1 = masq(ct, UDP, C1, 5000, 53, 0);
    expect(Math.min(d1, d2, d3, m1)).toBeGreaterThanOrEqual(0);
    expect([ct.xDst(d1), ct.xDport(d1)]).toEqual([C1, 80]);
    expect(ct.removeMapping(4)).toBe(2);
    expect(ct.removeMapping(-1)).toBe(0); // "no rule" is not a rule
    expect(ct.find(TCP, client, U, 50000, 8080, 0)).toBe(-1);
    expect(ct.find(TCP, C1, client, 80, 50001, 0)).toBe(-1);
    expect(ct.find(TCP, client, U, 50002, 2222, 0)).toBe(d3);
    expect(ct.removeNet(3)).toBe(1);
    expect(ct.removeNet(1)).toBe(1);
    expect(ct.size()).toBe(0);
    expect(ct.counters()).toMatchObject({ created: 4, removed: 4, expired: 0 });
  });

  it('tells its hook of new, expired and removed connections, with a handle it can read', () => {
    const ct = new Conntrack(cfg);
    const seen: string[] = [];
    ct.hook = (ev, h) => {
      const e = ct.entry(h)!;
      seen.push(`${ev}:${e.orig.sport}:${ct.xSport(h)}:${ct.net(h)}`);
    };
    const a = masq(ct, UDP, C1, 5000, 53, 0);
    masq(ct, UDP, C2, 5000, 53, 0);
    ct.create(UDP, S, U, 1, 2, C1, S, 3, 1, false, 9, 1, CT_KIND_DNAT, 0);
    ct.seen(a | 1, 0, 1, 0);       // a is answered: 120 s; the other two expire at 30
    expect(ct.expire(30)).toBe(2);
    expect(ct.removeNet(1)).toBe(1);
    expect(seen[0]).toBe(`${CT_EV_NEW}:5000:5000:1`);
    expect(seen[1]).toMatch(new RegExp(`^${CT_EV_NEW}:5000:\\d+:1$`));
    expect(seen[1]).not.toBe(`${CT_EV_NEW}:5000:5000:1`);
    expect(seen[2]).toBe(`${CT_EV_NEW}:1:1:9`); // (S:1 -> U:2) becomes (C1:1 -> S:3): sport 1
    expect(seen[3]).toBe(seen[1].replace(`${CT_EV_NEW}:`, `${CT_EV_EXPIRED}:`));
    expect(seen[4]).toBe(`${CT_EV_EXPIRED}:1:1:9`);
    expect(seen[5]).toBe(`${CT_EV_REMOVED}:5000:5000:1`);
    expect(seen).toHaveLength(6);
  });

  it('keeps a found handle consistent when its record is removed and reused by someone else', () => {
    const a = new Conntrack(cfg);
    const b = new Conntrack(cfg, a.sab);
    const h = masq(a, UDP, C1, 5000, 53, 0);
    expect(b.find(UDP, C1, S, 5000, 53, 0)).toBe(h);
    a.removeNet(1);
    const h2 = a.create(TCP, C2, ip(1, 1, 1, 1), 7, 8, ip(1, 1, 1, 1), U, 8, 7, true, 5, -1, CT_KIND_MASQ, 0);
    expect(h2).toBe(h); // the same record, reused
    // b still answers for the connection it found, and its seen() does not touch the new one.
    expect([b.xSrc(h), b.xDst(h), b.xSport(h), b.xDport(h), b.net(h)]).toEqual([U, S, 5000, 53, 1]);
    b.seen(h, 0, 100, 0);
    expect(a.entry(h2)!.packets).toEqual([0, 0]);
    // A fresh find sees the new connection.
    expect(b.find(TCP, C2, ip(1, 1, 1, 1), 7, 8, 0)).toBe(h2);
    expect(b.net(h2)).toBe(5);
  });
});

describe('Conntrack: sharing', () => {
  it('two Conntrack objects over one SharedArrayBuffer see each other\'s entries', () => {
    const a = new Conntrack(cfg);
    const b = new Conntrack(cfg, a.sab);
    const h = masq(a, TCP, C1, 40000, 443, 10);
    expect(b.find(TCP, S, U, 443, 40000, 10)).toBe(h | 1);
    expect(b.xDst(h | 1)).toBe(C1);
    b.seen(h | 1, SYN | ACK, 60, 11);
    expect(a.entry(h)!.packets).toEqual([0, 1]);
    const h2 = masq(b, TCP, C2, 40000, 443, 12);
    expect(a.xSport(h2)).not.toBe(40000); // b saw a's port as taken
    expect(a.find(TCP, C2, S, 40000, 443, 12)).toBe(h2);
    expect(a.size()).toBe(2);
    expect(b.counters()).toMatchObject({ entries: 2, created: 2 });
    a.removeNet(1);
    expect(b.find(TCP, C2, S, 40000, 443, 12)).toBe(-1);
    expect(b.size()).toBe(0);
  });

  it('an all-zero buffer of conntrackBytes() is an empty table', () => {
    const sab = new SharedArrayBuffer(conntrackBytes(cfg));
    const a = new Conntrack(cfg, sab);
    const b = new Conntrack(cfg, sab);
    expect(a.size()).toBe(0);
    const h = masq(a, UDP, C1, 1, 2, 0);
    expect(b.find(UDP, C1, S, 1, 2, 0)).toBe(h);
  });
});

describe('Conntrack: randomized against a model', () => {
  interface M { key: [string, string]; orig: number[]; reply: number[]; net: number; mapping: number; expires: number; src: number }
  const key = (p: number, s: number, d: number, sp: number, dp: number): string => `${p}|${s}|${d}|${sp}|${dp}`;

  it('stays consistent through thousands of create/find/seen/expire/remove operations', () => {
    const c: ConntrackConfig = { maxEntries: 48, maxPerSource: 14, portMin: 3000, portMax: 3005 };
    const ct = new Conntrack(c);
    const byKey = new Map<string, number>();        // tuple -> handle
    const conns = new Map<number, M>();             // record -> connection
    let seed = 99;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    const inside = [ip(10, 0, 0, 2), ip(10, 0, 0, 3), ip(10, 0, 0, 4), ip(10, 0, 0, 5)];
    const servers = [ip(1, 1, 1, 1), ip(8, 8, 8, 8), ip(9, 9, 9, 9)];
    const protos = [TCP, UDP, ICMP];
    let now = 1000;
    const drop = (rec: number): void => {
      const m = conns.get(rec)!;
      byKey.delete(m.key[0]);
      byKey.delete(m.key[1]);
      conns.delete(rec);
    };
    const liveHolder = (k: string): boolean => byKey.has(k);
    const perSource = (s: number): number => [...conns.values()].filter((m) => m.src === s).length;
    let created = 0;
    let failures = 0;
    for (let step = 0; step < 20000; step++) {
      const op = rnd(100);
      const proto = protos[rnd(3)];
      const src = inside[rnd(4)];
      const dst = servers[rnd(3)];
      const sport = 3000 + rnd(8);
      let dport = [53, 80, 443][rnd(3)];
      if (proto === ICMP) dport = sport;
      if (op < 35) {
        // create: masquerade (allocPort) or a fixed reply tuple
        const alloc = rnd(3) > 0;
        const net = rnd(4);
        const mapping = rnd(4) - 1;
        const rsport = proto === ICMP ? sport : dport;
        const rdport = sport;
        const rsrc = alloc ? dst : inside[rnd(4)];
        const rdst = alloc ? U : servers[rnd(3)];
        const ok = key(proto, src, dst, sport, dport);
        let expect_: number;
        if (byKey.has(ok)) expect_ = CT_ERR_FULL;
        else if (conns.size >= c.maxEntries) expect_ = CT_ERR_FULL;
        else if (perSource(src) >= c.maxPerSource) expect_ = CT_ERR_SOURCE_LIMIT;
        else {
          const free = (rp: number): boolean => {
            const k = proto === ICMP ? key(proto, rsrc, rdst, rp, rp) : key(proto, rsrc, rdst, rsport, rp);
            return !liveHolder(k) && k !== ok;
          };
          let anyFree = free(rdport);
          if (!anyFree && alloc) {
            anyFree = free(sport);
            for (let p = c.portMin; p <= c.portMax && !anyFree; p++) anyFree = free(p);
          }
          expect_ = anyFree ? 0 : CT_ERR_NO_PORT;
        }
        const h = ct.create(proto, src, dst, sport, dport, rsrc, rdst, rsport, rdport, alloc, net, mapping, CT_KIND_MASQ, now);
        if (expect_ < 0) {
          expect(h).toBe(expect_);
          failures++;
          continue;
        }
        expect(h).toBeGreaterThanOrEqual(0);
        created++;
        const rec = h >> 1;
        expect(conns.has(rec)).toBe(false);
        const e = ct.entry(h)!;
        const rp = e.reply.dport;
        if (proto === ICMP) expect(e.reply.sport).toBe(rp);
        else expect(e.reply.sport).toBe(rsport);
        expect([e.reply.src, e.reply.dst]).toEqual([rsrc, rdst]);
        if (rp !== rdport) {
          expect(alloc).toBe(true);
          expect(rp === sport || (rp >= c.portMin && rp <= c.portMax)).toBe(true);
        }
        const rk = key(proto, rsrc, rdst, e.reply.sport, rp);
        expect(byKey.has(rk)).toBe(false);
        byKey.set(ok, h);
        byKey.set(rk, h | 1);
        conns.set(rec, {
          key: [ok, rk], orig: [src, dst, sport, dport], reply: [rsrc, rdst, e.reply.sport, rp], net, mapping,
          expires: e.expires, src,
        });
      } else if (op < 70) {
        // find an original or a reply tuple
        let args: [number, number, number, number, number];
        if (rnd(2) === 0 || conns.size === 0) {
          args = [proto, src, dst, sport, dport];
        } else {
          const m = [...conns.values()][rnd(conns.size)];
          const t = rnd(2) === 0 ? m.orig : m.reply;
          args = [Number(m.key[0].split('|')[0]), t[0], t[1], t[2], t[3]];
        }
        const k = key(...args);
        const h = ct.find(...args, now);
        const want = byKey.get(k);
        expect(h).toBe(want ?? -1);
        if (h >= 0) {
          const m = conns.get(h >> 1)!;
          const other = (h & 1) === 0 ? m.reply : m.orig;
          expect([ct.xSrc(h), ct.xDst(h), ct.xSport(h), ct.xDport(h)]).toEqual([other[1], other[0], other[3], other[2]]);
          expect([ct.net(h), ct.mapping(h)]).toEqual([m.net, m.mapping]);
          if (rnd(2) === 0) {
            ct.seen(h, [SYN, SYN | ACK, ACK, FIN | ACK, RST, PSH | ACK][rnd(6)], 100, now);
            m.expires = ct.entry(h)!.expires;
            expect(m.expires).toBeGreaterThan(now);
          }
        }
      } else if (op < 90) {
        // time passes; the main thread sweeps
        now += rnd(50);
        let expired = 0;
        for (const [rec, m] of [...conns]) if (m.expires <= now) { drop(rec); expired++; }
        expect(ct.expire(now)).toBe(expired);
      } else if (op < 95) {
        const net = rnd(4);
        let n = 0;
        for (const [rec, m] of [...conns]) if (m.net === net) { drop(rec); n++; }
        expect(ct.removeNet(net)).toBe(n);
      } else {
        const mapping = rnd(4) - 1;
        let n = 0;
        if (mapping >= 0) for (const [rec, m] of [...conns]) if (m.mapping === mapping) { drop(rec); n++; }
        expect(ct.removeMapping(mapping)).toBe(n);
      }
      if (step % 250 === 0) {
        expect(ct.size()).toBe(conns.size);
        const listed = ct.list(now).map((e) => key(e.proto, e.orig.src, e.orig.dst, e.orig.sport, e.orig.dport)).sort();
        expect(listed).toEqual([...conns.values()].map((m) => m.key[0]).sort());
        for (const s of inside) expect(ct.sourceCount(s)).toBe(perSource(s));
      }
    }
    expect(created).toBeGreaterThan(1000);
    expect(failures).toBeGreaterThan(100);
    const k = ct.counters();
    expect(k.created).toBe(created);
    expect(k.full + k.noPort + k.sourceLimit).toBeLessThanOrEqual(failures);
  });
});

/** A module and every module of ours it imports (relative paths), transpiled: file -> CommonJS. */
function transpileTree(entry: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (file: string): void => {
    if (out[file] !== undefined) return;
    const src = readFileSync(file, 'utf8');
    out[file] = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
    for (const m of src.matchAll(/^(?:import|export)\b[^;]*?\bfrom '(\.[^']+)'/gms)) visit(join(dirname(file), m[1]) + '.ts');
  };
  visit(entry);
  return out;
}

describe('Conntrack: threads', () => {
  it('a worker thread creating and removing while this thread finds: no torn results', async () => {
    // The worker runs the same modules, transpiled to plain JS here.
    const files = transpileTree(join(__dirname, '../../../dataplane/tables/conntrack.ts'));
    const c: ConntrackConfig = { maxEntries: 4096, maxPerSource: 4096, portMin: 1024, portMax: 65535 };
    const ct = new Conntrack(c);
    const flags = new Int32Array(new SharedArrayBuffer(8)); // [0] started, [1] done
    // Connection i: C(i) = 10.1.(i>>8).(i&255) : 10000+i -> S : 80, NAT'd to U, net = i & 15.
    const workerCode = `
      const { workerData } = require('node:worker_threads');
      const path = require('node:path');
      const loaded = new Map();
      const load = (file) => {
        let module = loaded.get(file);
        if (module !== undefined) return module.exports;
        module = { exports: {} };
        loaded.set(file, module);
        const req = (id) => (id.startsWith('.') ? load(path.join(path.dirname(file), id) + '.ts') : require(id));
        new Function('module', 'exports', 'require', workerData.files[file])(module, module.exports, req);
        return module.exports;
      };
      const { Conntrack } = load(workerData.entry);
      const ct = new Conntrack(workerData.cfg, workerData.sab);
      const flags = new Int32Array(workerData.flags);
      Atomics.store(flags, 0, 1);
      const S = ${S}, U = ${U};
      for (let round = 0; round < 40; round++) {
        for (let i = 0; i < 3000; i++) {
          const c = (0x0a010000 + i) >>> 0;
          const h = ct.create(6, c, S, 10000 + i, 80, S, U, 80, 10000 + i, true, i & 15, i, 0, 1000);
          if (h >= 0) ct.seen(h, 2, 60, 1000);
        }
        for (let net = 0; net < 16; net++) if ((net + round) % 3 === 0) ct.removeNet(net);
      }
      Atomics.store(flags, 1, 1);
    `;
    const w = new Worker(workerCode, { eval: true, workerData: { files, entry: join(__dirname, '../../../dataplane/tables/conntrack.ts'), cfg: c, sab: ct.sab, flags: flags.buffer } });
    const exited = new Promise<number>((resolve, reject) => { w.on('exit', resolve); w.on('error', reject); });
    const deadline = Date.now() + 20000;
    while (Atomics.load(flags, 0) === 0 && Date.now() < deadline) Atomics.wait(flags, 0, 0, 5);
    let found = 0;
    let bad = 0;
    let lookups = 0;
    let seed = 7;
    while (Atomics.load(flags, 1) === 0 && Date.now() < deadline) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const i = (seed >>> 8) % 3000;
      const cIp = (0x0a010000 + i) >>> 0;
      lookups++;
      const h = ct.find(TCP, cIp, S, 10000 + i, 80, 1000);
      if (h < 0) continue;
      found++;
      if ((h & 1) !== 0 || ct.xSrc(h) !== U || ct.xDst(h) !== S || ct.xDport(h) !== 80 || ct.net(h) !== (i & 15)
        || ct.mapping(h) !== i) bad++;
      const p = ct.xSport(h);
      ct.seen(h, ACK, 60, 1000);
      // The reply tuple leads to a connection whose translation is whole (connection i itself,
      // unless the worker removed it meanwhile and the port went to another).
      const r = ct.find(TCP, S, U, 80, p, 1000);
      if (r >= 0 && (ct.xDst(r) !== ((0x0a010000 + ct.mapping(r)) >>> 0) || ct.xDport(r) !== 10000 + ct.mapping(r))) bad++;
    }
    expect(await exited).toBe(0);
    expect(Atomics.load(flags, 1)).toBe(1);
    expect(bad).toBe(0);
    expect(lookups).toBeGreaterThan(1000);
    expect(found).toBeGreaterThan(100);
    // The table is whole afterwards: every listed connection is found from both sides.
    const list = ct.list(1000);
    expect(list.length).toBe(ct.size());
    for (const e of list) {
      const h = ct.find(TCP, e.orig.src, e.orig.dst, e.orig.sport, e.orig.dport, 1000);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(ct.find(TCP, e.reply.src, e.reply.dst, e.reply.sport, e.reply.dport, 1000)).toBe(h | 1);
    }
    expect(Atomics.load(new Int32Array(ct.sab, 0, 1), 0)).toBe(0); // lock released
  }, 30000);
});
