// Golden dry-run traces with the router: ARP for the gateway, a DNS query, a
// masqueraded flow (new: would-create; existing: translated), published ports, drops.
import { describe, it, expect } from 'vitest';
import { traceDryRun, formatTrace, type TraceNames } from '../../../dataplane/trace';
import { Fdb } from '../../../dataplane/tables/fdb';
import { PortTable } from '../../../dataplane/tables/ports';
import { L3Table, type L3Snapshot } from '../../../dataplane/tables/l3';
import { Neigh, NEIGH_DEFAULTS, UPLINK_NET } from '../../../dataplane/tables/neigh';
import { Conntrack, CT_KIND_MASQ } from '../../../dataplane/tables/conntrack';
import type { Emitter } from '../../../dataplane/stages/stage';
import { IPPROTO_TCP, TCP_ACK, TCP_SYN, macHi, macLo, parseIp, parseMac } from '../../../dataplane/wire';
import { arpRequest, icmpEcho, tcpFrame, tcpSyn, udpFrame } from '../../fixtures/frames';
import { liveL3 } from '../../../control/trace';

const C1 = '10.89.0.2';
const C1_MAC = '02:42:0a:59:00:02';
const GW = '10.89.0.1';
const GW_MAC = '02:42:0a:59:00:01';
const HOST_MAC = '02:42:0a:59:00:fe';
const D1 = '10.90.0.2';
const UP = '198.51.100.2';
const UP_MAC = '52:54:00:12:34:02';
const UP_GW = '198.51.100.1';
const UP_GW_MAC = '52:54:00:12:34:01';
const NOW = 1000;

const ip = (t: string): number => parseIp(t) >>> 0;
const hi = (m: string): number => macHi(parseMac(m), 0);
const lo = (m: string): number => macLo(parseMac(m), 0);

const SNAP: L3Snapshot = {
  nets: [
    {
      id: 0, gwIp: ip(GW), gwMacHi: hi(GW_MAC), gwMacLo: lo(GW_MAC), subnet: ip('10.89.0.0'), mask: 0xffffff00,
      internal: false, icc: true, hostPort: 0, hostIp: ip('10.89.0.254'), hostMacHi: hi(HOST_MAC), hostMacLo: lo(HOST_MAC),
    },
    {
      id: 1, gwIp: ip('10.90.0.1'), gwMacHi: hi('02:42:0a:5a:00:01'), gwMacLo: lo('02:42:0a:5a:00:01'), subnet: ip('10.90.0.0'),
      mask: 0xffffff00, internal: false, icc: true, hostPort: -1, hostIp: 0, hostMacHi: 0, hostMacLo: 0,
    },
  ],
  uplink: { port: 9, ip: ip(UP), subnet: ip('198.51.100.0'), mask: 0xffffff00, macHi: hi(UP_MAC), macLo: lo(UP_MAC), gateway: ip(UP_GW) },
  mappings: [{ id: 1, proto: IPPROTO_TCP, hostIp: 0, hostPort: 8080, net: 0, ip: ip(C1), port: 80 }],
};

/** A dry run must never emit: every call is a test failure. */
const NO_EMIT: Emitter = {
  buf: new Uint8Array(0),
  alloc: () => { throw new Error('dry run allocated a frame'); },
  send: () => { throw new Error('dry run sent a frame'); },
  punt: () => { throw new Error('dry run punted a frame'); },
};

function setup() {
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: 300 });
  const ports = new PortTable(16);
  ports.add(0, 'vsw0', 0);
  ports.add(1, 'vswaaaa0001', 0);
  ports.add(2, 'vswaaaa0002', 0);
  ports.add(3, 'vswbbbb0001', 1);
  ports.add(9, 'up0', UPLINK_NET);
  const neigh = new Neigh({ ...NEIGH_DEFAULTS, maxEntries: 64 });
  const ct = new Conntrack({ maxEntries: 64, maxPerSource: 16, portMin: 1024, portMax: 65535 });
  const l3 = { table: new L3Table(SNAP), neigh, ct, emit: NO_EMIT, dns: null };
  const names: TraceNames = {
    port: (id) => ({ 0: 'vsw0 (host)', 1: 'vswaaaa0001 (c1)', 2: 'vswaaaa0002 (c2)', 3: 'vswbbbb0001 (d1)', 9: 'up0' } as Record<number, string>)[id] ?? `#${id}`,
    network: (id) => ({ 0: 'bridge', 1: 'netb', [UPLINK_NET]: 'uplink' } as Record<number, string>)[id] ?? `#${id}`,
  };
  return { fdb, neigh, ct, names, tables: { fdb, ports, now: NOW, l3 } };
}

/** The connection 10.89.0.2:40000 > 198.51.100.1:80, masqueraded as 198.51.100.2:40000, with the neighbours known. */
function withConnection(s: ReturnType<typeof setup>): void {
  s.neigh.learn(UPLINK_NET, ip(UP_GW), hi(UP_GW_MAC), lo(UP_GW_MAC), NOW);
  s.neigh.learn(0, ip(C1), hi(C1_MAC), lo(C1_MAC), NOW);
  s.fdb.learn(0, 0, hi(C1_MAC), lo(C1_MAC), 1, NOW);
  expect(s.ct.create(IPPROTO_TCP, ip(C1), ip(UP_GW), 40000, 80, ip(UP_GW), ip(UP), 80, 40000, true, 0, -1, CT_KIND_MASQ, NOW)).toBeGreaterThanOrEqual(0);
}

/** Everything a dry run must leave alone. */
function tablesOf(s: ReturnType<typeof setup>) {
  return { fdb: s.fdb.entries(), neigh: s.neigh.list(NOW), ct: s.ct.list(NOW), counters: s.ct.counters() };
}

const fromC1 = { srcMac: C1_MAC, dstMac: GW_MAC, srcIp: C1 };
const fromOutside = { srcMac: UP_GW_MAC, dstMac: UP_MAC, dstIp: UP };

describe('golden dry-run traces with the router', () => {
  it('ARP request for the gateway: answered out of the ingress port, nothing learned', () => {
    const s = setup();
    const r = traceDryRun(arpRequest({ srcMac: C1_MAC, srcIp: C1, targetIp: GW }), 1, s.tables, s.names);
    expect(formatTrace(r)).toBe([
      'frame   02:42:0a:59:00:02 > ff:ff:ff:ff:ff:ff, ARP request who-has 10.89.0.1 tell 10.89.0.2',
      'parse    ok: 02:42:0a:59:00:02 > ff:ff:ff:ff:ff:ff, ethertype 0x0806, 42 bytes',
      'ingress  port vswaaaa0001 (c1): network bridge, vlan 0',
      'learn    (dry run, not learned) new: 02:42:0a:59:00:02 on vswaaaa0001 (c1)',
      'gateway  arp-reply: 10.89.0.1 is-at 02:42:0a:59:00:01 -> vswaaaa0001 (c1)',
      '',
    ].join('\n'));
    expect(r.verdict).toEqual({ kind: 'unicast', ports: ['vswaaaa0001 (c1)'] });
    expect(s.neigh.list(NOW)).toEqual([]);
  });

  it('a gratuitous ARP: the neighbour it would teach, then L2 flooding', () => {
    const s = setup();
    const r = traceDryRun(arpRequest({ srcMac: C1_MAC, srcIp: C1, targetIp: C1 }), 1, s.tables, s.names);
    expect(r.steps.slice(3).map((x) => `${x.stage}: ${x.text}`)).toEqual([
      'gateway: arp-learned: 10.89.0.2 is-at 02:42:0a:59:00:02 (dry run, not learned), continue',
      'forward: flood (broadcast) to 2 port(s): vsw0 (host), vswaaaa0002 (c2)',
    ]);
  });

  it('DNS query to the gateway: punted to the DNS server', () => {
    const s = setup();
    const q = udpFrame({ ...fromC1, dstIp: GW, srcPort: 33333, dstPort: 53, payload: new Uint8Array(20) });
    const r = traceDryRun(q, 1, s.tables, s.names);
    expect(formatTrace(r)).toBe([
      'frame   02:42:0a:59:00:02 > 02:42:0a:59:00:01, IPv4 10.89.0.2.33333 > 10.89.0.1.53 UDP len 20',
      'parse    ok: 02:42:0a:59:00:02 > 02:42:0a:59:00:01, ethertype 0x0800, 62 bytes',
      'ingress  port vswaaaa0001 (c1): network bridge, vlan 0',
      'learn    (dry run, not learned) new: 02:42:0a:59:00:02 on vswaaaa0001 (c1)',
      'gateway  dns-punt: 10.89.0.2:33333 > 10.89.0.1:53 to the DNS server (main thread)',
      '',
    ].join('\n'));
    expect(r.verdict).toEqual({ kind: 'local', ports: [] });
  });

  it('DNS over TCP: would be DNATed to the host TAP', () => {
    const s = setup();
    const r = traceDryRun(tcpSyn({ ...fromC1, dstIp: GW, srcPort: 45000, dstPort: 53 }), 1, s.tables, s.names);
    expect(r.steps[3].text).toBe('would-create: dns over tcp 10.89.0.2:45000 > 10.89.0.1:53 to 10.89.0.254:53 (dry run: no connection created)');
  });

  it('a masqueraded TCP SYN to the outside: would create the connection', () => {
    const s = setup();
    const r = traceDryRun(tcpSyn({ ...fromC1, dstIp: UP_GW, srcPort: 40000, dstPort: 80 }), 1, s.tables, s.names);
    expect(formatTrace(r)).toBe([
      'frame   02:42:0a:59:00:02 > 02:42:0a:59:00:01, IPv4 10.89.0.2.40000 > 198.51.100.1.80 TCP [S] len 0',
      'parse    ok: 02:42:0a:59:00:02 > 02:42:0a:59:00:01, ethertype 0x0800, 54 bytes',
      'ingress  port vswaaaa0001 (c1): network bridge, vlan 0',
      'learn    (dry run, not learned) new: 02:42:0a:59:00:02 on vswaaaa0001 (c1)',
      'gateway  would-create: masquerade 10.89.0.2:40000 > 198.51.100.1:80 as 198.51.100.2 (dry run: no connection created)',
      '',
    ].join('\n'));
    expect(r.verdict).toEqual({ kind: 'local', ports: [] });
    expect(s.ct.size()).toBe(0);
  });

  it('a packet of an existing connection: translated (both flows shown) and routed out of the uplink', () => {
    const s = setup();
    withConnection(s);
    const before = tablesOf(s);
    const ack = tcpFrame({ ...fromC1, dstIp: UP_GW, srcPort: 40000, dstPort: 80, flags: TCP_ACK });
    const given = ack.slice();
    const r = traceDryRun(ack, 1, s.tables, s.names);
    expect(formatTrace(r)).toBe([
      'frame   02:42:0a:59:00:02 > 02:42:0a:59:00:01, IPv4 10.89.0.2.40000 > 198.51.100.1.80 TCP [.] len 0',
      'parse    ok: 02:42:0a:59:00:02 > 02:42:0a:59:00:01, ethertype 0x0800, 54 bytes',
      'ingress  port vswaaaa0001 (c1): network bridge, vlan 0',
      'learn    (dry run, not learned) refresh: 02:42:0a:59:00:02 on vswaaaa0001 (c1)',
      'gateway  conntrack: 10.89.0.2:40000 > 198.51.100.1:80 => 198.51.100.2:40000 > 198.51.100.1:80 -> up0',
      '',
    ].join('\n'));
    expect(r.verdict).toEqual({ kind: 'unicast', ports: ['up0'] });
    // Nothing accounted, nothing learned, and the caller's frame is as it was.
    expect(tablesOf(s)).toEqual(before);
    expect(ack).toEqual(given);
  });

  it('the reply from the outside: translated back to the container', () => {
    const s = setup();
    withConnection(s);
    const synack = tcpFrame({ ...fromOutside, srcIp: UP_GW, srcPort: 80, dstPort: 40000, flags: TCP_SYN | TCP_ACK });
    const r = traceDryRun(synack, 9, s.tables, s.names);
    expect(formatTrace(r)).toBe([
      'frame   52:54:00:12:34:01 > 52:54:00:12:34:02, IPv4 198.51.100.1.80 > 198.51.100.2.40000 TCP [S.] len 0',
      'parse    ok: 52:54:00:12:34:01 > 52:54:00:12:34:02, ethertype 0x0800, 54 bytes',
      'ingress  port up0: network uplink, vlan 0',
      'learn    skipped: the uplink is not a switch port (its MACs are neighbours)',
      'gateway  conntrack: 198.51.100.1:80 > 198.51.100.2:40000 => 198.51.100.1:80 > 10.89.0.2:40000 -> vswaaaa0001 (c1)',
      '',
    ].join('\n'));
  });

  it('a new connection to a published port, from the outside', () => {
    const s = setup();
    const r = traceDryRun(tcpSyn({ ...fromOutside, srcIp: '203.0.113.50', srcPort: 50000, dstPort: 8080 }), 9, s.tables, s.names);
    expect(r.steps[3]).toEqual({
      stage: 'gateway',
      text: 'would-create: published port 203.0.113.50:50000 > 198.51.100.2:8080 to 10.89.0.2:80 (dry run: no connection created)',
    });
  });

  it('ping to the gateway: answered', () => {
    const s = setup();
    const r = traceDryRun(icmpEcho({ ...fromC1, dstIp: GW, id: 7, seq: 1 }), 1, s.tables, s.names);
    expect(r.steps[3].text).toBe('ping: 10.89.0.2 > 10.89.0.1 icmp id 7 answered -> vswaaaa0001 (c1)');
    expect(r.verdict).toEqual({ kind: 'unicast', ports: ['vswaaaa0001 (c1)'] });
  });

  it('drops: another vsw network (inter-network), an unknown next hop (neigh-miss)', () => {
    const s = setup();
    const r = traceDryRun(tcpSyn({ ...fromC1, dstIp: D1, srcPort: 40000, dstPort: 80 }), 1, s.tables, s.names);
    expect(formatTrace(r)).toBe([
      'frame   02:42:0a:59:00:02 > 02:42:0a:59:00:01, IPv4 10.89.0.2.40000 > 10.90.0.2.80 TCP [S] len 0',
      'parse    ok: 02:42:0a:59:00:02 > 02:42:0a:59:00:01, ethertype 0x0800, 54 bytes',
      'ingress  port vswaaaa0001 (c1): network bridge, vlan 0',
      'learn    (dry run, not learned) new: 02:42:0a:59:00:02 on vswaaaa0001 (c1)',
      'gateway  drop: inter-network',
      '',
    ].join('\n'));
    expect(r.verdict).toEqual({ kind: 'drop', ports: [], reason: 'inter-network' });
    // The connection exists but the uplink gateway's MAC is unknown.
    s.ct.create(IPPROTO_TCP, ip(C1), ip(UP_GW), 40000, 80, ip(UP_GW), ip(UP), 80, 40000, true, 0, -1, CT_KIND_MASQ, NOW);
    const miss = traceDryRun(tcpFrame({ ...fromC1, dstIp: UP_GW, srcPort: 40000, dstPort: 80, flags: TCP_ACK }), 1, s.tables, s.names);
    expect(miss.steps.at(-1)).toEqual({ stage: 'gateway', text: 'drop: neigh-miss' });
    expect(s.neigh.list(NOW)).toEqual([]); // no INCOMPLETE entry either
  });

  it('container to container (not via the gateway): pass, then L2', () => {
    const s = setup();
    const r = traceDryRun(icmpEcho({ srcMac: C1_MAC, dstMac: '02:42:0a:59:00:03', srcIp: C1, dstIp: '10.89.0.3', id: 1, seq: 1 }), 1, s.tables, s.names);
    expect(r.steps.slice(3).map((x) => x.text)).toEqual([
      'pass (not for the gateway)',
      'flood (unknown unicast 02:42:0a:59:00:03) to 2 port(s): vsw0 (host), vswaaaa0002 (c2)',
    ]);
  });
});

describe('control/trace liveL3: the router tables a daemon dry run uses', () => {
  it('none before the router sent a configuration; then the live tables and the last snapshot', () => {
    const neigh = new Neigh({ ...NEIGH_DEFAULTS, maxEntries: 16 });
    const ct = new Conntrack({ maxEntries: 16, maxPerSource: 16, portMin: 1024, portMax: 65535 });
    expect(liveL3({ lastL3: null, neigh, ct })).toBeNull();
    const l3 = liveL3({ lastL3: SNAP, neigh, ct });
    expect(l3).not.toBeNull();
    expect(l3?.neigh).toBe(neigh);
    expect(l3?.ct).toBe(ct);
    expect(l3?.table.netOfIp(ip(C1))?.id).toBe(0);
    expect(l3?.table.uplink?.port).toBe(9);
    expect(l3?.table.mapping(IPPROTO_TCP, ip(UP), 8080)?.port).toBe(80);
    // It sends nothing, ever.
    expect(l3?.emit.alloc()).toBe(-1);
  });
});
