// The gateway stage (the router, docs/L3.md), frames in and frames out: a real FDB, port
// table, L3 table, neighbour table and conntrack, a recording Emitter, and the whole pipeline
// (parse, ingress, learn, gateway, forward). Every frame that comes out is parsed back with
// the wire views and its checksums are recomputed from scratch.
import { describe, it, expect } from 'vitest';
import { Pipeline } from '../../../dataplane/pipeline';
import { Packet, OUT_DROP, OUT_FLOOD, OUT_LOCAL } from '../../../dataplane/packet';
import { DROP_REASONS } from '../../../dataplane/drops';
import { Fdb } from '../../../dataplane/tables/fdb';
import { PortTable } from '../../../dataplane/tables/ports';
import { L3Table, type L3MappingSpec, type L3NetSpec, type L3Snapshot } from '../../../dataplane/tables/l3';
import { Neigh, NEIGH_DEFAULTS, NEIGH_INCOMPLETE, UPLINK_NET } from '../../../dataplane/tables/neigh';
import {
  CT_ERR_FULL, CT_ERR_NO_PORT, CT_ERR_SOURCE_LIMIT, CT_KIND_MASQ, Conntrack, type ConntrackConfig,
} from '../../../dataplane/tables/conntrack';
import type { Emitter, StageContext } from '../../../dataplane/stages/stage';
import { GatewayStage } from '../../../dataplane/stages/gateway';
import { L3_NONE } from '../../../dataplane/router/outcome';
import { L3_ARP_CONSUMED, L3_ARP_LEARNED, L3_ARP_REPLY } from '../../../dataplane/router/arp';
import { L3_DNS_ANSWER, L3_DNS_PUNT, L3_HOST_CT, L3_PING } from '../../../dataplane/router/local';
import { L3_CT, L3_CT_NEW, L3_DNS_UPSTREAM, L3_ICMP_ERROR, L3_NO_CT, refusalReason } from '../../../dataplane/router/nat';
import { CT_FORWARDER_PORT_MAX, CT_FORWARDER_PORT_MIN } from '../../../dataplane/tables/conntrack';
import { L3_ROUTED } from '../../../dataplane/router/route';
import {
  ARP_OP_REPLY, ARP_OP_REQUEST, ArpView, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetView, ICMP_DEST_UNREACH,
  ICMP_ECHO_REPLY, ICMP_TIME_EXCEEDED, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_MF, IcmpView, Ipv4View,
  TCP_ACK, TCP_SYN, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, VnetHdrView, buildEthernet, buildIcmp, buildIpv4,
  finishPartialChecksum, fold, ipToString, macHi, macLo, macToString, onesSum, parseIp, parseMac,
  pseudoHeaderSum, readU16, writeU16,
} from '../../../dataplane/wire';
import { arpReply, arpRequest, icmpEcho, tcpFrame, tcpSyn, udpFrame } from '../../fixtures/frames';
import { WorkerDns } from '../../../dataplane/l3/dns';
import { decode, makeQuery } from '../dns/helpers';

// ---------------------------------------------------------------- the setup

const GW = '10.89.0.1';
const GW_MAC = '02:42:0a:59:00:01';
const HOST_IP = '10.89.0.254';
const HOST_MAC = '02:42:0a:59:00:fe';
const C1 = '10.89.0.2';
const C1_MAC = '02:42:0a:59:00:02';
const C2 = '10.89.0.3';
const C2_MAC = '02:42:0a:59:00:03';
// net 1: another vsw network
const GW1 = '10.90.0.1';
const GW1_MAC = '02:42:0a:5a:00:01';
const D1 = '10.90.0.2';
const D1_MAC = '02:42:0a:5a:00:02';
// net 2: --internal
const GW2 = '10.91.0.1';
const GW2_MAC = '02:42:0a:5b:00:01';
const I1 = '10.91.0.2';
const I1_MAC = '02:42:0a:5b:00:02';
// net 3: --icc=false, host port 5
const GW3 = '10.92.0.1';
const GW3_MAC = '02:42:0a:5c:00:01';
const HOST3 = '10.92.0.254';
const HOST3_MAC = '02:42:0a:5c:00:fe';
const E1 = '10.92.0.2';
const E1_MAC = '02:42:0a:5c:00:02';
const E2 = '10.92.0.3';
const E2_MAC = '02:42:0a:5c:00:03';
// net 4: --icc=false and no host port
const GW4_MAC = '02:42:0a:5d:00:01';
const F1_MAC = '02:42:0a:5d:00:02';
const F2_MAC = '02:42:0a:5d:00:03';
// the uplink
const UP = '198.51.100.2';
const UP_MAC = '52:54:00:00:00:02';
const UP_GW = '198.51.100.1';
const UP_GW_MAC = '52:54:00:00:00:01';
const SERVER = '203.0.113.10';   // outside, behind the uplink gateway
const CLIENT = '203.0.113.50';   // outside, a client of a published port
const NEIGHBOUR = '198.51.100.7'; // outside, on the uplink subnet

const PORT_HOST = 0;
const PORT_C1 = 1;
const PORT_C2 = 2;
const PORT_D1 = 3;
const PORT_I1 = 4;
const PORT_HOST3 = 5;
const PORT_E1 = 6;
const PORT_E2 = 7;
const PORT_F1 = 8;
const PORT_UP = 9;
const PORT_F2 = 10;

const NOW = 1000;

function ip(text: string): number { return parseIp(text) >>> 0; }
function hi(mac: string): number { return macHi(parseMac(mac), 0); }
function lo(mac: string): number { return macLo(parseMac(mac), 0); }

function netSpec(id: number, subnet: string, gw: string, gwMac: string, o: Partial<L3NetSpec> = {}): L3NetSpec {
  return {
    id, gwIp: ip(gw), gwMacHi: hi(gwMac), gwMacLo: lo(gwMac), subnet: ip(subnet), mask: 0xffffff00,
    internal: false, icc: true, hostPort: -1, hostIp: 0, hostMacHi: 0, hostMacLo: 0, ...o,
  };
}

const MAPPING: L3MappingSpec = { id: 7, proto: IPPROTO_TCP, hostIp: 0, hostPort: 8080, net: 0, ip: ip(C1), port: 80 };

function snapshot(): L3Snapshot {
  return {
    nets: [
      netSpec(0, '10.89.0.0', GW, GW_MAC, { hostPort: PORT_HOST, hostIp: ip(HOST_IP), hostMacHi: hi(HOST_MAC), hostMacLo: lo(HOST_MAC) }),
      netSpec(1, '10.90.0.0', GW1, GW1_MAC),
      netSpec(2, '10.91.0.0', GW2, GW2_MAC, { internal: true }),
      netSpec(3, '10.92.0.0', GW3, GW3_MAC, { icc: false, hostPort: PORT_HOST3, hostIp: ip(HOST3), hostMacHi: hi(HOST3_MAC), hostMacLo: lo(HOST3_MAC) }),
      netSpec(4, '10.93.0.0', '10.93.0.1', GW4_MAC, { icc: false }),
    ],
    uplink: {
      port: PORT_UP, ip: ip(UP), subnet: ip('198.51.100.0'), mask: 0xffffff00, macHi: hi(UP_MAC), macLo: lo(UP_MAC),
      gateway: ip(UP_GW),
    },
    mappings: [MAPPING],
  };
}

interface Sent { bytes: Uint8Array; port: number; net: number }

/** An Emitter that records: generated frames in `sent`, punted frames in `punted`. */
class RecordingEmitter implements Emitter {
  static readonly SLOT = 2048;
  static readonly SLOTS = 4;
  readonly buf = new Uint8Array(RecordingEmitter.SLOT * RecordingEmitter.SLOTS).fill(0xdd);
  n = 0;
  puntOk = true;
  readonly sent: Sent[] = [];
  readonly punted: { bytes: Uint8Array; port: number }[] = [];

  alloc(): number {
    return this.n < RecordingEmitter.SLOTS ? (this.n++) * RecordingEmitter.SLOT : -1;
  }

  send(off: number, len: number, port: number, net: number): void {
    this.sent.push({ bytes: this.buf.slice(off, off + len), port, net });
  }

  punt(p: Packet): boolean {
    if (!this.puntOk) return false;
    this.punted.push({ bytes: p.buf.slice(p.ethOff, p.ethOff + p.ethLen), port: p.inPort });
    return true;
  }
}

function setup(o: { ct?: Partial<ConntrackConfig>; snap?: L3Snapshot } = {}) {
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: 300 });
  const ports = new PortTable(16);
  ports.add(PORT_HOST, 'vsw0', 0);
  ports.add(PORT_C1, 'vswc1', 0);
  ports.add(PORT_C2, 'vswc2', 0);
  ports.add(PORT_D1, 'vswd1', 1);
  ports.add(PORT_I1, 'vswi1', 2);
  ports.add(PORT_HOST3, 'vsw3', 3);
  ports.add(PORT_E1, 'vswe1', 3);
  ports.add(PORT_E2, 'vswe2', 3);
  ports.add(PORT_F1, 'vswf1', 4);
  ports.add(PORT_F2, 'vswf2', 4);
  ports.add(PORT_UP, 'up0', UPLINK_NET);
  const neigh = new Neigh({ ...NEIGH_DEFAULTS, maxEntries: 64 });
  const ct = new Conntrack({ maxEntries: 64, maxPerSource: 16, portMin: 1024, portMax: 65535, ...o.ct });
  const table = new L3Table(o.snap ?? snapshot());
  const emit = new RecordingEmitter();
  const ctx: StageContext = { fdb, ports, now: NOW, dryRun: false, l3: { table, neigh, ct, emit, dns: null } };
  return { fdb, ports, neigh, ct, table, emit, ctx, pipe: new Pipeline() };
}
type Setup = ReturnType<typeof setup>;

interface Run { p: Packet; out: Uint8Array; buf: Uint8Array }

/**
 * One frame through the pipeline as if received on inPort, at offset 50 of a bigger buffer
 * (after a virtio-net header when vnet is given). `out` is the Ethernet frame as it leaves.
 */
function run(s: Setup, frame: Uint8Array, inPort: number, vnet?: Uint8Array): Run {
  s.emit.n = 0; // a new batch
  const off = 50;
  const hdr = vnet ? VNET_HDR_LEN : 0;
  const buf = new Uint8Array(off + hdr + frame.length + 100).fill(0xee);
  if (vnet) buf.set(vnet, off);
  buf.set(frame, off + hdr);
  const p = new Packet();
  p.reset(buf, off, hdr + frame.length, vnet !== undefined, inPort, 0);
  s.pipe.run(p, s.ctx);
  return { p, out: buf.slice(p.ethOff, p.ethOff + p.ethLen), buf };
}

function dropOf(p: Packet): string | undefined {
  return p.out === OUT_DROP ? DROP_REASONS[p.drop] : undefined;
}

/** Teach the tables that a container lives at mac/ip on port (as its own traffic would). */
function known(s: Setup, net: number, port: number, mac: string, addr: string): void {
  s.fdb.learn(net, 0, hi(mac), lo(mac), port, NOW);
  s.neigh.learn(net, ip(addr), hi(mac), lo(mac), NOW);
}

function uplinkGatewayKnown(s: Setup): void {
  s.neigh.learn(UPLINK_NET, ip(UP_GW), hi(UP_GW_MAC), lo(UP_GW_MAC), NOW);
}

// ---------------------------------------------------------------- parsing what comes out

const ethV = new EthernetView();
const arpV = new ArpView();
const ipV = new Ipv4View();
const icmpV = new IcmpView();

interface Ip {
  dstMac: string; srcMac: string;
  src: string; dst: string; ttl: number; proto: number; id: number; totalLength: number;
  ipOff: number; l4Off: number; l4Len: number;
  sport: number; dport: number; tcpFlags: number;
  icmpType: number; icmpCode: number; icmpId: number;
}

/** The L4 checksum (TCP/UDP) computed from scratch with the field taken as zero. */
function l4FromScratch(b: Uint8Array, ipOff: number, l4Off: number, l4Len: number, proto: number): number {
  const at = l4Off + (proto === IPPROTO_TCP ? 16 : 6);
  const copy = b.slice();
  writeU16(copy, at, 0);
  const src = readU16(b, ipOff + 12) * 65536 + readU16(b, ipOff + 14);
  const dst = readU16(b, ipOff + 16) * 65536 + readU16(b, ipOff + 18);
  const c = ~fold(onesSum(copy, l4Off, l4Len, pseudoHeaderSum(src, dst, proto, l4Len))) & 0xffff;
  return proto === IPPROTO_UDP && c === 0 ? 0xffff : c;
}

/** ICMP checksum from scratch. */
function icmpFromScratch(b: Uint8Array, off: number, len: number): number {
  return ~fold(onesSum(b, off, len) - readU16(b, off + 2)) & 0xffff;
}

/**
 * Parse an IPv4 frame and check every checksum from scratch (IP header; TCP/UDP unless
 * `partial`; ICMP).
 */
function parseIpFrame(b: Uint8Array, partial = false): Ip {
  expect(ethV.reset(b, 0, b.length)).toBe(true);
  expect(ethV.etherType).toBe(ETHERTYPE_IPV4);
  expect(ipV.reset(b, 14, b.length - 14) && ipV.check()).toBe(true);
  expect(ipV.computeChecksum(), 'IP header checksum').toBe(ipV.checksum);
  const ipOff = 14;
  const l4Off = ipV.payloadOffset;
  const l4Len = ipV.payloadLength;
  const proto = ipV.protocol;
  const r: Ip = {
    dstMac: macToString(b, 0), srcMac: macToString(b, 6),
    src: ipToString(ipV.src), dst: ipToString(ipV.dst), ttl: ipV.ttl, proto, id: ipV.id, totalLength: ipV.totalLength,
    ipOff, l4Off, l4Len, sport: 0, dport: 0, tcpFlags: 0, icmpType: -1, icmpCode: -1, icmpId: -1,
  };
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
    r.sport = readU16(b, l4Off);
    r.dport = readU16(b, l4Off + 2);
    if (proto === IPPROTO_TCP) r.tcpFlags = b[l4Off + 13];
    const at = l4Off + (proto === IPPROTO_TCP ? 16 : 6);
    if (!partial) expect(readU16(b, at), 'L4 checksum').toBe(l4FromScratch(b, ipOff, l4Off, l4Len, proto));
  } else if (proto === IPPROTO_ICMP) {
    expect(icmpV.reset(b, l4Off, l4Len)).toBe(true);
    r.icmpType = icmpV.type;
    r.icmpCode = icmpV.code;
    r.icmpId = icmpV.id;
    expect(icmpV.checksum, 'ICMP checksum').toBe(icmpFromScratch(b, l4Off, l4Len));
  }
  return r;
}

interface Arp { dstMac: string; srcMac: string; op: number; sha: string; spa: string; tha: string; tpa: string }

function parseArpFrame(b: Uint8Array): Arp {
  expect(ethV.reset(b, 0, b.length)).toBe(true);
  expect(ethV.etherType).toBe(ETHERTYPE_ARP);
  expect(arpV.reset(b, 14, b.length - 14) && arpV.isEthernetIpv4).toBe(true);
  return {
    dstMac: macToString(b, 0), srcMac: macToString(b, 6), op: arpV.op,
    sha: macToString(b, arpV.shaOffset), spa: ipToString(arpV.spa), tha: macToString(b, arpV.thaOffset), tpa: ipToString(arpV.tpa),
  };
}

function neighMac(s: Setup, net: number, addr: string): string | undefined {
  if (!s.neigh.lookup(net, ip(addr), NOW)) return undefined;
  const b = new Uint8Array(6);
  b[0] = s.neigh.hi >>> 8; b[1] = s.neigh.hi & 0xff;
  b[2] = s.neigh.lo >>> 24; b[3] = (s.neigh.lo >>> 16) & 0xff; b[4] = (s.neigh.lo >>> 8) & 0xff; b[5] = s.neigh.lo & 0xff;
  return macToString(b, 0);
}

/** A frame from the outside, as the uplink gateway delivers it to our uplink MAC. */
function fromOutside<T extends object>(o: T): T & { srcMac: string; dstMac: string } {
  return { srcMac: UP_GW_MAC, dstMac: UP_MAC, ...o };
}

/** A container's frame to its gateway's MAC. */
function toGw<T extends object>(o: T, srcMac = C1_MAC, gwMac = GW_MAC): T & { srcMac: string; dstMac: string } {
  return { srcMac, dstMac: gwMac, ...o };
}

// ---------------------------------------------------------------- tests

describe('gateway stage: ARP', () => {
  it('answers an ARP request for the gateway out of the ingress port and learns the asker', () => {
    const s = setup();
    const r = run(s, arpRequest({ srcMac: C1_MAC, srcIp: C1, targetIp: GW }), PORT_C1);
    expect(r.p.out).toBe(PORT_C1);
    expect(r.p.l3).toBe(L3_ARP_REPLY);
    expect(r.p.ethLen).toBe(60);
    expect(parseArpFrame(r.out)).toEqual({
      dstMac: C1_MAC, srcMac: GW_MAC, op: ARP_OP_REPLY, sha: GW_MAC, spa: GW, tha: C1_MAC, tpa: C1,
    });
    expect(Array.from(r.out.subarray(42, 60))).toEqual(new Array(18).fill(0)); // padding zeroed
    expect(neighMac(s, 0, C1)).toBe(C1_MAC);
    expect(s.emit.sent).toEqual([]);
  });

  it('answers from a vnet port with the virtio-net header cleared and the length fixed', () => {
    const s = setup();
    const vnet = new Uint8Array(VNET_HDR_LEN).fill(0);
    vnet[0] = 2; // DATA_VALID: must not survive on the reply
    const r = run(s, arpRequest({ srcMac: C1_MAC, srcIp: C1, targetIp: GW }), PORT_C1, vnet);
    expect(r.p.out).toBe(PORT_C1);
    expect(r.p.len).toBe(VNET_HDR_LEN + 60);
    expect(Array.from(r.buf.subarray(r.p.off, r.p.off + VNET_HDR_LEN))).toEqual(new Array(10).fill(0));
  });

  it('learns from a gratuitous ARP (the new MAC replaces the old) and lets it flood', () => {
    const s = setup();
    known(s, 0, PORT_C1, C1_MAC, C1);
    const NEW_MAC = '02:42:0a:59:00:99';
    const r = run(s, arpRequest({ srcMac: NEW_MAC, srcIp: C1, targetIp: C1 }), PORT_C1);
    expect(r.p.l3).toBe(L3_ARP_LEARNED);
    expect(r.p.out).toBe(OUT_FLOOD);
    expect(neighMac(s, 0, C1)).toBe(NEW_MAC);
    // Nobody may claim the gateway's address.
    run(s, arpRequest({ srcMac: C2_MAC, srcIp: GW, targetIp: GW }), PORT_C2);
    expect(neighMac(s, 0, GW)).toBeUndefined();
    // Nor teach an address outside the subnet.
    run(s, arpRequest({ srcMac: C2_MAC, srcIp: '192.0.2.9', targetIp: C1 }), PORT_C2);
    expect(neighMac(s, 0, '192.0.2.9')).toBeUndefined();
  });

  it('consumes an ARP reply addressed to the gateway (OUT_LOCAL) and learns from it', () => {
    const s = setup();
    const r = run(s, arpReply({ srcMac: C2_MAC, srcIp: C2, dstMac: GW_MAC, dstIp: GW }), PORT_C2);
    expect(r.p.out).toBe(OUT_LOCAL);
    expect(r.p.l3).toBe(L3_ARP_CONSUMED);
    expect(neighMac(s, 0, C2)).toBe(C2_MAC);
  });

  it('lets other ARP go on to L2 forwarding', () => {
    const s = setup();
    known(s, 0, PORT_C2, C2_MAC, C2);
    const r = run(s, arpReply({ srcMac: C1_MAC, srcIp: C1, dstMac: C2_MAC, dstIp: C2 }), PORT_C1);
    expect(r.p.l3).toBe(L3_ARP_LEARNED);
    expect(r.p.out).toBe(PORT_C2);
  });

  it('on the uplink: answers ARP for the uplink address, consumes replies to it, drops the rest', () => {
    const s = setup();
    const r = run(s, arpRequest({ srcMac: UP_GW_MAC, srcIp: UP_GW, targetIp: UP }), PORT_UP);
    expect(r.p.out).toBe(PORT_UP);
    expect(parseArpFrame(r.out)).toEqual({
      dstMac: UP_GW_MAC, srcMac: UP_MAC, op: ARP_OP_REPLY, sha: UP_MAC, spa: UP, tha: UP_GW_MAC, tpa: UP_GW,
    });
    expect(neighMac(s, UPLINK_NET, UP_GW)).toBe(UP_GW_MAC);
    const NB_MAC = '52:54:00:00:00:07';
    const reply = run(s, arpReply({ srcMac: NB_MAC, srcIp: NEIGHBOUR, dstMac: UP_MAC, dstIp: UP }), PORT_UP);
    expect(reply.p.out).toBe(OUT_LOCAL);
    expect(reply.p.l3).toBe(L3_ARP_CONSUMED);
    expect(neighMac(s, UPLINK_NET, NEIGHBOUR)).toBe(NB_MAC);
    const other = run(s, arpRequest({ srcMac: NB_MAC, srcIp: NEIGHBOUR, targetIp: '198.51.100.99' }), PORT_UP);
    expect(dropOf(other.p)).toBe('uplink-not-ours');
  });

  it('drops a truncated ARP on the uplink (bad-arp) and passes it on a network', () => {
    const s = setup();
    const short = arpRequest({ srcMac: UP_GW_MAC, srcIp: UP_GW, targetIp: UP }).slice(0, 30);
    expect(dropOf(run(s, short, PORT_UP).p)).toBe('bad-arp');
    const shortIn = arpRequest({ srcMac: C1_MAC, srcIp: C1, targetIp: GW }).slice(0, 30);
    const r = run(s, shortIn, PORT_C1);
    expect(r.p.l3).toBe(L3_NONE);
    expect(r.p.out).toBe(OUT_FLOOD);
  });
});

describe('gateway stage: ping and DNS', () => {
  const payload = new TextEncoder().encode('vsw-ping-payload');

  it('answers a ping to the gateway in place', () => {
    const s = setup();
    const req = icmpEcho(toGw({ srcIp: C1, dstIp: GW, id: 0x1234, seq: 9, ttl: 5, payload }));
    const r = run(s, req, PORT_C1);
    expect(r.p.out).toBe(PORT_C1);
    expect(r.p.l3).toBe(L3_PING);
    const o = parseIpFrame(r.out);
    expect(o).toMatchObject({ dstMac: C1_MAC, srcMac: GW_MAC, src: GW, dst: C1, ttl: 64, icmpType: ICMP_ECHO_REPLY, icmpId: 0x1234 });
    expect(readU16(r.out, o.l4Off + 6)).toBe(9);
    expect(r.out.subarray(o.l4Off + 8)).toEqual(payload);
    expect(neighMac(s, 0, C1)).toBe(C1_MAC);
  });

  it('answers a ping to the uplink address, from a container and from outside', () => {
    const s = setup();
    const a = run(s, icmpEcho(toGw({ srcIp: C1, dstIp: UP, id: 1, seq: 1 })), PORT_C1);
    expect(a.p.out).toBe(PORT_C1);
    expect(parseIpFrame(a.out)).toMatchObject({ dstMac: C1_MAC, srcMac: GW_MAC, src: UP, dst: C1, icmpType: ICMP_ECHO_REPLY });
    const b = run(s, icmpEcho(fromOutside({ srcIp: SERVER, dstIp: UP, id: 2, seq: 1 })), PORT_UP);
    expect(b.p.out).toBe(PORT_UP);
    expect(b.p.l3).toBe(L3_PING);
    expect(parseIpFrame(b.out)).toMatchObject({ dstMac: UP_GW_MAC, srcMac: UP_MAC, src: UP, dst: SERVER, icmpType: ICMP_ECHO_REPLY });
  });

  it('drops a ping with a wrong ICMP checksum (bad-ip)', () => {
    const s = setup();
    const req = icmpEcho(toGw({ srcIp: C1, dstIp: GW, id: 1, seq: 1 }));
    req[14 + 20 + 2] ^= 0xff;
    expect(dropOf(run(s, req, PORT_C1).p)).toBe('bad-ip');
  });

  it('punts UDP to gateway:53 to the main thread (OUT_LOCAL), unchanged', () => {
    const s = setup();
    const q = udpFrame(toGw({ srcIp: C1, dstIp: GW, srcPort: 33333, dstPort: 53, payload: new Uint8Array([1, 2, 3, 4]) }));
    const r = run(s, q, PORT_C1);
    expect(r.p.out).toBe(OUT_LOCAL);
    expect(r.p.l3).toBe(L3_DNS_PUNT);
    expect(s.emit.punted).toHaveLength(1);
    expect(s.emit.punted[0].port).toBe(PORT_C1);
    expect(s.emit.punted[0].bytes).toEqual(q);
    // The punt ring full: dropped, named.
    s.emit.puntOk = false;
    expect(dropOf(run(s, q, PORT_C1).p)).toBe('punt-full');
  });

  it('answers a local name in place (DNS in the worker): back to the client from gateway:53, in rotation', () => {
    const s = setup();
    const dns = new WorkerDns();
    dns.load({
      nets: [{ id: 0, name: 'bridge', order: 'rotate' }],
      endpoints: [
        { network: 'bridge', container: 'w1', ip: C1, aliases: ['web'] },
        { network: 'bridge', container: 'w2', ip: C2, aliases: ['web'] },
      ],
    });
    s.ctx.l3!.dns = dns;
    const firsts: string[] = [];
    for (let i = 0; i < 2; i++) {
      const q = udpFrame(toGw({ srcIp: C1, dstIp: GW, srcPort: 33333, dstPort: 53, payload: makeQuery('WEB', 1, { id: 77 + i }) }));
      const r = run(s, q, PORT_C1);
      expect(r.p.l3).toBe(L3_DNS_ANSWER);
      expect(r.p.out).toBe(PORT_C1);
      const f = parseIpFrame(r.out); // checks the IP and UDP checksums from scratch
      expect(f).toMatchObject({ dstMac: C1_MAC, srcMac: GW_MAC, src: GW, dst: C1, sport: 53, dport: 33333, ttl: 64 });
      expect(r.out.length).toBe(14 + f.totalLength);
      const m = decode(r.out.slice(f.l4Off + 8));
      expect(m.id).toBe(77 + i);
      expect(m.aa).toBe(true);
      expect(m.answers.map((a) => a.data).sort()).toEqual([C1, C2].sort());
      firsts.push(m.answers[0].data);
    }
    expect(new Set(firsts)).toEqual(new Set([C1, C2]));
    expect(s.emit.punted).toHaveLength(0);
    expect(dns.counters.local).toBe(2);
  });

  it('DNS in the worker: an unknown name is punted (forwarding), garbage with no ID is dropped, FORMERR answered', () => {
    const s = setup();
    const dns = new WorkerDns();
    dns.load({ nets: [{ id: 0, name: 'bridge', order: 'rotate' }], endpoints: [] });
    s.ctx.l3!.dns = dns;
    const unknown = udpFrame(toGw({ srcIp: C1, dstIp: GW, srcPort: 40000, dstPort: 53, payload: makeQuery('example.org') }));
    const r = run(s, unknown, PORT_C1);
    expect(r.p.l3).toBe(L3_DNS_PUNT);
    expect(s.emit.punted).toHaveLength(1);
    const junk = udpFrame(toGw({ srcIp: C1, dstIp: GW, srcPort: 40000, dstPort: 53, payload: new Uint8Array([1, 2, 3]) }));
    const j = run(s, junk, PORT_C1);
    expect(j.p.out).toBe(OUT_LOCAL);
    expect(dns.counters.dropped).toBe(1);
    const bad = makeQuery('x.y');
    bad[5] = 2; // QDCOUNT 2
    const f = run(s, udpFrame(toGw({ srcIp: C1, dstIp: GW, srcPort: 40001, dstPort: 53, payload: bad })), PORT_C1);
    expect(f.p.out).toBe(PORT_C1);
    expect(decode(f.out.slice(14 + 20 + 8)).rcode).toBe(1);
    expect(s.emit.punted).toHaveLength(1);
  });

  it('DNATs TCP to gateway:53 to the host TAP, and translates the answer back', () => {
    const s = setup();
    known(s, 0, PORT_HOST, HOST_MAC, HOST_IP);
    const syn = tcpSyn(toGw({ srcIp: C1, dstIp: GW, srcPort: 45000, dstPort: 53 }));
    const r = run(s, syn, PORT_C1);
    expect(r.p.out).toBe(PORT_HOST);
    expect(r.p.l3).toBe(L3_CT_NEW);
    expect(parseIpFrame(r.out)).toMatchObject({
      dstMac: HOST_MAC, srcMac: GW_MAC, src: C1, dst: HOST_IP, sport: 45000, dport: 53, tcpFlags: TCP_SYN,
    });
    expect(s.ct.size()).toBe(1);
    // The second segment matches the connection.
    const ack = tcpFrame(toGw({ srcIp: C1, dstIp: GW, srcPort: 45000, dstPort: 53, flags: TCP_ACK }));
    const r2 = run(s, ack, PORT_C1);
    expect(r2.p.l3).toBe(L3_CT);
    expect(r2.p.out).toBe(PORT_HOST);
    // The daemon's answer from the host TAP to the container's MAC: the source becomes the gateway.
    const ans = tcpFrame({ srcMac: HOST_MAC, dstMac: C1_MAC, srcIp: HOST_IP, dstIp: C1, srcPort: 53, dstPort: 45000, flags: TCP_SYN | TCP_ACK });
    const back = run(s, ans, PORT_HOST);
    expect(back.p.l3).toBe(L3_HOST_CT);
    expect(back.p.out).toBe(PORT_C1); // L2 forwarding to the container's MAC
    expect(parseIpFrame(back.out)).toMatchObject({
      dstMac: C1_MAC, srcMac: GW_MAC, src: GW, dst: C1, sport: 53, dport: 45000,
    });
    // Other traffic from the host to a container is plain L2.
    const plain = tcpFrame({ srcMac: HOST_MAC, dstMac: C1_MAC, srcIp: HOST_IP, dstIp: C1, srcPort: 22, dstPort: 45000, flags: TCP_ACK });
    const pr = run(s, plain, PORT_HOST);
    expect(pr.p.l3).toBe(L3_NONE);
    expect(pr.out).toEqual(plain);
  });
});

describe('gateway stage: masquerade', () => {
  it('masquerades a TCP flow to the outside and translates the reply back', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    const syn = tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80, ttl: 64 }));
    const r = run(s, syn, PORT_C1);
    expect(r.p.out).toBe(PORT_UP);
    expect(r.p.l3).toBe(L3_CT_NEW);
    expect(r.p.netId).toBe(UPLINK_NET);
    const o = parseIpFrame(r.out);
    expect(o).toMatchObject({
      dstMac: UP_GW_MAC, srcMac: UP_MAC, src: UP, dst: SERVER, sport: 40000, dport: 80, ttl: 63, tcpFlags: TCP_SYN,
    });
    expect(s.ct.size()).toBe(1);
    expect(s.ct.list(NOW)[0]).toMatchObject({ state: 'SYN_SENT', packets: [1, 0] });
    // The SYN-ACK from the server comes back to the container.
    const synack = tcpFrame(fromOutside({ srcIp: SERVER, dstIp: UP, srcPort: 80, dstPort: 40000, flags: TCP_SYN | TCP_ACK, ttl: 50 }));
    const b = run(s, synack, PORT_UP);
    expect(b.p.out).toBe(PORT_C1);
    expect(b.p.l3).toBe(L3_CT);
    expect(parseIpFrame(b.out)).toMatchObject({
      dstMac: C1_MAC, srcMac: GW_MAC, src: SERVER, dst: C1, sport: 80, dport: 40000, ttl: 49,
    });
    expect(s.ct.list(NOW)[0]).toMatchObject({ state: 'SYN_RECV', packets: [1, 1] });
  });

  it('allocates another source port when the first one is taken, and routes each reply to its owner', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    run(s, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80 })), PORT_C1);
    const r = run(s, tcpSyn(toGw({ srcIp: C2, dstIp: SERVER, srcPort: 40000, dstPort: 80 }, C2_MAC)), PORT_C2);
    expect(r.p.out).toBe(PORT_UP);
    const o = parseIpFrame(r.out);
    expect(o.src).toBe(UP);
    expect(o.sport).not.toBe(40000);
    expect(o.sport).toBeGreaterThanOrEqual(1024);
    const port2 = o.sport;
    const toC2 = run(s, tcpFrame(fromOutside({ srcIp: SERVER, dstIp: UP, srcPort: 80, dstPort: port2, flags: TCP_SYN | TCP_ACK })), PORT_UP);
    expect(toC2.p.out).toBe(PORT_C2);
    expect(parseIpFrame(toC2.out)).toMatchObject({ dst: C2, dport: 40000, dstMac: C2_MAC });
    const toC1 = run(s, tcpFrame(fromOutside({ srcIp: SERVER, dstIp: UP, srcPort: 80, dstPort: 40000, flags: TCP_SYN | TCP_ACK })), PORT_UP);
    expect(toC1.p.out).toBe(PORT_C1);
    expect(parseIpFrame(toC1.out)).toMatchObject({ dst: C1, dport: 40000, dstMac: C1_MAC });
  });

  it('masquerades UDP, and goes straight to an on-link neighbour of the uplink', () => {
    const s = setup();
    const NB_MAC = '52:54:00:00:00:07';
    s.neigh.learn(UPLINK_NET, ip(NEIGHBOUR), hi(NB_MAC), lo(NB_MAC), NOW);
    const payload = new Uint8Array([9, 8, 7, 6, 5]);
    const r = run(s, udpFrame(toGw({ srcIp: C1, dstIp: NEIGHBOUR, srcPort: 5000, dstPort: 6000, payload })), PORT_C1);
    expect(r.p.out).toBe(PORT_UP);
    expect(parseIpFrame(r.out)).toMatchObject({ dstMac: NB_MAC, srcMac: UP_MAC, src: UP, dst: NEIGHBOUR, sport: 5000, dport: 6000, ttl: 63 });
    const back = run(s, udpFrame({ srcMac: NB_MAC, dstMac: UP_MAC, srcIp: NEIGHBOUR, dstIp: UP, srcPort: 6000, dstPort: 5000, payload }), PORT_UP);
    expect(back.p.out).toBe(PORT_C1);
    const o = parseIpFrame(back.out);
    expect(o).toMatchObject({ dstMac: C1_MAC, srcMac: GW_MAC, src: NEIGHBOUR, dst: C1, sport: 6000, dport: 5000 });
    expect(back.out.subarray(o.l4Off + 8, o.l4Off + 13)).toEqual(payload);
    expect(s.ct.list(NOW)[0].state).toBe('REPLIED');
  });

  it('keeps a UDP checksum of 0 (none) at 0', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    const f = udpFrame(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 5001, dstPort: 6001 }));
    writeU16(f, 14 + 20 + 6, 0);
    const r = run(s, f, PORT_C1);
    expect(r.p.out).toBe(PORT_UP);
    expect(readU16(r.out, 14 + 20 + 6)).toBe(0);
  });

  it('masquerades ICMP echo (identifier as the port) and translates the echo reply back', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    const a = run(s, icmpEcho(toGw({ srcIp: C1, dstIp: SERVER, id: 77, seq: 1 })), PORT_C1);
    expect(a.p.out).toBe(PORT_UP);
    expect(parseIpFrame(a.out)).toMatchObject({ src: UP, dst: SERVER, icmpType: 8, icmpId: 77, ttl: 63, srcMac: UP_MAC, dstMac: UP_GW_MAC });
    // C2 pings the same server with the same identifier: another one is allocated.
    const b = run(s, icmpEcho(toGw({ srcIp: C2, dstIp: SERVER, id: 77, seq: 1 }, C2_MAC)), PORT_C2);
    const ob = parseIpFrame(b.out);
    expect(ob.icmpId).not.toBe(77);
    const reply1 = run(s, icmpEcho(fromOutside({ srcIp: SERVER, dstIp: UP, id: 77, seq: 1, reply: true })), PORT_UP);
    expect(reply1.p.out).toBe(PORT_C1);
    expect(parseIpFrame(reply1.out)).toMatchObject({ src: SERVER, dst: C1, icmpType: ICMP_ECHO_REPLY, icmpId: 77, dstMac: C1_MAC });
    const reply2 = run(s, icmpEcho(fromOutside({ srcIp: SERVER, dstIp: UP, id: ob.icmpId, seq: 1, reply: true })), PORT_UP);
    expect(reply2.p.out).toBe(PORT_C2);
    expect(parseIpFrame(reply2.out)).toMatchObject({ dst: C2, icmpId: 77, dstMac: C2_MAC });
  });

  it('neighbour miss: sends one ARP request (rate-limited) and drops the frame as neigh-miss', () => {
    const s = setup();
    const syn = tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80 }));
    const r = run(s, syn, PORT_C1);
    expect(dropOf(r.p)).toBe('neigh-miss');
    expect(s.emit.sent).toHaveLength(1);
    const req = s.emit.sent[0];
    expect(req.port).toBe(PORT_UP);
    expect(req.net).toBe(UPLINK_NET);
    expect(req.bytes.length).toBe(60);
    expect(parseArpFrame(req.bytes)).toEqual({
      dstMac: 'ff:ff:ff:ff:ff:ff', srcMac: UP_MAC, op: ARP_OP_REQUEST, sha: UP_MAC, spa: UP, tha: '00:00:00:00:00:00', tpa: UP_GW,
    });
    expect(s.neigh.list(NOW).find((e) => e.net === UPLINK_NET)?.state).toBe(NEIGH_INCOMPLETE);
    // The retransmission within the second: no second request.
    expect(dropOf(run(s, syn, PORT_C1).p)).toBe('neigh-miss');
    expect(s.emit.sent).toHaveLength(1);
    // The gateway answers; the next retransmission goes out.
    run(s, arpReply({ srcMac: UP_GW_MAC, srcIp: UP_GW, dstMac: UP_MAC, dstIp: UP }), PORT_UP);
    expect(run(s, syn, PORT_C1).p.out).toBe(PORT_UP);
  });

  it('neighbour miss inside a network: the ARP request is flooded in that network, from its gateway', () => {
    const s = setup();
    const r = run(s, tcpSyn(fromOutside({ srcIp: CLIENT, dstIp: UP, srcPort: 50000, dstPort: 8080 })), PORT_UP);
    expect(dropOf(r.p)).toBe('neigh-miss');
    expect(s.emit.sent).toHaveLength(1);
    expect(s.emit.sent[0].port).toBe(OUT_FLOOD);
    expect(s.emit.sent[0].net).toBe(0);
    expect(parseArpFrame(s.emit.sent[0].bytes)).toMatchObject({ srcMac: GW_MAC, op: ARP_OP_REQUEST, spa: GW, tpa: C1 });
  });

  it('TTL 1: ICMP time exceeded back to the sender, frame dropped, no connection left behind', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    const probe = udpFrame(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 33434, dstPort: 33435, ttl: 1, payload: new Uint8Array(12) }));
    const r = run(s, probe, PORT_C1);
    expect(dropOf(r.p)).toBe('ttl-exceeded');
    expect(s.emit.sent).toHaveLength(1);
    const e = s.emit.sent[0];
    expect(e.port).toBe(PORT_C1);
    expect(e.net).toBe(0);
    const o = parseIpFrame(e.bytes);
    expect(o).toMatchObject({ dstMac: C1_MAC, srcMac: GW_MAC, src: GW, dst: C1, icmpType: ICMP_TIME_EXCEEDED, icmpCode: 0 });
    // It quotes the probe as it was received (untranslated).
    expect(e.bytes.subarray(o.l4Off + 8, o.l4Off + 8 + probe.length - 14)).toEqual(probe.subarray(14));
    // A traceroute must not fill the connection table (Linux drops the unconfirmed entry).
    expect(s.ct.size()).toBe(0);
  });

  it('TTL 1 from the uplink (a published port): time exceeded from the uplink address, out of the uplink', () => {
    const s = setup();
    known(s, 0, PORT_C1, C1_MAC, C1);
    const probe = tcpSyn(fromOutside({ srcIp: CLIENT, dstIp: UP, srcPort: 50000, dstPort: 8080, ttl: 1 }));
    const r = run(s, probe, PORT_UP);
    expect(dropOf(r.p)).toBe('ttl-exceeded');
    expect(s.emit.sent).toHaveLength(1);
    expect(s.emit.sent[0].port).toBe(PORT_UP);
    expect(parseIpFrame(s.emit.sent[0].bytes)).toMatchObject({
      dstMac: UP_GW_MAC, srcMac: UP_MAC, src: UP, dst: CLIENT, icmpType: ICMP_TIME_EXCEEDED,
    });
    expect(s.ct.size()).toBe(0);
  });

  it('translates an ICMP port unreachable about a masqueraded UDP flow back to the container (outer and inner)', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    const payload = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
    const q = udpFrame(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 41000, dstPort: 53, payload }));
    const out = run(s, q, PORT_C1).out;
    // The server answers with port unreachable quoting what it received (our translated packet).
    const quoted = out.subarray(14);
    const err = buildEthernet({
      dst: UP_MAC, src: UP_GW_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: SERVER, dst: UP, protocol: IPPROTO_ICMP, ttl: 60, payload: buildIcmp({ type: ICMP_DEST_UNREACH, code: 3, payload: quoted }) }),
    });
    const r = run(s, err, PORT_UP);
    expect(r.p.l3).toBe(L3_ICMP_ERROR);
    expect(r.p.out).toBe(PORT_C1);
    const o = parseIpFrame(r.out);
    expect(o).toMatchObject({ dstMac: C1_MAC, srcMac: GW_MAC, src: SERVER, dst: C1, ttl: 59, icmpType: ICMP_DEST_UNREACH, icmpCode: 3 });
    // The quoted packet is the container's again: addresses, ports, and a valid IP checksum;
    // its UDP header and payload are the container's bytes (checksum included).
    const inner = o.l4Off + 8;
    expect(ipV.reset(r.out, inner, r.out.length - inner) && ipV.check()).toBe(true);
    expect(ipToString(ipV.src)).toBe(C1);
    expect(ipToString(ipV.dst)).toBe(SERVER);
    expect(ipV.computeChecksum()).toBe(ipV.checksum);
    expect(r.out.subarray(inner + 20, inner + 20 + 8 + payload.length)).toEqual(q.subarray(34, 34 + 8 + payload.length));
    expect(l4FromScratch(r.out, inner, inner + 20, 8 + payload.length, IPPROTO_UDP)).toBe(readU16(r.out, inner + 26));
    // An error about no connection: no-service.
    const stray = buildEthernet({
      dst: UP_MAC, src: UP_GW_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: SERVER, dst: UP, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: 3, code: 3, payload: udpFrame({ srcMac: UP_MAC, dstMac: UP_GW_MAC, srcIp: UP, dstIp: SERVER, srcPort: 1, dstPort: 2 }).subarray(14) }) }),
    });
    expect(dropOf(run(s, stray, PORT_UP).p)).toBe('no-service');
  });
  it('an ICMP error whose quoted header is malformed or cut short is bad-ip; one quoting what no connection can match is no-service', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    // A live connection the errors below could be about.
    const q = udpFrame(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 41000, dstPort: 53, payload: new Uint8Array(8) }));
    const sent = run(s, q, PORT_C1).out.subarray(14);
    const errorQuoting = (quote: Uint8Array, from = SERVER): Uint8Array => buildEthernet({
      dst: UP_MAC, src: UP_GW_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: from, dst: UP, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: ICMP_DEST_UNREACH, code: 3, payload: quote }) }),
    });
    const badVersion = sent.slice(0, 28); badVersion[0] = 0x65;
    const badIhl = sent.slice(0, 28); badIhl[0] = 0x44;
    const longIhl = sent.slice(0, 28); longIhl[0] = 0x46; // options claimed, not quoted
    const malformed = {
      'quoted IP header cut short': sent.slice(0, 19),
      'quoted L4 header cut short': sent.slice(0, 27),
      'quoted version 6': badVersion,
      'quoted ihl 4': badIhl,
      'quoted ihl past the quote': longIhl,
    };
    for (const [name, quote] of Object.entries(malformed)) {
      expect(dropOf(run(s, errorQuoting(quote), PORT_UP).p), name).toBe('bad-ip');
    }
    // Well formed, but nothing a connection is keyed by: GRE, a non-first fragment.
    const gre = buildIpv4({ src: UP, dst: SERVER, protocol: 47, payload: new Uint8Array(8) });
    expect(dropOf(run(s, errorQuoting(gre), PORT_UP).p)).toBe('no-service');
    const frag = buildIpv4({ src: UP, dst: SERVER, protocol: IPPROTO_UDP, fragOffset: 10, payload: new Uint8Array(8) });
    expect(dropOf(run(s, errorQuoting(frag), PORT_UP).p)).toBe('no-service');
    // From a network, the same rule.
    const fromC1 = buildEthernet({
      dst: GW_MAC, src: C1_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: C1, dst: SERVER, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: ICMP_DEST_UNREACH, code: 3, payload: sent.slice(0, 19) }) }),
    });
    expect(dropOf(run(s, fromC1, PORT_C1).p)).toBe('bad-ip');
    expect(s.emit.sent).toHaveLength(0);
  });
});

describe('gateway stage: published ports', () => {
  it('DNATs a connection from the uplink to the container, keeping the client address', () => {
    const s = setup();
    known(s, 0, PORT_C1, C1_MAC, C1);
    uplinkGatewayKnown(s);
    const syn = tcpSyn(fromOutside({ srcIp: CLIENT, dstIp: UP, srcPort: 50000, dstPort: 8080 }));
    const r = run(s, syn, PORT_UP);
    expect(r.p.l3).toBe(L3_CT_NEW);
    expect(r.p.out).toBe(PORT_C1);
    expect(r.p.netId).toBe(0);
    expect(parseIpFrame(r.out)).toMatchObject({
      dstMac: C1_MAC, srcMac: GW_MAC, src: CLIENT, dst: C1, sport: 50000, dport: 80, ttl: 63,
    });
    expect(s.ct.list(NOW)[0]).toMatchObject({ kind: 1, mapping: MAPPING.id, net: 0 });
    // The container's answer goes out from the published address and port.
    const synack = tcpFrame(toGw({ srcIp: C1, dstIp: CLIENT, srcPort: 80, dstPort: 50000, flags: TCP_SYN | TCP_ACK }));
    const b = run(s, synack, PORT_C1);
    expect(b.p.l3).toBe(L3_CT);
    expect(b.p.out).toBe(PORT_UP);
    expect(parseIpFrame(b.out)).toMatchObject({
      dstMac: UP_GW_MAC, srcMac: UP_MAC, src: UP, dst: CLIENT, sport: 8080, dport: 50000,
    });
  });

  it('drops what no published port serves (no-service), and UDP to a TCP mapping', () => {
    const s = setup();
    expect(dropOf(run(s, tcpSyn(fromOutside({ srcIp: CLIENT, dstIp: UP, srcPort: 50000, dstPort: 8081 })), PORT_UP).p)).toBe('no-service');
    expect(dropOf(run(s, udpFrame(fromOutside({ srcIp: CLIENT, dstIp: UP, srcPort: 50000, dstPort: 8080 })), PORT_UP).p)).toBe('no-service');
    expect(dropOf(run(s, tcpSyn(toGw({ srcIp: C1, dstIp: GW, srcPort: 50000, dstPort: 22 })), PORT_C1).p)).toBe('no-service');
    expect(s.ct.size()).toBe(0);
  });

  it('hairpin: a container to the uplink address:8080 is DNATed to the container and SNATed to the gateway', () => {
    const s = setup();
    known(s, 0, PORT_C1, C1_MAC, C1);
    const syn = tcpSyn(toGw({ srcIp: C2, dstIp: UP, srcPort: 41000, dstPort: 8080 }, C2_MAC));
    const r = run(s, syn, PORT_C2);
    expect(r.p.l3).toBe(L3_CT_NEW);
    expect(r.p.out).toBe(PORT_C1);
    expect(parseIpFrame(r.out)).toMatchObject({
      dstMac: C1_MAC, srcMac: GW_MAC, src: GW, dst: C1, sport: 41000, dport: 80, ttl: 63,
    });
    const synack = tcpFrame(toGw({ srcIp: C1, dstIp: GW, srcPort: 80, dstPort: 41000, flags: TCP_SYN | TCP_ACK }));
    const b = run(s, synack, PORT_C1);
    expect(b.p.l3).toBe(L3_CT);
    expect(b.p.out).toBe(PORT_C2);
    expect(parseIpFrame(b.out)).toMatchObject({
      dstMac: C2_MAC, srcMac: GW_MAC, src: UP, dst: C2, sport: 8080, dport: 41000,
    });
  });

  it('from the host TAP to gateway:8080 (the host reaching a published port)', () => {
    const s = setup();
    known(s, 0, PORT_C1, C1_MAC, C1);
    const r = run(s, tcpSyn(toGw({ srcIp: HOST_IP, dstIp: GW, srcPort: 42000, dstPort: 8080 }, HOST_MAC)), PORT_HOST);
    expect(r.p.out).toBe(PORT_C1);
    expect(parseIpFrame(r.out)).toMatchObject({ src: GW, dst: C1, dport: 80 });
  });

  it('an ICMP error from the container about a published-port connection leaves with the uplink address', () => {
    const s = setup();
    known(s, 0, PORT_C1, C1_MAC, C1);
    uplinkGatewayKnown(s);
    const syn = run(s, tcpSyn(fromOutside({ srcIp: CLIENT, dstIp: UP, srcPort: 50000, dstPort: 8080 })), PORT_UP);
    expect(syn.p.out).toBe(PORT_C1);
    // The container refuses with an ICMP error (say, admin prohibited) quoting what it got.
    const err = buildEthernet({
      dst: GW_MAC, src: C1_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: C1, dst: CLIENT, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: 3, code: 13, payload: syn.out.subarray(14, 14 + 28) }) }),
    });
    const r = run(s, err, PORT_C1);
    expect(r.p.l3).toBe(L3_ICMP_ERROR);
    expect(r.p.out).toBe(PORT_UP);
    const o = parseIpFrame(r.out);
    // The container's private address must not leak out: the outer source is translated too.
    expect(o).toMatchObject({ src: UP, dst: CLIENT, dstMac: UP_GW_MAC, srcMac: UP_MAC, icmpType: 3, icmpCode: 13 });
    const inner = o.l4Off + 8;
    expect(ipV.reset(r.out, inner, 28) && ipToString(ipV.src)).toBe(CLIENT);
    expect(ipToString(ipV.dst)).toBe(UP);
    expect(readU16(r.out, inner + 20)).toBe(50000);
    expect(readU16(r.out, inner + 22)).toBe(8080);
  });
});

describe('gateway stage: isolation and refusals', () => {
  it('--internal: nothing goes to the outside (internal-network); the gateway still answers', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    const r = run(s, tcpSyn(toGw({ srcIp: I1, dstIp: SERVER, srcPort: 40000, dstPort: 80 }, I1_MAC, GW2_MAC)), PORT_I1);
    expect(dropOf(r.p)).toBe('internal-network');
    expect(run(s, icmpEcho(toGw({ srcIp: I1, dstIp: GW2, id: 1, seq: 1 }, I1_MAC, GW2_MAC)), PORT_I1).p.out).toBe(PORT_I1);
    expect(s.ct.size()).toBe(0);
  });

  it('another vsw network is not reachable through the gateway (inter-network)', () => {
    const s = setup();
    known(s, 1, PORT_D1, D1_MAC, D1);
    const r = run(s, tcpSyn(toGw({ srcIp: C1, dstIp: D1, srcPort: 40000, dstPort: 80 })), PORT_C1);
    expect(dropOf(r.p)).toBe('inter-network');
    expect(s.ct.size()).toBe(0);
  });

  it('routes a packet sent to the gateway for an address of its own network back in', () => {
    const s = setup();
    known(s, 0, PORT_C2, C2_MAC, C2);
    const r = run(s, udpFrame(toGw({ srcIp: C1, dstIp: C2, srcPort: 1, dstPort: 2 })), PORT_C1);
    expect(r.p.l3).toBe(L3_ROUTED);
    expect(r.p.out).toBe(PORT_C2);
    expect(parseIpFrame(r.out)).toMatchObject({ srcMac: GW_MAC, dstMac: C2_MAC, src: C1, dst: C2, ttl: 63 });
  });

  it('no uplink: no-route; not IPv4 to the gateway MAC, or a protocol NAT cannot carry: not-routed', () => {
    const s = setup({ snap: { ...snapshot(), uplink: null } });
    expect(dropOf(run(s, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 1, dstPort: 2 })), PORT_C1).p)).toBe('no-route');
    const t = setup();
    const v6 = buildEthernet({ dst: GW_MAC, src: C1_MAC, etherType: 0x86dd, payload: new Uint8Array(40) });
    expect(dropOf(run(t, v6, PORT_C1).p)).toBe('not-routed');
    const gre = buildEthernet({ dst: GW_MAC, src: C1_MAC, etherType: ETHERTYPE_IPV4, payload: buildIpv4({ src: C1, dst: SERVER, protocol: 47, payload: new Uint8Array(8) }) });
    expect(dropOf(run(t, gre, PORT_C1).p)).toBe('not-routed');
  });

  it('icc=false: container to container IPv4 is dropped; to and from the host port, and ARP, pass', () => {
    const s = setup();
    known(s, 3, PORT_E2, E2_MAC, E2);
    known(s, 3, PORT_HOST3, HOST3_MAC, HOST3);
    const ping = (srcMac: string, dstMac: string, src: string, dst: string) => icmpEcho({ srcMac, dstMac, srcIp: src, dstIp: dst, id: 1, seq: 1 });
    expect(dropOf(run(s, ping(E1_MAC, E2_MAC, E1, E2), PORT_E1).p)).toBe('icc-disabled');
    // Unknown destination MAC: still container to container.
    expect(dropOf(run(s, ping(E1_MAC, '02:42:0a:5c:00:77', E1, '10.92.0.77'), PORT_E1).p)).toBe('icc-disabled');
    expect(run(s, ping(E1_MAC, HOST3_MAC, E1, HOST3), PORT_E1).p.out).toBe(PORT_HOST3);
    expect(run(s, ping(HOST3_MAC, E2_MAC, HOST3, E2), PORT_HOST3).p.out).toBe(PORT_E2);
    expect(run(s, arpRequest({ srcMac: E1_MAC, srcIp: E1, targetIp: E2 }), PORT_E1).p.out).toBe(OUT_FLOOD);
    // The gateway itself is reachable.
    expect(run(s, ping(E1_MAC, GW3_MAC, E1, GW3), PORT_E1).p.out).toBe(PORT_E1);
  });

  it('icc=false on a network without a host port: an unknown destination is still dropped', () => {
    const s = setup();
    const f = icmpEcho({ srcMac: F1_MAC, dstMac: F2_MAC, srcIp: '10.93.0.2', dstIp: '10.93.0.3', id: 1, seq: 1 });
    expect(dropOf(run(s, f, PORT_F1).p)).toBe('icc-disabled');
    s.fdb.learn(4, 0, hi(F2_MAC), lo(F2_MAC), PORT_F2, NOW);
    expect(dropOf(run(s, f, PORT_F1).p)).toBe('icc-disabled');
  });

  it('frames from the uplink that are not for the switch: uplink-not-ours', () => {
    const s = setup();
    const otherMac = '52:54:00:00:00:99';
    const cases = [
      tcpSyn({ srcMac: UP_GW_MAC, dstMac: otherMac, srcIp: CLIENT, dstIp: UP, srcPort: 1, dstPort: 8080 }),
      tcpSyn(fromOutside({ srcIp: CLIENT, dstIp: '198.51.100.3', srcPort: 1, dstPort: 8080 })),
      udpFrame({ srcMac: UP_GW_MAC, dstMac: 'ff:ff:ff:ff:ff:ff', srcIp: UP_GW, dstIp: '198.51.100.255', srcPort: 67, dstPort: 68 }),
      arpRequest({ srcMac: UP_GW_MAC, srcIp: UP_GW, targetIp: '198.51.100.3' }),
    ];
    for (const f of cases) expect(dropOf(run(s, f, PORT_UP).p)).toBe('uplink-not-ours');
    const v6 = buildEthernet({ dst: UP_MAC, src: UP_GW_MAC, etherType: 0x86dd, payload: new Uint8Array(40) });
    expect(dropOf(run(s, v6, PORT_UP).p)).toBe('not-routed');
    // Nothing from the uplink reaches L2 forwarding (and nothing is learned in the FDB).
    expect(s.fdb.counters().entries).toBe(0);
  });

  it('malformed IPv4 to the gateway: bad-ip', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    const good = tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80 }));
    const badVersion = good.slice(); badVersion[14] = 0x65;
    const badIhl = good.slice(); badIhl[14] = 0x44;
    const tooLong = good.slice(); writeU16(tooLong, 16, 200);
    const shortTcp = buildEthernet({ dst: GW_MAC, src: C1_MAC, etherType: ETHERTYPE_IPV4, payload: buildIpv4({ src: C1, dst: SERVER, protocol: IPPROTO_TCP, payload: new Uint8Array(12) }) });
    const shortUdp = buildEthernet({ dst: GW_MAC, src: C1_MAC, etherType: ETHERTYPE_IPV4, payload: buildIpv4({ src: C1, dst: SERVER, protocol: IPPROTO_UDP, payload: new Uint8Array(4) }) });
    const shortIcmp = buildEthernet({ dst: GW_MAC, src: C1_MAC, etherType: ETHERTYPE_IPV4, payload: buildIpv4({ src: C1, dst: SERVER, protocol: IPPROTO_ICMP, payload: new Uint8Array(4) }) });
    const runt = good.slice(0, 14 + 12);
    for (const [name, f] of Object.entries({ badVersion, badIhl, tooLong, shortTcp, shortUdp, shortIcmp, runt })) {
      expect(dropOf(run(s, f, PORT_C1).p), name).toBe('bad-ip');
    }
    expect(s.ct.size()).toBe(0);
  });

  it('fragments are not routed (ip-fragment), from a network or the uplink', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    const frag = (o: { src: string; dst: string; flags: number; fragOffset: number }, dstMac: string, srcMac: string) => buildEthernet({
      dst: dstMac, src: srcMac, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: o.src, dst: o.dst, protocol: IPPROTO_UDP, flags: o.flags, fragOffset: o.fragOffset, payload: new Uint8Array(64) }),
    });
    expect(dropOf(run(s, frag({ src: C1, dst: SERVER, flags: IPV4_FLAG_MF, fragOffset: 0 }, GW_MAC, C1_MAC), PORT_C1).p)).toBe('ip-fragment');
    expect(dropOf(run(s, frag({ src: C1, dst: SERVER, flags: 0, fragOffset: 8 }, GW_MAC, C1_MAC), PORT_C1).p)).toBe('ip-fragment');
    expect(dropOf(run(s, frag({ src: SERVER, dst: UP, flags: IPV4_FLAG_MF, fragOffset: 0 }, UP_MAC, UP_GW_MAC), PORT_UP).p)).toBe('ip-fragment');
    expect(s.ct.size()).toBe(0);
  });

  it('fragments between the host and a container are bridged, not routed', () => {
    const s = setup();
    known(s, 0, PORT_C1, C1_MAC, C1);
    const f = buildEthernet({
      dst: C1_MAC, src: HOST_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: HOST_IP, dst: C1, protocol: IPPROTO_TCP, flags: IPV4_FLAG_MF, payload: new Uint8Array(64) }),
    });
    const r = run(s, f, PORT_HOST);
    expect(r.p.out).toBe(PORT_C1);
    expect(r.out).toEqual(f);
  });

  it('CHECKSUM_PARTIAL (vnet NEEDS_CSUM): the pseudo-header sum follows the new addresses', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    const data = new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n');
    const f = tcpFrame(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80, flags: TCP_ACK, payload: data }));
    const tcpLen = 20 + data.length;
    // As a container's kernel sends it: the checksum field holds the pseudo-header sum only.
    writeU16(f, 14 + 20 + 16, fold(pseudoHeaderSum(ip(C1), ip(SERVER), IPPROTO_TCP, tcpLen)));
    const vnet = new Uint8Array(VNET_HDR_LEN);
    const vv = new VnetHdrView();
    vv.reset(vnet, 0, VNET_HDR_LEN);
    vv.setFlags(VNET_F_NEEDS_CSUM);
    vv.setCsumStart(34);
    vv.setCsumOffset(16);
    const r = run(s, f, PORT_C1, vnet);
    expect(r.p.out).toBe(PORT_UP);
    const o = parseIpFrame(r.out, true);
    expect(o).toMatchObject({ src: UP, dst: SERVER, sport: 40000, dport: 80 });
    expect(readU16(r.out, 34 + 16)).toBe(fold(pseudoHeaderSum(ip(UP), ip(SERVER), IPPROTO_TCP, tcpLen)));
    // The offload request is kept, and finishing it (as the kernel will) gives a right checksum.
    expect(vv.reset(r.buf, r.p.off, VNET_HDR_LEN) && vv.needsCsum).toBe(true);
    expect(finishPartialChecksum(r.out, 0, 34, 16, r.out.length)).toBe(true);
    parseIpFrame(r.out);
    // And the reply direction, from a vnet uplink.
    const back = tcpFrame(fromOutside({ srcIp: SERVER, dstIp: UP, srcPort: 80, dstPort: 40000, flags: TCP_ACK, payload: data }));
    writeU16(back, 14 + 20 + 16, fold(pseudoHeaderSum(ip(SERVER), ip(UP), IPPROTO_TCP, tcpLen)));
    const rb = run(s, back, PORT_UP, vnet);
    expect(rb.p.out).toBe(PORT_C1);
    expect(readU16(rb.out, 34 + 16)).toBe(fold(pseudoHeaderSum(ip(SERVER), ip(C1), IPPROTO_TCP, tcpLen)));
    expect(finishPartialChecksum(rb.out, 0, 34, 16, rb.out.length)).toBe(true);
    expect(parseIpFrame(rb.out)).toMatchObject({ src: SERVER, dst: C1, dport: 40000 });
  });

  it('conntrack full, per-source limit and NAT ports exhausted are drops, by name', () => {
    const s = setup({ ct: { maxEntries: 1 } });
    uplinkGatewayKnown(s);
    expect(run(s, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80 })), PORT_C1).p.out).toBe(PORT_UP);
    expect(dropOf(run(s, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40001, dstPort: 80 })), PORT_C1).p)).toBe('conntrack-full');
    expect(s.ct.counters().full).toBe(1);

    const t = setup({ ct: { maxPerSource: 1 } });
    uplinkGatewayKnown(t);
    run(t, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80 })), PORT_C1);
    expect(dropOf(run(t, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40001, dstPort: 80 })), PORT_C1).p)).toBe('conntrack-source-limit');

    const u = setup({ ct: { portMin: 40000, portMax: 40000 } });
    uplinkGatewayKnown(u);
    run(u, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80 })), PORT_C1);
    expect(dropOf(run(u, tcpSyn(toGw({ srcIp: C2, dstIp: SERVER, srcPort: 40000, dstPort: 80 }, C2_MAC)), PORT_C2).p)).toBe('nat-ports-exhausted');
  });

  it('every refusal of the connection table has its drop reason; a tuple taken meanwhile is conntrack-full', () => {
    expect(DROP_REASONS[refusalReason(CT_ERR_FULL)]).toBe('conntrack-full');
    expect(DROP_REASONS[refusalReason(CT_ERR_NO_PORT)]).toBe('nat-ports-exhausted');
    expect(DROP_REASONS[refusalReason(CT_ERR_SOURCE_LIMIT)]).toBe('conntrack-source-limit');
    // Another worker created the same connection between our find() and create().
    const s = setup();
    const tuple = [IPPROTO_TCP, ip(C1), ip(SERVER), 40000, 80] as const;
    expect(s.ct.create(...tuple, ip(UP), ip(SERVER), 80, 40000, true, 0, -1, CT_KIND_MASQ, NOW)).toBeGreaterThanOrEqual(0);
    const again = s.ct.create(...tuple, ip(UP), ip(SERVER), 80, 40000, true, 0, -1, CT_KIND_MASQ, NOW);
    expect(again).toBe(CT_ERR_FULL);
    expect(DROP_REASONS[refusalReason(again)]).toBe('conntrack-full');
  });

  it('with no L3 context, or on a network without a router, the gateway passes everything', () => {
    const s = setup();
    s.ctx.l3 = null;
    const r = run(s, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 1, dstPort: 2 })), PORT_C1);
    expect(r.p.l3).toBe(L3_NONE);
    expect(r.p.out).toBe(OUT_FLOOD);
    const t = setup({ snap: { nets: [], uplink: null, mappings: [] } });
    expect(run(t, arpRequest({ srcMac: C1_MAC, srcIp: C1, targetIp: GW }), PORT_C1).p.out).toBe(OUT_FLOOD);
    // The stage on its own.
    const p = new Packet();
    const f = arpRequest({ srcMac: C1_MAC, srcIp: C1, targetIp: GW });
    p.reset(f, 0, f.length, false, PORT_C1, 0);
    expect(new GatewayStage().process(p, s.ctx)).toBe(true);
  });
});

describe('gateway stage: dry run', () => {
  function snapshotOf(s: Setup) {
    return {
      neigh: s.neigh.list(NOW),
      ct: s.ct.list(NOW),
      ctCounters: s.ct.counters(),
      fdb: s.fdb.counters().entries,
    };
  }

  it('changes no table, sends nothing, punts nothing; says what would happen', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    known(s, 0, PORT_C1, C1_MAC, C1);
    // One live connection, to see a dry run through it.
    run(s, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80 })), PORT_C1);
    s.ctx.dryRun = true;
    const before = snapshotOf(s);
    const C9_MAC = '02:42:0a:59:00:09';

    const arp = arpRequest({ srcMac: C9_MAC, srcIp: '10.89.0.9', targetIp: GW });
    const a = run(s, arp, PORT_C2);
    expect(a.p.l3).toBe(L3_ARP_REPLY);
    expect(a.p.out).toBe(PORT_C2);
    expect(a.out).toEqual(arp); // not rewritten

    const ping = icmpEcho(toGw({ srcIp: '10.89.0.9', dstIp: GW, id: 1, seq: 1 }, C9_MAC));
    const pg = run(s, ping, PORT_C2);
    expect(pg.p.l3).toBe(L3_PING);
    expect(pg.out).toEqual(ping);

    const dns = run(s, udpFrame(toGw({ srcIp: C1, dstIp: GW, srcPort: 5353, dstPort: 53 })), PORT_C1);
    expect(dns.p.l3).toBe(L3_DNS_PUNT);
    expect(dns.p.out).toBe(OUT_LOCAL);

    const fresh = run(s, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40001, dstPort: 80 })), PORT_C1);
    expect(fresh.p.l3).toBe(L3_NO_CT);
    expect(fresh.p.out).toBe(OUT_LOCAL);
    const inbound = run(s, tcpSyn(fromOutside({ srcIp: CLIENT, dstIp: UP, srcPort: 50000, dstPort: 8080 })), PORT_UP);
    expect(inbound.p.l3).toBe(L3_NO_CT);
    const dnsTcp = run(s, tcpSyn(toGw({ srcIp: C1, dstIp: GW, srcPort: 45000, dstPort: 53 })), PORT_C1);
    expect(dnsTcp.p.l3).toBe(L3_NO_CT);

    // An existing connection: translated and routed, TTL untouched, nothing accounted.
    const old = run(s, tcpFrame(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 40000, dstPort: 80, flags: TCP_ACK })), PORT_C1);
    expect(old.p.l3).toBe(L3_CT);
    expect(old.p.out).toBe(PORT_UP);
    expect(parseIpFrame(old.out)).toMatchObject({ src: UP, dst: SERVER, ttl: 64 });

    // Neighbour miss: no ARP request, no INCOMPLETE entry.
    const miss = run(s, udpFrame(toGw({ srcIp: C1, dstIp: '10.89.0.50', srcPort: 1, dstPort: 2 })), PORT_C1);
    expect(dropOf(miss.p)).toBe('neigh-miss');
    // TTL 1: no time exceeded sent.
    const ttl = run(s, udpFrame(toGw({ srcIp: C1, dstIp: SERVER, srcPort: 1, dstPort: 2, ttl: 1 })), PORT_C1);
    expect(dropOf(ttl.p)).toBe('ttl-exceeded');
    // Learning from the uplink and from a gratuitous ARP: not done.
    run(s, arpRequest({ srcMac: '52:54:00:00:00:07', srcIp: NEIGHBOUR, targetIp: UP }), PORT_UP);
    run(s, arpRequest({ srcMac: C9_MAC, srcIp: '10.89.0.9', targetIp: '10.89.0.9' }), PORT_C2);

    expect(snapshotOf(s)).toEqual(before);
    expect(s.emit.sent).toEqual([]);
    expect(s.emit.punted).toEqual([]);
  });
});

describe('gateway stage: the DNS forwarder out of the uplink (issue 11)', () => {
  const RESOLVER = '192.0.2.53';

  it('masquerade never hands out a UDP port of the forwarder range, not even a container\'s own source port', () => {
    // A NAT range that straddles the forwarder's: only the ports below it are used, then no-port.
    const s = setup({ ct: { maxPerSource: 64, portMin: CT_FORWARDER_PORT_MIN - 4, portMax: CT_FORWARDER_PORT_MIN + 20 } });
    uplinkGatewayKnown(s);
    const got: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = run(s, udpFrame(toGw({ srcIp: C1, dstIp: RESOLVER, srcPort: CT_FORWARDER_PORT_MIN + 3 + i, dstPort: 53 })), PORT_C1);
      if (i < 4) {
        expect(r.p.out).toBe(PORT_UP);
        got.push(parseIpFrame(r.out).sport);
      } else {
        expect(dropOf(r.p)).toBe('nat-ports-exhausted');
      }
    }
    expect(got.sort()).toEqual([0, 1, 2, 3].map((i) => CT_FORWARDER_PORT_MIN - 4 + i));
    // TCP is not affected: a container's own port is kept.
    const t = run(s, tcpSyn(toGw({ srcIp: C1, dstIp: SERVER, srcPort: CT_FORWARDER_PORT_MAX, dstPort: 80 })), PORT_C1);
    expect(parseIpFrame(t.out).sport).toBe(CT_FORWARDER_PORT_MAX);
  });

  it('in the default range, a container\'s UDP source port in the forwarder range is replaced', () => {
    const s = setup();
    uplinkGatewayKnown(s);
    for (const sport of [CT_FORWARDER_PORT_MIN, 62000, CT_FORWARDER_PORT_MAX]) {
      const r = run(s, udpFrame(toGw({ srcIp: C1, dstIp: RESOLVER, srcPort: sport, dstPort: 53 })), PORT_C1);
      expect(r.p.out).toBe(PORT_UP);
      const o = parseIpFrame(r.out);
      expect(o.src).toBe(UP);
      expect(o.sport < CT_FORWARDER_PORT_MIN, `port ${o.sport}`).toBe(true);
    }
    const below = run(s, udpFrame(toGw({ srcIp: C1, dstIp: RESOLVER, srcPort: CT_FORWARDER_PORT_MIN - 1, dstPort: 53 })), PORT_C1);
    expect(parseIpFrame(below.out).sport).toBe(CT_FORWARDER_PORT_MIN - 1);
  });

  it('from the uplink, UDP to the uplink address and a forwarder port in use is punted (dns-upstream-answer), unchanged', () => {
    const s = setup();
    // A port no try waits on: dropped here (a flood of the range never reaches the main thread).
    const idle = udpFrame(fromOutside({ srcIp: RESOLVER, dstIp: UP, srcPort: 53, dstPort: CT_FORWARDER_PORT_MIN + 1 }));
    expect(dropOf(run(s, idle, PORT_UP).p)).toBe('no-service');
    expect(s.emit.punted).toEqual([]);
    for (const port of [CT_FORWARDER_PORT_MIN, CT_FORWARDER_PORT_MAX, CT_FORWARDER_PORT_MIN + 1]) s.ct.forwarderPortUse(port, true);
    for (const dport of [CT_FORWARDER_PORT_MIN, CT_FORWARDER_PORT_MAX]) {
      const a = udpFrame(fromOutside({ srcIp: RESOLVER, dstIp: UP, srcPort: 53, dstPort: dport, payload: new Uint8Array([1, 2, 3]) }));
      const r = run(s, a, PORT_UP);
      expect(r.p.out).toBe(OUT_LOCAL);
      expect(r.p.l3).toBe(L3_DNS_UPSTREAM);
      expect(s.emit.punted.at(-1)).toEqual({ bytes: a, port: PORT_UP });
    }
    // Below the range, TCP, or another address: not punted.
    expect(dropOf(run(s, udpFrame(fromOutside({ srcIp: RESOLVER, dstIp: UP, srcPort: 53, dstPort: CT_FORWARDER_PORT_MIN - 1 })), PORT_UP).p)).toBe('no-service');
    expect(dropOf(run(s, tcpSyn(fromOutside({ srcIp: RESOLVER, dstIp: UP, srcPort: 53, dstPort: CT_FORWARDER_PORT_MIN })), PORT_UP).p)).toBe('no-service');
    expect(dropOf(run(s, udpFrame(fromOutside({ srcIp: RESOLVER, dstIp: '198.51.100.3', srcPort: 53, dstPort: CT_FORWARDER_PORT_MIN })), PORT_UP).p)).toBe('uplink-not-ours');
    expect(s.emit.punted).toHaveLength(2);
    expect(s.ct.size()).toBe(0);
    // Released again: dropped again.
    s.ct.forwarderPortUse(CT_FORWARDER_PORT_MIN + 1, false);
    expect(dropOf(run(s, idle, PORT_UP).p)).toBe('no-service');
    // The punt ring full: dropped, named.
    s.emit.puntOk = false;
    expect(dropOf(run(s, udpFrame(fromOutside({ srcIp: RESOLVER, dstIp: UP, srcPort: 53, dstPort: CT_FORWARDER_PORT_MIN })), PORT_UP).p)).toBe('punt-full');
  });

  it('an ICMP error about a forwarder query (no connection) is punted; about another port: no-service', () => {
    const s = setup();
    const err = (sport: number, src = UP) => buildEthernet({
      dst: UP_MAC, src: UP_GW_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: RESOLVER, dst: UP, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: ICMP_DEST_UNREACH, code: 3,
        payload: udpFrame({ srcMac: UP_MAC, dstMac: UP_GW_MAC, srcIp: src, dstIp: RESOLVER, srcPort: sport, dstPort: 53 }).subarray(14) }) }),
    });
    const e = err(CT_FORWARDER_PORT_MIN + 9);
    expect(dropOf(run(s, e, PORT_UP).p)).toBe('no-service'); // no try on that port
    s.ct.forwarderPortUse(CT_FORWARDER_PORT_MIN + 9, true);
    const r = run(s, e, PORT_UP);
    expect(r.p.l3).toBe(L3_DNS_UPSTREAM);
    expect(r.p.out).toBe(OUT_LOCAL);
    expect(s.emit.punted).toEqual([{ bytes: e, port: PORT_UP }]);
    expect(dropOf(run(s, err(CT_FORWARDER_PORT_MIN - 1), PORT_UP).p)).toBe('no-service');
    expect(dropOf(run(s, err(CT_FORWARDER_PORT_MIN + 9, '198.51.100.3'), PORT_UP).p)).toBe('no-service');
    expect(s.emit.punted).toHaveLength(1);
  });

  it('a dry run punts nothing', () => {
    const s = setup();
    s.ct.forwarderPortUse(CT_FORWARDER_PORT_MIN + 1, true);
    s.ctx.dryRun = true;
    const r = run(s, udpFrame(fromOutside({ srcIp: RESOLVER, dstIp: UP, srcPort: 53, dstPort: CT_FORWARDER_PORT_MIN + 1 })), PORT_UP);
    expect(r.p.l3).toBe(L3_DNS_UPSTREAM);
    expect(r.p.out).toBe(OUT_LOCAL);
    expect(s.emit.punted).toEqual([]);
  });
});
