// UDP GSO toward a VXLAN peer (docs/VXLAN.md "Sending: UDP GSO"): egress writes a 64 KB TCP
// frame's segments back to back behind one UDP header (one queue entry per destination, its
// segment size in txSegs), and the addon's sendVxlan sends such an entry with one sendmsg +
// UDP_SEGMENT through openUdp's pool of UDP sockets, which the kernel cuts into datagrams a
// plain UDP receiver (a kernel vxlan) reads one by one.
import * as dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { ipValue, parseVxlan } from '../../../dataplane/vxlan/header';
import { VxlanPort, peerCounterBytes, sumPeerCounters } from '../../../dataplane/vxlan/port';
import { Egress, FORM_VXLAN, type EgressPort } from '../../../dataplane/egress';
import { PortTable } from '../../../dataplane/tables/ports';
import { l4Checksum } from '../../../dataplane/wire/ipv4';
import { internetChecksum } from '../../../dataplane/wire/checksum';
import { portRows, statsBytes } from '../../../workers/shared';
import { loadIo } from '../../../workers/io';
import { coalesce } from '../../../dataplane/vxlan/gro';
import { MemoryWire } from '../../fixtures/memory-io';
import { tcpFrame, withVnet } from '../../fixtures/frames';

const A = '02:42:0a:4d:00:02';
const B = '02:42:0a:4d:00:40';
const PEER1 = ipValue('192.168.77.2');
const PEER2 = ipValue('192.168.77.3');
const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];

function setup(socks: number[]) {
  const ports = new PortTable(16);
  for (const id of [1, 3]) ports.add(id, `p${id}`, 1, 0);
  const buf = new Uint8Array(1 << 21);
  const wire = new MemoryWire(buf);
  const stats = new Float64Array(statsBytes(16) / 8);
  const eg = new Egress({ buf, ports, device: wire, counters: portRows(stats), scratch: { off: 1 << 20, bytes: 1 << 20 } });
  const sab = new SharedArrayBuffer(peerCounterBytes(1));
  const vx = new VxlanPort({ vni: 100, port: 4789, vtep: 9, mtu: 1450, peers: [{ addr: PEER1, slot: 1 }, { addr: PEER2, slot: 2 }], localMacs: [], counters: sab, socks }, 0, 256);
  vx.net = 1;
  const overlay: EgressPort = { id: 3, form: FORM_VXLAN, txOffs: new Int32Array(256), txLens: new Int32Array(256), txN: 0, vx };
  eg.attach(overlay);
  const segs: number[] = [];
  const orig = wire.transmit.bind(wire);
  wire.transmit = (q) => { if (q.vx) for (let j = 0; j < q.txN; j++) segs.push(q.vx.txSegs[j]); return orig(q); };
  return { eg, wire, buf, segs, sab };
}

/** A 64 KB GSO_TCPV4 frame from a container (virtio-net header: GSO TCPv4, gso_size mss). */
function superFrame(payloadLen: number, mss: number): { frame: Uint8Array; payload: Uint8Array; bytes: Uint8Array } {
  const payload = new Uint8Array(payloadLen);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 13) & 0xff;
  const frame = tcpFrame({ srcMac: A, dstMac: B, srcIp: '10.77.0.2', dstIp: '10.77.0.64', srcPort: 40000, dstPort: 5201, flags: 0x18, seq: 1000, payload, ipId: 5 });
  const bytes = withVnet(frame, { flags: 1, gsoType: 1, hdrLen: 54, gsoSize: mss, csumStart: 34, csumOffset: 16 });
  return { frame, payload, bytes };
}

/** The datagrams of a UDP GSO entry: after the 8-byte UDP header, `seg` bytes each. */
function split(entry: Uint8Array, seg: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let d = 8; d < entry.length; d += seg) out.push(entry.subarray(d, Math.min(d + seg, entry.length)));
  return out;
}

function checkSegments(dgrams: Uint8Array[], payload: Uint8Array, mss: number): void {
  let got = 0;
  dgrams.forEach((d, k) => {
    expect(parseVxlan(d, 0, d.length)).toBe(100);
    const eth = d.subarray(8);
    expect(internetChecksum(eth, 14, 20)).toBe(0);
    expect(u16(eth, 16)).toBe(eth.length - 14);
    expect(u16(eth, 18)).toBe(5 + k);
    expect(l4Checksum(eth, 14, 34, eth.length - 34)).toBe(0);
    const seq = ((eth[38] << 24) | (eth[39] << 16) | (eth[40] << 8) | eth[41]) >>> 0;
    expect(seq).toBe(1000 + k * mss);
    expect((eth[47] & 0x08) !== 0).toBe(k === dgrams.length - 1); // PSH on the last only
    expect([...eth.subarray(54)]).toEqual([...payload.subarray(got, got + eth.length - 54)]);
    got += eth.length - 54;
  });
  expect(got).toBe(payload.length);
}

describe('UDP GSO to VXLAN peers (egress)', () => {
  it('queues a 64 KB TCP frame as one entry per peer: segments of exactly gso_size back to back', () => {
    const { eg, wire, buf, segs, sab } = setup([7]);
    const { payload, bytes } = superFrame(65000, 1398);
    buf.set(bytes, 64);
    expect(eg.flood(1, 1, 0, 64, bytes.length, true)).toBe(1);
    eg.flush();
    const out = wire.to(3);
    // Two entries per peer, not ~47 datagrams: 44 segments of 1460 bytes fill the largest
    // UDP payload (65507 bytes; more is EMSGSIZE), the other 3 follow.
    const seg = 8 + 54 + 1398;
    const per = Math.floor(65507 / seg);
    expect(out).toHaveLength(4);
    expect(segs).toEqual([seg, seg, seg, seg]);
    for (const e of out) {
      expect(e.length - 8).toBeLessThanOrEqual(65507);
      expect(u16(e, 0)).toBeGreaterThanOrEqual(49152); // the flow's source port picks the socket
      expect(u16(e, 2)).toBe(4789);
    }
    for (const peer of [0, 1]) {
      const d = [out[peer], out[2 + peer]].flatMap((e) => split(e, seg));
      expect(split(out[peer], seg)).toHaveLength(per);
      expect(d).toHaveLength(Math.ceil(65000 / 1398));
      for (const x of d.slice(0, -1)) expect(x.length).toBe(seg);
      checkSegments(d, payload, 1398);
    }
    // Per-peer counters: the inner bytes of every segment.
    expect(sumPeerCounters(sab, 1, 1)[3]).toBe(65000 + 54 * Math.ceil(65000 / 1398));
  });

  it('cuts a frame of more than 64 segments into entries of at most 64 (UDP_MAX_SEGMENTS)', () => {
    const { eg, wire, buf, segs } = setup([7]);
    const { payload, bytes } = superFrame(60000, 400);
    buf.set(bytes, 64);
    eg.flood(1, 1, 0, 64, bytes.length, true);
    eg.flush();
    const seg = 8 + 54 + 400;
    const per = wire.to(3).filter((_, i) => i % 2 === 0); // peer 1's entries (peers alternate)
    expect(per).toHaveLength(Math.ceil(150 / 64)); // 64 * 462 bytes < 65507: the segment count limits
    for (const e of per.slice(0, -1)) expect(split(e, 8 + 54 + 400)).toHaveLength(64);
    expect(segs.every((s) => s === seg)).toBe(true);
    const all = per.flatMap((e) => split(e, seg));
    expect(all).toHaveLength(150);
    // ids and sequence numbers run on across entries
    checkSegments(all, payload, 400);
  });

  it('without UDP sockets (raw socket only) each segment is its own datagram, as before', () => {
    const { eg, wire, buf, segs } = setup([]);
    const { bytes } = superFrame(65000, 1398);
    buf.set(bytes, 64);
    eg.flood(1, 1, 0, 64, bytes.length, true);
    eg.flush();
    expect(wire.to(3)).toHaveLength(2 * Math.ceil(65000 / 1398));
    expect(segs.every((s) => s === 0)).toBe(true);
  });
});

describe.skipIf(process.getuid?.() !== 0)('sendVxlan (addon, loopback)', () => {
  it('one UDP_SEGMENT send arrives as separate datagrams of gso_size from a pool port >= 49152', async () => {
    const io = loadIo();
    const rx = dgram.createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
    const dport = rx.address().port;
    const got: { len: number; port: number; first: number }[] = [];
    const done = new Promise<void>((resolve) => rx.on('message', (m, ri) => {
      got.push({ len: m.length, port: ri.port, first: m[0] });
      if (got.length === 11) resolve();
    }));
    // Our own VTEP on another loopback port: its pool sends.
    const s = io.openUdp('127.0.0.1', dport + 1 > 65535 ? dport - 1 : dport + 1);
    try {
      expect(s.pool?.length).toBeGreaterThan(0);
      const buf = new Uint8Array(1 << 16);
      const seg = 1000;
      const len = 8 + 10 * seg + 300; // 10 full datagrams and a short one
      buf[0] = 0xc0; buf[1] = 0x01; // the UDP header's source port: picks the socket
      for (let d = 0; d < 11; d++) buf[8 + d * seg] = d;
      const sent = io.sendVxlan!(Int32Array.from(s.pool ?? []), buf, Int32Array.of(0), Int32Array.of(len), Int32Array.of(ipValue('127.0.0.1')), Int32Array.of(seg), 1, dport);
      expect(sent).toBe(1);
      await done;
      expect(got.map((g) => g.len)).toEqual([...Array(10).fill(seg), 300]);
      expect(got.map((g) => g.first)).toEqual([...Array(11).keys()]);
      expect(new Set(got.map((g) => g.port)).size).toBe(1);
      expect(got[0].port).toBeGreaterThanOrEqual(49152);
    } finally {
      rx.close();
      io.close(s.rx);
      io.close(s.tx);
      for (const fd of s.pool ?? []) io.close(fd);
    }
  });
  it('plain datagrams of one size to one address are batched (UDP_SEGMENT) and arrive one by one', async () => {
    const io = loadIo();
    const rx = dgram.createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
    const dport = rx.address().port;
    const got: number[] = [];
    const done = new Promise<void>((resolve) => rx.on('message', (m) => {
      got.push(m.length * 1000 + m[0]);
      if (got.length === 5) resolve();
    }));
    const s = io.openUdp('127.0.0.1', dport + 1 > 65535 ? dport - 1 : dport + 1);
    try {
      const buf = new Uint8Array(1 << 16);
      // Entries as egress queues them: UDP header (source port) + datagram, one after another.
      const sizes = [500, 500, 500, 200, 500]; // 3 equal + a shorter last: one message; then one more
      const offs: number[] = [];
      let at = 0;
      sizes.forEach((l, i) => { offs.push(at); buf[at] = 0xc0; buf[at + 1] = 0x01; buf[at + 8] = i; at += 8 + l; });
      const n = sizes.length;
      const sent = io.sendVxlan!(Int32Array.from(s.pool ?? []), buf, Int32Array.from(offs), Int32Array.from(sizes.map((l) => l + 8)),
        new Int32Array(n).fill(ipValue('127.0.0.1')), new Int32Array(n), n, dport);
      expect(sent).toBe(n);
      await done;
      expect(got).toEqual(sizes.map((l, i) => l * 1000 + i));
    } finally {
      rx.close();
      io.close(s.rx);
      io.close(s.tx);
      for (const fd of s.pool ?? []) io.close(fd);
    }
  });
});

describe('receive coalescing over a UDP GRO buffer (datagrams back to back, FLAG_PACKED)', () => {
  const seg = (seq: number, payload: number, flags = 0x10): Uint8Array =>
    tcpFrame({ srcMac: B, dstMac: A, srcIp: '10.77.0.64', dstIp: '10.77.0.2', srcPort: 5201, dstPort: 40000, flags, seq, ack: 7, window: 500, payload: new Uint8Array(payload).map((_, i) => (seq + i) & 0xff) });
  // One 64 KiB slot: 8 bytes of headroom, then datagrams (VXLAN header + frame) of `stride` bytes.
  function packedSlot(frames: Uint8Array[], stride: number) {
    const buf = new Uint8Array(1 << 16);
    const n = frames.length;
    const vnet = new Int32Array(n); const len = new Int32Array(n); const port = new Int32Array(n); const gso = new Uint8Array(n); const packed = new Uint8Array(n);
    frames.forEach((f, i) => {
      const d = 8 + i * stride; // the datagram (its VXLAN header)
      buf.set(f, d + 8);
      vnet[i] = d + 8 - 10; len[i] = f.length; port[i] = 3; packed[i] = i > 0 ? 1 : 0;
    });
    return { buf, vnet, len, port, gso, packed, n, end: (): number => buf.length };
  }

  it('merges the datagrams of one GRO buffer in place into one super frame', () => {
    const frames = [seg(1000, 1398), seg(2398, 1398), seg(3796, 1398), seg(5194, 300, 0x18)];
    const b = packedSlot(frames, 8 + 54 + 1398);
    expect(coalesce(b.buf, b.vnet, b.len, b.port, b.gso, b.n, b.end, b.packed)).toBe(3);
    expect([...b.port]).toEqual([3, -1, -1, -1]);
    const e = b.vnet[0] + 10;
    expect(b.len[0]).toBe(54 + 3 * 1398 + 300);
    const payload = b.buf.subarray(e + 54, e + b.len[0]);
    for (let i = 0; i < payload.length; i++) if (payload[i] !== ((1000 + i) & 0xff)) throw new Error(`byte ${i}`);
    expect(b.gso[0]).toBe(1);
  });

  it('a packed datagram whose predecessor stays a frame of its own does not head a run (its header would overwrite it)', () => {
    // The first carries PSH: it heads nothing and stays; 1 and 2 would merge, but 1 cannot
    // head a run (0 is alive: 1's header would land on 0's last bytes), and so neither can 2.
    const frames = [seg(1000, 1398, 0x18), seg(2398, 1398), seg(3796, 1398)];
    const b = packedSlot(frames, 8 + 54 + 1398);
    const before = b.buf.slice();
    expect(coalesce(b.buf, b.vnet, b.len, b.port, b.gso, b.n, b.end, b.packed)).toBe(0);
    expect([...b.port]).toEqual([3, 3, 3]);
    expect(Buffer.from(b.buf).equals(Buffer.from(before))).toBe(true);
    // Without the packed flags the same bytes would be merged (1 heads 2).
    expect(coalesce(b.buf, b.vnet, b.len, b.port, b.gso, b.n, b.end)).toBe(1);
  });
});
