// dataplane/vxlan/*: the outer headers, VTEP entries in the FDB, head-end replication and
// split horizon in egress (FORM_VXLAN), software segmentation of a 64 KB TCP frame, and the
// receive-side checksum repair and GSO marking.
import { describe, expect, it } from 'vitest';
import {
  flowSourcePort, ipText, ipValue, parseVxlan, VX_BAD_FLAGS, VX_RUNT, VXLAN_OUTER_LEN, writeOuter,
} from '../../../dataplane/vxlan/header';
import { markTcpGso, planTcp4, repairPartialChecksum, SegPlan, writeSegment, segmentLength } from '../../../dataplane/vxlan/segment';
import { VxlanPort, peerCounterBytes, sumPeerCounters } from '../../../dataplane/vxlan/port';
import { Egress, FORM_VNET, FORM_VXLAN, type EgressPort } from '../../../dataplane/egress';
import { Fdb } from '../../../dataplane/tables/fdb';
import { PortTable } from '../../../dataplane/tables/ports';
import { DROP } from '../../../dataplane/drops';
import { l4Checksum } from '../../../dataplane/wire/ipv4';
import { finishPartialChecksum, internetChecksum } from '../../../dataplane/wire/checksum';
import { coalesce } from '../../../dataplane/vxlan/gro';
import { portRows, statsBytes, ST_DROP0, ST_ROW } from '../../../workers/shared';
import { MemoryWire, egressPort } from '../../fixtures/memory-io';
import { tcpFrame, udpFrame, withVnet, icmpEcho } from '../../fixtures/frames';

const A = '02:42:0a:4d:00:02';
const B = '02:42:0a:4d:00:40';
const BCAST = 'ff:ff:ff:ff:ff:ff';
const PEER1 = ipValue('192.168.77.2');
const PEER2 = ipValue('192.168.77.3');
const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];
const macParts = (m: string): { hi: number; lo: number } => {
  const b = m.split(':').map((x) => parseInt(x, 16));
  return { hi: (b[0] << 8) | b[1], lo: ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) >>> 0 };
};

describe('VXLAN header', () => {
  it('writes UDP (checksum 0, length) and VXLAN (I flag, VNI, reserved 0) and parses them back', () => {
    const buf = new Uint8Array(64).fill(0xaa);
    writeOuter(buf, 0, 50000, 4789, 0xabcdef, 30);
    expect(u16(buf, 0)).toBe(50000);
    expect(u16(buf, 2)).toBe(4789);
    expect(u16(buf, 4)).toBe(VXLAN_OUTER_LEN + 30);
    expect(u16(buf, 6)).toBe(0);
    expect([...buf.subarray(8, 16)]).toEqual([0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
    expect(parseVxlan(buf, 8, 8 + 14)).toBe(0xabcdef);
  });

  it('ignores reserved bits on receive, refuses a missing I flag and runts', () => {
    const h = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 100, 0xff, ...new Array(14).fill(0)]);
    expect(parseVxlan(h, 0, h.length)).toBe(100);
    h[0] = 0xf7;
    expect(parseVxlan(h, 0, h.length)).toBe(VX_BAD_FLAGS);
    expect(parseVxlan(h, 0, 8 + 13)).toBe(VX_RUNT);
  });

  it('hashes the inner flow to a stable source port in 49152..65535', () => {
    const f1 = udpFrame({ srcMac: A, dstMac: B, srcIp: '10.77.0.2', dstIp: '10.77.0.64', srcPort: 1000, dstPort: 53 });
    const f2 = udpFrame({ srcMac: A, dstMac: B, srcIp: '10.77.0.2', dstIp: '10.77.0.64', srcPort: 1001, dstPort: 53 });
    const p1 = flowSourcePort(f1, 0, f1.length);
    expect(p1).toBe(flowSourcePort(f1, 0, f1.length));
    const ports = new Set<number>();
    for (let sp = 1000; sp < 1100; sp++) {
      const f = udpFrame({ srcMac: A, dstMac: B, srcIp: '10.77.0.2', dstIp: '10.77.0.64', srcPort: sp, dstPort: 53 });
      const p = flowSourcePort(f, 0, f.length);
      expect(p).toBeGreaterThanOrEqual(49152);
      expect(p).toBeLessThanOrEqual(65535);
      ports.add(p);
    }
    expect(ports.size).toBeGreaterThan(80);
    expect(flowSourcePort(f2, 0, f2.length)).not.toBe(p1);
  });

  it('converts addresses', () => {
    expect(ipText(ipValue('192.168.77.250'))).toBe('192.168.77.250');
    expect(Number.isNaN(ipValue('1.2.3'))).toBe(true);
  });
});

describe('FDB entries behind a VTEP', () => {
  const fdb = (): Fdb => new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: 300 });
  it('learns the VTEP, moves it, ages it like a local entry, clears it when the MAC moves to a local port', () => {
    const t = fdb();
    const m = macParts(B);
    t.learnVtep(1, 0, m.hi, m.lo, 5, PEER1, 100);
    expect(t.lookup(1, 0, m.hi, m.lo)).toBe(5);
    expect(t.lookupVtep(1, 0, m.hi, m.lo)).toBe(PEER1);
    t.learnVtep(1, 0, m.hi, m.lo, 5, PEER2, 101);
    expect(t.lookupVtep(1, 0, m.hi, m.lo)).toBe(PEER2);
    expect(t.entries()[0]).toMatchObject({ port: 5, vtep: PEER2 });
    t.learn(1, 0, m.hi, m.lo, 3, 102);
    expect(t.lookupVtep(1, 0, m.hi, m.lo)).toBe(0);
    t.learnVtep(1, 0, m.hi, m.lo, 5, PEER1, 103);
    expect(t.age(103 + 301)).toBe(1);
    expect(t.lookup(1, 0, m.hi, m.lo)).toBe(-1);
  });

  it('keeps static entries (never aged, not overwritten by learning); flushVtep removes learned ones only', () => {
    const t = fdb();
    const s = macParts('02:00:00:00:12:34');
    const l = macParts(A);
    t.addStatic(1, 0, s.hi, s.lo, 5, PEER1);
    t.learnVtep(1, 0, s.hi, s.lo, 5, PEER2, 100);
    expect(t.lookupVtep(1, 0, s.hi, s.lo)).toBe(PEER1);
    t.learnVtep(1, 0, l.hi, l.lo, 5, PEER1, 100);
    expect(t.age(100_000)).toBe(1);
    expect(t.entries()).toMatchObject([{ static: true, vtep: PEER1 }]);
    t.learnVtep(1, 0, l.hi, l.lo, 5, PEER1, 100);
    expect(t.flushVtep(5, PEER1)).toBe(1);
    expect(t.remove(1, 0, s.hi, s.lo)).toBe(true);
    expect(t.entries()).toEqual([]);
  });
});

describe('egress to a VXLAN segment', () => {
  // Ports: 1, 2 local (vnet) in network 1; 3 the overlay port of network 1 (VNI 100).
  function setup(peers = [PEER1, PEER2]) {
    const ports = new PortTable(16);
    for (const id of [1, 2, 3]) ports.add(id, `p${id}`, 1, 0);
    const buf = new Uint8Array(1 << 20);
    const wire = new MemoryWire(buf);
    const stats = new Float64Array(statsBytes(16) / 8);
    const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: 300 });
    const eg = new Egress({ buf, ports, device: wire, counters: portRows(stats), vteps: fdb, scratch: { off: 1 << 19, bytes: 1 << 19 } });
    const sab = new SharedArrayBuffer(peerCounterBytes(1));
    const gw = macParts('02:42:0a:4d:00:01');
    const vx = new VxlanPort({ vni: 100, port: 4789, vtep: 9, mtu: 1450, peers: peers.map((addr, i) => ({ addr, slot: i + 1 })), localMacs: [gw], counters: sab }, 0, 256);
    vx.net = 1;
    eg.attach(egressPort(1, FORM_VNET));
    eg.attach(egressPort(2, FORM_VNET));
    const overlay: EgressPort = { id: 3, form: FORM_VXLAN, txOffs: new Int32Array(256), txLens: new Int32Array(256), txN: 0, vx };
    eg.attach(overlay);
    const place = (frame: Uint8Array, hdr = {}): { off: number; len: number } => {
      const bytes = withVnet(frame, hdr);
      buf.set(bytes, 64);
      return { off: 64, len: bytes.length };
    };
    return { eg, wire, fdb, vx, buf, stats, place, sab };
  }

  it('replicates a broadcast to every peer (head-end replication), same bytes, each with its address', () => {
    const { eg, wire, vx, place, sab } = setup();
    const f = icmpEcho({ srcMac: A, dstMac: BCAST, srcIp: '10.77.0.2', dstIp: '10.77.0.255', id: 1, seq: 1 });
    const { off, len } = place(f);
    const addrs: number[] = [];
    const orig = wire.transmit.bind(wire);
    wire.transmit = (q) => { if (q.vx) for (let j = 0; j < q.txN; j++) addrs.push(q.vx.txAddrs[j]); return orig(q); };
    expect(eg.flood(1, 1, 0, off, len, true)).toBe(2); // port 2 and the overlay
    eg.flush();
    const out = wire.to(3);
    expect(out).toHaveLength(2);
    expect(addrs).toEqual([PEER1, PEER2]);
    for (const d of out) {
      expect(d.length).toBe(VXLAN_OUTER_LEN + f.length);
      expect(parseVxlan(d, 8, d.length - 8)).toBe(100);
      expect([...d.subarray(VXLAN_OUTER_LEN)]).toEqual([...f]);
    }
    expect(sumPeerCounters(sab, 1, 1)[2]).toBe(1);
    expect(vx.peerAddrs.length).toBe(2);
  });

  it('split horizon: a flood from the overlay goes to local ports only', () => {
    const { eg, wire, place } = setup();
    const f = icmpEcho({ srcMac: B, dstMac: BCAST, srcIp: '10.77.0.64', dstIp: '10.77.0.255', id: 1, seq: 1 });
    const { off, len } = place(f);
    expect(eg.flood(1, 3, 0, off, len, true)).toBe(2);
    eg.flush();
    expect(wire.to(3)).toHaveLength(0);
    expect(wire.to(1)).toHaveLength(1);
  });

  it('unicast to a MAC learned behind a VTEP goes to that VTEP only; unknown unicast to every peer', () => {
    const { eg, wire, fdb, place } = setup();
    const m = macParts(B);
    fdb.learnVtep(1, 0, m.hi, m.lo, 3, PEER2, 1);
    const addrs: number[] = [];
    const orig = wire.transmit.bind(wire);
    wire.transmit = (q) => { if (q.vx) for (let j = 0; j < q.txN; j++) addrs.push(q.vx.txAddrs[j]); return orig(q); };
    const known = place(udpFrame({ srcMac: A, dstMac: B, srcIp: '10.77.0.2', dstIp: '10.77.0.64', srcPort: 1, dstPort: 2 }));
    eg.unicast(3, 1, 0, known.off, known.len, true);
    eg.flush();
    expect(addrs).toEqual([PEER2]);
    addrs.length = 0;
    const unknown = place(udpFrame({ srcMac: A, dstMac: '02:42:0a:4d:00:77', srcIp: '10.77.0.2', dstIp: '10.77.0.9', srcPort: 1, dstPort: 2 }));
    eg.unicast(3, 1, 0, unknown.off, unknown.len, true);
    eg.flush();
    expect(addrs).toEqual([PEER1, PEER2]);
  });

  it("never carries the network's host-port or gateway MAC across (vxlan-host-mac)", () => {
    const { eg, wire, stats, place } = setup();
    const { off, len } = place(icmpEcho({ srcMac: '02:42:0a:4d:00:01', dstMac: BCAST, srcIp: '10.77.0.1', dstIp: '10.77.0.255', id: 1, seq: 1 }));
    eg.flood(1, 1, 0, off, len, true);
    eg.flush();
    expect(wire.to(3)).toHaveLength(0);
    expect(stats[3 * ST_ROW + ST_DROP0 + DROP['vxlan-host-mac']]).toBe(1);
  });

  it('finishes a partial checksum in the copy, leaving the original for the local ports', () => {
    const { eg, wire, place, buf } = setup();
    const f = tcpFrame({ srcMac: A, dstMac: BCAST, srcIp: '10.77.0.2', dstIp: '10.77.0.64', srcPort: 5, dstPort: 6, flags: 0x18, payload: new Uint8Array(100).fill(7) });
    const good = u16(f, 14 + 20 + 16);
    // Partial: the field holds the pseudo-header sum, as a veth hands it over.
    const partial = f.slice();
    const src = [10, 77, 0, 2]; const dst = [10, 77, 0, 64];
    let s = ((src[0] << 8) | src[1]) + ((src[2] << 8) | src[3]) + ((dst[0] << 8) | dst[1]) + ((dst[2] << 8) | dst[3]) + 6 + (partial.length - 34);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    partial[50] = s >> 8; partial[51] = s & 0xff;
    const { off, len } = place(partial, { flags: 1, csumStart: 34, csumOffset: 16 });
    eg.flood(1, 1, 0, off, len, true);
    eg.flush();
    const d = wire.to(3)[0];
    expect(u16(d, VXLAN_OUTER_LEN + 50)).toBe(good);
    expect(u16(buf, off + 10 + 50)).toBe(s); // untouched for port 2
  });
});

describe('software segmentation of a 64 KB TCP frame', () => {
  it('cuts it to the MSS with correct IPv4 and TCP checksums, sequence numbers, ids and flags', () => {
    const payload = new Uint8Array(65000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const f = tcpFrame({ srcMac: A, dstMac: B, srcIp: '10.77.0.2', dstIp: '10.77.0.64', srcPort: 40000, dstPort: 5201, flags: 0x18 | 0x01 | 0x80, seq: 0xfffff000, payload, ipId: 77 });
    const plan = new SegPlan();
    expect(planTcp4(f, 0, f.length, 1398, plan)).toBe(true);
    expect(plan.segments).toBe(Math.ceil(65000 / 1398));
    const out = new Uint8Array(2000);
    let got = 0;
    for (let k = 0; k < plan.segments; k++) {
      const len = writeSegment(f, 0, plan, k, out, 0);
      expect(len).toBe(segmentLength(plan, k));
      expect(len - 54).toBeLessThanOrEqual(1398);
      expect(internetChecksum(out, 14, 20)).toBe(0);
      expect(u16(out, 16)).toBe(len - 14);
      expect(u16(out, 18)).toBe(77 + k);
      expect(l4Checksum(out, 14, 34, len - 34)).toBe(0);
      const seq = ((out[38] << 24) | (out[39] << 16) | (out[40] << 8) | out[41]) >>> 0;
      expect(seq).toBe((0xfffff000 + k * 1398) >>> 0);
      const flags = out[47];
      const last = k === plan.segments - 1;
      expect((flags & 0x01) !== 0).toBe(last);
      expect((flags & 0x08) !== 0).toBe(last);
      expect((flags & 0x80) !== 0).toBe(k === 0);
      expect([...out.subarray(54, len)]).toEqual([...payload.subarray(k * 1398, k * 1398 + len - 54)]);
      got += len - 54;
    }
    expect(got).toBe(65000);
  });

  it('refuses what it cannot cut (not TCP over IPv4)', () => {
    const f = udpFrame({ srcMac: A, dstMac: B, srcIp: '10.77.0.2', dstIp: '10.77.0.64', srcPort: 1, dstPort: 2, payload: new Uint8Array(3000) });
    expect(planTcp4(f, 0, f.length, 1398, new SegPlan())).toBe(false);
  });
});

describe('receive side', () => {
  it('finishes a checksum left partial, leaves a complete one alone', () => {
    const f = tcpFrame({ srcMac: B, dstMac: A, srcIp: '10.77.0.200', dstIp: '10.77.0.2', srcPort: 5201, dstPort: 40000, flags: 0x10, payload: new Uint8Array(500).fill(3) });
    const good = u16(f, 50);
    expect(repairPartialChecksum(f, 0, f.length)).toBe(false);
    let s = 10 * 256 + 77 + 200 + 10 * 256 + 77 + 2 + 6 + (f.length - 34);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    f[50] = s >> 8; f[51] = s & 0xff;
    expect(repairPartialChecksum(f, 0, f.length)).toBe(true);
    expect(u16(f, 50)).toBe(good);
  });

  it('marks a TCP super frame from a kernel peer with a GSO header; refuses other oversize frames', () => {
    const buf = new Uint8Array(10 + 7000);
    const f = tcpFrame({ srcMac: B, dstMac: A, srcIp: '10.77.0.200', dstIp: '10.77.0.2', srcPort: 5201, dstPort: 40000, flags: 0x10, payload: new Uint8Array(6900) });
    buf.set(f, 10);
    expect(markTcpGso(buf, 0, 10, f.length, 1450)).toBe(true);
    expect([buf[0], buf[1], buf[4] | (buf[5] << 8), buf[6] | (buf[7] << 8), buf[8]]).toEqual([1, 1, 1410, 34, 16]);
    const u = udpFrame({ srcMac: B, dstMac: A, srcIp: '10.77.0.200', dstIp: '10.77.0.2', srcPort: 1, dstPort: 2, payload: new Uint8Array(6900) });
    buf.set(u, 10);
    expect(markTcpGso(buf, 0, 10, u.length, 1450)).toBe(false);
  });
});

describe('receive coalescing (GRO)', () => {
  const seg = (seq: number, payload: number, flags = 0x10): Uint8Array =>
    tcpFrame({ srcMac: B, dstMac: A, srcIp: '10.77.0.64', dstIp: '10.77.0.2', srcPort: 5201, dstPort: 40000, flags, seq, ack: 7, window: 500, payload: new Uint8Array(payload).fill(seq & 0xff) });
  const SLOT_BYTES = 70000;
  function batch(frames: Uint8Array[]) {
    const buf = new Uint8Array(SLOT_BYTES * frames.length);
    const n = frames.length;
    const vnet = new Int32Array(n); const len = new Int32Array(n); const port = new Int32Array(n); const gso = new Uint8Array(n);
    frames.forEach((f, i) => { vnet[i] = i * SLOT_BYTES + 6; buf.set(f, vnet[i] + 10); len[i] = f.length; port[i] = 3; });
    return { buf, vnet, len, port, gso, n, end: (i: number) => (Math.floor(vnet[i] / SLOT_BYTES) + 1) * SLOT_BYTES };
  }

  it('merges in-order segments of one flow into a GSO super frame with a partial checksum', () => {
    const b = batch([seg(1000, 1398), seg(2398, 1398), seg(3796, 500, 0x18)]);
    expect(coalesce(b.buf, b.vnet, b.len, b.port, b.gso, b.n, b.end)).toBe(2);
    expect([...b.port]).toEqual([3, -1, -1]);
    const h = b.vnet[0];
    expect([b.buf[h], b.buf[h + 1], b.buf[h + 4] | (b.buf[h + 5] << 8)]).toEqual([1, 1, 1398]);
    const e = h + 10;
    expect(u16(b.buf, e + 16)).toBe(20 + 20 + 1398 * 2 + 500);
    expect(internetChecksum(b.buf, e + 14, 20)).toBe(0);
    expect(b.buf[e + 47]).toBe(0x18);
    expect(b.len[0]).toBe(14 + 40 + 3296);
    // Finishing the partial checksum (as the receiving kernel does) gives a valid segment.
    const copy = b.buf.slice(e, e + b.len[0]);
    expect(finishPartialChecksum(copy, 0, 34, 16, copy.length)).toBe(true);
    expect(l4Checksum(copy, 14, 34, copy.length - 34)).toBe(0);
    expect(copy[54 + 1398]).toBe(2398 & 0xff);
  });

  it('does not merge out-of-order, other flows, corrupt segments or a segment after a short one', () => {
    const gap = batch([seg(1000, 1398), seg(5000, 1398)]);
    expect(coalesce(gap.buf, gap.vnet, gap.len, gap.port, gap.gso, gap.n, gap.end)).toBe(0);
    const bad = seg(2398, 1398);
    bad[60] ^= 0xff;
    const corrupt = batch([seg(1000, 1398), bad]);
    expect(coalesce(corrupt.buf, corrupt.vnet, corrupt.len, corrupt.port, corrupt.gso, corrupt.n, corrupt.end)).toBe(0);
    const short = batch([seg(1000, 700), seg(1700, 700)]);
    expect(coalesce(short.buf, short.vnet, short.len, short.port, short.gso, short.n, short.end)).toBe(1);
    const after = batch([seg(1000, 1398), seg(2398, 700), seg(3098, 700)]);
    expect(coalesce(after.buf, after.vnet, after.len, after.port, after.gso, after.n, after.end)).toBe(1);
    expect([...after.port]).toEqual([3, -1, 3]);
  });
});
