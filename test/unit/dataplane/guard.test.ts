// Hostile containers (docs/L3.md "Hostile containers"): port security at ingress
// (dataplane/stages/guard.ts), the per-port share of the connection table, the ICMP error
// rate limit (dataplane/router/icmp-limit.ts) and what the neighbour table refuses. Frames go
// through the whole pipeline with real tables, as in gateway.test.ts.
import { describe, it, expect, beforeEach } from 'vitest';
import { Pipeline } from '../../../dataplane/pipeline';
import { Packet, OUT_DROP } from '../../../dataplane/packet';
import { DROP_REASONS } from '../../../dataplane/drops';
import { Fdb } from '../../../dataplane/tables/fdb';
import { PortTable, type PortGuard } from '../../../dataplane/tables/ports';
import { L3Table, type L3Snapshot } from '../../../dataplane/tables/l3';
import { Neigh, NEIGH_DEFAULTS, NEIGH_LEARN_NEW, NEIGH_LEARN_REFUSED, UPLINK_NET } from '../../../dataplane/tables/neigh';
import { CT_ERR_PORT_LIMIT, CT_KIND_MASQ, CT_MAX_PER_PORT, Conntrack, type ConntrackConfig } from '../../../dataplane/tables/conntrack';
import type { Emitter, StageContext } from '../../../dataplane/stages/stage';
import { ICMP_ERRORS_BURST, ICMP_ERRORS_PER_SEC, TokenBucket, icmpErrors } from '../../../dataplane/router/icmp-limit';
import {
  ARP_OP_REPLY, ARP_OP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4, IPPROTO_UDP, buildArp, buildEthernet, buildIpv4,
  macHi, macLo, parseIp, parseMac,
} from '../../../dataplane/wire';
import { arpReply, arpRequest, icmpEcho, udpFrame } from '../../fixtures/frames';

const GW = '10.89.0.1';
const GW_MAC = '02:42:0a:59:00:01';
const C1 = '10.89.0.2';
const C1_MAC = '02:42:0a:59:00:02';
const C2 = '10.89.0.3';
const C2_MAC = '02:42:0a:59:00:03';
const EXTRA = '10.89.0.201';           // an address c1 adds to its eth0 itself
const OTHER_MAC = '02:42:0a:59:00:c9'; // a MAC c1 gives its eth0 itself
const UP = '198.51.100.2';
const UP_MAC = '52:54:00:00:00:02';
const UP_GW = '198.51.100.1';
const UP_GW_MAC = '52:54:00:00:00:01';
const SERVER = '203.0.113.10';

const PORT_HOST = 0;
const PORT_C1 = 1;
const PORT_C2 = 2;
const PORT_UP = 9;
const NOW = 1000;

const ip = (t: string): number => parseIp(t) >>> 0;
const hi = (m: string): number => macHi(parseMac(m), 0);
const lo = (m: string): number => macLo(parseMac(m), 0);
const guardOf = (mac: string, addr: string): PortGuard => ({ macHi: hi(mac), macLo: lo(mac), ips: [ip(addr)] });

function snapshot(): L3Snapshot {
  return {
    nets: [{
      id: 0, gwIp: ip(GW), gwMacHi: hi(GW_MAC), gwMacLo: lo(GW_MAC), subnet: ip('10.89.0.0'), mask: 0xffffff00,
      internal: false, icc: true, hostPort: PORT_HOST, hostIp: ip('10.89.0.254'), hostMacHi: hi('02:42:0a:59:00:fe'), hostMacLo: lo('02:42:0a:59:00:fe'),
    }],
    uplink: { port: PORT_UP, ip: ip(UP), subnet: ip('198.51.100.0'), mask: 0xffffff00, macHi: hi(UP_MAC), macLo: lo(UP_MAC), gateway: ip(UP_GW) },
    mappings: [],
  };
}

class Emit implements Emitter {
  readonly buf = new Uint8Array(2048 * 64);
  n = 0;
  sent = 0;
  alloc(): number { return this.n < 64 ? (this.n++) * 2048 : -1; }
  send(): void { this.sent++; }
  punt(): boolean { return false; }
}

function setup(o: { guard?: boolean; ct?: Partial<ConntrackConfig> } = {}) {
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: 300 });
  const ports = new PortTable(16);
  ports.add(PORT_HOST, 'vsw0', 0);
  ports.add(PORT_C1, 'vswc1', 0);
  ports.add(PORT_C2, 'vswc2', 0);
  ports.add(PORT_UP, 'up0', UPLINK_NET);
  if (o.guard !== false) {
    ports.setGuard(PORT_C1, guardOf(C1_MAC, C1));
    ports.setGuard(PORT_C2, guardOf(C2_MAC, C2));
  }
  const neigh = new Neigh({ ...NEIGH_DEFAULTS, maxEntries: 64 });
  const ct = new Conntrack({ maxEntries: 256, maxPerSource: 256, portMin: 1024, portMax: 65535, ...o.ct });
  const emit = new Emit();
  const ctx: StageContext = { fdb, ports, now: NOW, dryRun: false, l3: { table: new L3Table(snapshot()), neigh, ct, emit, dns: null } };
  neigh.learn(UPLINK_NET, ip(UP_GW), hi(UP_GW_MAC), lo(UP_GW_MAC), NOW);
  return { fdb, ports, neigh, ct, emit, ctx, pipe: new Pipeline() };
}
type Setup = ReturnType<typeof setup>;

function run(s: Setup, frame: Uint8Array, inPort: number): Packet {
  s.emit.n = 0;
  const buf = new Uint8Array(frame.length + 64);
  buf.set(frame, 32);
  const p = new Packet();
  p.reset(buf, 32, frame.length, false, inPort, 0);
  s.pipe.run(p, s.ctx);
  return p;
}

const dropOf = (p: Packet): string | undefined => (p.out === OUT_DROP ? DROP_REASONS[p.drop] : undefined);

/** An ARP packet whose Ethernet source and ARP sender can differ. */
function arpFrame(o: { ethSrc: string; sha: string; spa: string; tpa: string; op?: number; dst?: string }): Uint8Array {
  return buildEthernet({
    dst: o.dst ?? 'ff:ff:ff:ff:ff:ff', src: o.ethSrc, etherType: ETHERTYPE_ARP,
    payload: buildArp({ op: o.op ?? ARP_OP_REQUEST, sha: o.sha, spa: o.spa, tpa: o.tpa }),
  });
}

const toGw = (srcMac: string, srcIp: string, dstIp: string, ttl = 64): Uint8Array =>
  udpFrame({ srcMac, dstMac: GW_MAC, srcIp, dstIp, srcPort: 40000, dstPort: 53000, ttl });

// ---------------------------------------------------------------------------------------

describe('port security (a container port sends only as its endpoint)', () => {
  it('valid frames pass: its own MAC and address (IPv4, ARP, an RFC 5227 probe from 0.0.0.0), and IPv6 from its MAC', () => {
    const s = setup();
    expect(dropOf(run(s, icmpEcho({ srcMac: C1_MAC, dstMac: C2_MAC, srcIp: C1, dstIp: C2, id: 1, seq: 1 }), PORT_C1))).toBeUndefined();
    expect(dropOf(run(s, arpRequest({ srcMac: C1_MAC, srcIp: C1, targetIp: C2 }), PORT_C1))).toBeUndefined();
    expect(dropOf(run(s, arpFrame({ ethSrc: C1_MAC, sha: C1_MAC, spa: '0.0.0.0', tpa: C1 }), PORT_C1))).toBeUndefined();
    const ipv6 = buildEthernet({ dst: '33:33:00:00:00:02', src: C1_MAC, etherType: 0x86dd, payload: new Uint8Array(40) });
    expect(dropOf(run(s, ipv6, PORT_C1))).toBeUndefined();
    // To the outside: masqueraded (a connection), not refused.
    expect(dropOf(run(s, toGw(C1_MAC, C1, SERVER), PORT_C1))).toBeUndefined();
    expect(s.ct.counters().entries).toBe(1);
  });

  it('a spoofed Ethernet source is dropped as spoofed-source before learning: the neighbour keeps its MAC table entry', () => {
    const s = setup();
    run(s, icmpEcho({ srcMac: C2_MAC, dstMac: C1_MAC, srcIp: C2, dstIp: C1, id: 1, seq: 1 }), PORT_C2); // c2 is learned
    const p = run(s, icmpEcho({ srcMac: C2_MAC, dstMac: GW_MAC, srcIp: C1, dstIp: GW, id: 1, seq: 1 }), PORT_C1);
    expect(dropOf(p)).toBe('spoofed-source');
    const q = run(s, icmpEcho({ srcMac: OTHER_MAC, dstMac: C2_MAC, srcIp: C1, dstIp: C2, id: 1, seq: 1 }), PORT_C1);
    expect(dropOf(q)).toBe('spoofed-source');
    expect(s.fdb.lookup(0, 0, hi(C2_MAC), lo(C2_MAC))).toBe(PORT_C2);
    expect(s.fdb.lookup(0, 0, hi(OTHER_MAC), lo(OTHER_MAC))).toBe(-1);
  });

  it('a spoofed IPv4 source (another address on its own eth0, a neighbour\'s, 0.0.0.0) is dropped: no connection', () => {
    const s = setup();
    for (const src of [EXTRA, C2, '0.0.0.0']) {
      expect(dropOf(run(s, toGw(C1_MAC, src, SERVER), PORT_C1)), src).toBe('spoofed-source');
    }
    expect(s.ct.counters().entries).toBe(0);
    expect(s.neigh.lookup(0, ip(C2), NOW)).toBe(false); // not learned from c1's frames
  });

  it('a spoofed ARP sender (MAC or address) is dropped: the gateway\'s neighbour entry for c2 stays c2\'s', () => {
    const s = setup();
    run(s, arpRequest({ srcMac: C2_MAC, srcIp: C2, targetIp: GW }), PORT_C2);
    expect(s.neigh.lookup(0, ip(C2), NOW) && [s.neigh.hi, s.neigh.lo]).toEqual([hi(C2_MAC), lo(C2_MAC)]);
    // c1 claims c2's address with its own MAC (gratuitous reply), or sends an ARP whose
    // sender MAC is not its own.
    const poison = arpReply({ srcMac: C1_MAC, srcIp: C2, dstMac: GW_MAC, dstIp: GW });
    expect(dropOf(run(s, poison, PORT_C1))).toBe('spoofed-source');
    expect(dropOf(run(s, arpFrame({ ethSrc: C1_MAC, sha: OTHER_MAC, spa: C1, tpa: GW, op: ARP_OP_REPLY, dst: GW_MAC }), PORT_C1))).toBe('spoofed-source');
    expect(s.neigh.lookup(0, ip(C2), NOW) && [s.neigh.hi, s.neigh.lo]).toEqual([hi(C2_MAC), lo(C2_MAC)]);
  });

  it('with port security off (no guard on the port) the same frames pass', () => {
    const s = setup({ guard: false });
    expect(dropOf(run(s, toGw(C1_MAC, EXTRA, SERVER), PORT_C1))).toBeUndefined();
    expect(dropOf(run(s, icmpEcho({ srcMac: OTHER_MAC, dstMac: C2_MAC, srcIp: C1, dstIp: C2, id: 1, seq: 1 }), PORT_C1))).toBeUndefined();
    expect(dropOf(run(s, arpReply({ srcMac: C1_MAC, srcIp: C2, dstMac: GW_MAC, dstIp: GW }), PORT_C1))).toBeUndefined();
    expect(s.ct.counters().entries).toBe(1);
  });

  it('the host port and the uplink are never checked', () => {
    const s = setup();
    s.ports.setGuard(PORT_C1, guardOf(C1_MAC, C1));
    expect(dropOf(run(s, icmpEcho({ srcMac: OTHER_MAC, dstMac: C2_MAC, srcIp: EXTRA, dstIp: C2, id: 1, seq: 1 }), PORT_HOST))).toBeUndefined();
    expect(s.ports.guardOf(PORT_HOST)).toBeNull();
    expect(s.ports.guardOf(PORT_C1)).toEqual(guardOf(C1_MAC, C1));
    s.ports.remove(PORT_C1);
    expect(s.ports.guardOf(PORT_C1)).toBeNull();
  });

  it('the port table refuses a malformed guard', () => {
    const s = setup();
    expect(() => s.ports.setGuard(PORT_C1, { macHi: 0x10000, macLo: 0, ips: [] })).toThrow(RangeError);
    expect(() => s.ports.setGuard(PORT_C1, { macHi: 2, macLo: 0, ips: [-1] })).toThrow(RangeError);
    expect(() => s.ports.setGuard(12, guardOf(C1_MAC, C1))).toThrow(RangeError); // no such port
  });
});

describe('the per-port share of the connection table', () => {
  it('a port holds at most maxPerPort connections, whatever its source addresses: conntrack-port-limit', () => {
    const s = setup({ guard: false, ct: { maxPerPort: 4 } });
    const srcs = [C1, EXTRA, '10.89.0.202'];
    let n = 0;
    for (const src of srcs) for (let i = 0; i < 2; i++) {
      const f = udpFrame({ srcMac: C1_MAC, dstMac: GW_MAC, srcIp: src, dstIp: SERVER, srcPort: 40000 + i, dstPort: 53, ttl: 64 });
      const p = run(s, f, PORT_C1);
      if (dropOf(p) === undefined) n++;
      else expect(dropOf(p)).toBe('conntrack-port-limit');
    }
    expect(n).toBe(4);
    expect(s.ct.portCount(PORT_C1)).toBe(4);
    expect(s.ct.counters().portLimit).toBe(2);
    // Another port is not held back.
    expect(dropOf(run(s, udpFrame({ srcMac: C2_MAC, dstMac: GW_MAC, srcIp: C2, dstIp: SERVER, srcPort: 1, dstPort: 53 }), PORT_C2))).toBeUndefined();
  });

  it('a connection that goes gives its slot back', () => {
    const ct = new Conntrack({ maxEntries: 16, maxPerSource: 16, portMin: 1024, portMax: 65535, maxPerPort: 1 });
    const a = ct.create(IPPROTO_UDP, ip(C1), ip(SERVER), 1, 53, ip(SERVER), ip(UP), 53, 1, true, 0, -1, CT_KIND_MASQ, NOW, 3);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(ct.create(IPPROTO_UDP, ip(C1), ip(SERVER), 2, 53, ip(SERVER), ip(UP), 53, 2, true, 0, -1, CT_KIND_MASQ, NOW, 3)).toBe(CT_ERR_PORT_LIMIT);
    // Not counted per port (the uplink: -1): not limited.
    expect(ct.create(IPPROTO_UDP, ip(C1), ip(SERVER), 3, 53, ip(SERVER), ip(UP), 53, 3, true, 0, -1, CT_KIND_MASQ, NOW, -1)).toBeGreaterThanOrEqual(0);
    ct.expire(NOW + 1000);
    expect(ct.portCount(3)).toBe(0);
    expect(ct.create(IPPROTO_UDP, ip(C1), ip(SERVER), 2, 53, ip(SERVER), ip(UP), 53, 2, true, 0, -1, CT_KIND_MASQ, NOW + 1000, 3)).toBeGreaterThanOrEqual(0);
  });

  it('the default share is a quarter of the default table', () => {
    expect(CT_MAX_PER_PORT).toBe(16384);
    expect(() => new Conntrack({ maxEntries: 16, maxPerSource: 16, portMin: 1024, portMax: 65535, maxPerPort: 0 })).toThrow(RangeError);
  });
});

describe('the ICMP error rate limit', () => {
  it('a token bucket: the burst at once, then the rate, never more than the burst after a pause', () => {
    let t = 0;
    const b = new TokenBucket(ICMP_ERRORS_PER_SEC, ICMP_ERRORS_BURST, () => t);
    let sent = 0;
    for (let i = 0; i < 200; i++) if (b.take()) sent++;
    expect(sent).toBe(50);
    // One second of 20 attempts per millisecond: about 1,000 more.
    sent = 0;
    for (let ms = 1; ms <= 1000; ms++) { t = ms; for (let i = 0; i < 20; i++) if (b.take()) sent++; }
    expect(sent).toBe(1000);
    t += 60_000;
    sent = 0;
    for (let i = 0; i < 200; i++) if (b.take()) sent++;
    expect(sent).toBe(50);
    // A clock that goes back does not mint tokens.
    t -= 5000;
    expect(b.take()).toBe(false);
  });

  describe('in the router', () => {
    let t = 0;
    beforeEach(() => { t = 0; icmpErrors.clock = () => t; icmpErrors.refill(); });

    it('TTL-1 datagrams: time exceeded for the burst, then icmp-ratelimited; echo replies are not limited', () => {
      const s = setup();
      const reasons = new Map<string, number>();
      for (let i = 0; i < 200; i++) {
        const r = dropOf(run(s, toGw(C1_MAC, C1, SERVER, 1), PORT_C1)) ?? 'none';
        reasons.set(r, (reasons.get(r) ?? 0) + 1);
      }
      expect(Object.fromEntries(reasons)).toEqual({ 'ttl-exceeded': 50, 'icmp-ratelimited': 150 });
      expect(s.emit.sent).toBe(50);
      t = 30; // 30 ms later: 30 more (and never more than the burst of 50 however long the pause)
      let more = 0;
      for (let i = 0; i < 200; i++) if (dropOf(run(s, toGw(C1_MAC, C1, SERVER, 1), PORT_C1)) === 'ttl-exceeded') more++;
      expect(more).toBe(30);
      // The bucket is empty, yet pings to the gateway are answered.
      const before = s.emit.sent;
      for (let i = 0; i < 100; i++) {
        const p = run(s, icmpEcho({ srcMac: C1_MAC, dstMac: GW_MAC, srcIp: C1, dstIp: GW, id: 1, seq: i }), PORT_C1);
        expect(p.out).toBe(PORT_C1);
      }
      expect(s.emit.sent).toBe(before);
      expect(s.ct.counters().entries).toBe(0); // a probe that dies leaves no connection
    });
  });
});

describe('what the neighbour table refuses', () => {
  it('the table: multicast, broadcast and all-zero MACs, counted', () => {
    const n = new Neigh({ ...NEIGH_DEFAULTS, maxEntries: 16 });
    expect(n.learn(0, ip(C1), hi('01:00:5e:00:00:01'), lo('01:00:5e:00:00:01'), NOW)).toBe(NEIGH_LEARN_REFUSED);
    expect(n.learn(0, ip(C1), 0xffff, 0xffffffff, NOW)).toBe(NEIGH_LEARN_REFUSED);
    expect(n.learn(0, ip(C1), 0, 0, NOW)).toBe(NEIGH_LEARN_REFUSED);
    expect(n.counters()).toMatchObject({ entries: 0, refused: 3 });
    expect(n.learn(0, ip(C1), hi(C1_MAC), lo(C1_MAC), NOW)).toBe(NEIGH_LEARN_NEW);
  });

  it('the router: the uplink\'s own address with a multicast MAC, network and broadcast addresses, a gateway address', () => {
    const s = setup({ guard: false });
    const up = (spa: string, sha: string): Uint8Array => arpFrame({ ethSrc: UP_GW_MAC, sha, spa, tpa: UP });
    run(s, up(UP, '01:00:5e:00:00:01'), PORT_UP);
    run(s, up(UP, '02:00:00:00:00:99'), PORT_UP);        // the switch's own address, any MAC
    run(s, up('198.51.100.0', '02:00:00:00:00:99'), PORT_UP);
    run(s, up('198.51.100.255', '02:00:00:00:00:99'), PORT_UP);
    run(s, arpFrame({ ethSrc: C1_MAC, sha: C1_MAC, spa: '10.89.0.0', tpa: GW }), PORT_C1);
    run(s, arpFrame({ ethSrc: C1_MAC, sha: C1_MAC, spa: '10.89.0.255', tpa: GW }), PORT_C1);
    run(s, arpFrame({ ethSrc: C1_MAC, sha: C1_MAC, spa: GW, tpa: C2 }), PORT_C1);
    const fromNetAddr = buildEthernet({
      dst: GW_MAC, src: C1_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: '10.89.0.255', dst: SERVER, protocol: 1, payload: new Uint8Array(8) }),
    });
    run(s, fromNetAddr, PORT_C1);
    const learned = s.neigh.list(NOW).map((e) => `${e.net}/${e.ip >>> 0}`);
    expect(learned).toEqual([`${UPLINK_NET}/${ip(UP_GW)}`]);
    expect(s.neigh.counters().refused).toBe(8);
    // A real neighbour is still learned.
    run(s, arpRequest({ srcMac: C2_MAC, srcIp: C2, targetIp: GW }), PORT_C2);
    expect(s.neigh.lookup(0, ip(C2), NOW)).toBe(true);
  });
});
