// 802.1Q: the VLAN ingress decision (dataplane/stages/ingress.ts) and the VLAN egress forms
// (dataplane/egress.ts), frames in / frames out, with virtio-net headers.
import { describe, it, expect } from 'vitest';
import { Pipeline } from '../../../dataplane/pipeline';
import { Packet, OUT_DROP, OUT_FLOOD } from '../../../dataplane/packet';
import { Fdb } from '../../../dataplane/tables/fdb';
import { NO_NET, PortTable } from '../../../dataplane/tables/ports';
import { DROP_REASONS } from '../../../dataplane/drops';
import type { StageContext } from '../../../dataplane/stages/stage';
import { Egress } from '../../../dataplane/egress';
import { MemoryWire, egressPort } from '../../fixtures/memory-io';
import { ETHERTYPE_QINQ, VNET_F_NEEDS_CSUM, VnetHdrView } from '../../../dataplane/wire';
import { icmpEcho, tagged, tcpSyn, withVnet } from '../../fixtures/frames';

const A = '02:42:0a:00:0a:02';
const B = '02:42:0a:00:0a:03';
const BCAST = 'ff:ff:ff:ff:ff:ff';
const PING = icmpEcho({ srcMac: A, dstMac: B, srcIp: '10.0.10.2', dstIp: '10.0.10.3', id: 1, seq: 1 });
const BPING = icmpEcho({ srcMac: A, dstMac: BCAST, srcIp: '10.0.10.2', dstIp: '10.0.10.255', id: 1, seq: 2 });
const SYN = tcpSyn({ srcMac: A, dstMac: B, srcIp: '10.0.10.2', dstIp: '10.0.10.3', srcPort: 4000, dstPort: 80 });
/** A partial-checksum header as a veth gives it: csum_start at the TCP header (14 + 20). */
const PARTIAL = { flags: VNET_F_NEEDS_CSUM, csumStart: 34, csumOffset: 16 };

// Networks: 0 bridge (untagged), 1 v10, 2 v20, 3 v30. Ports: 1 access bridge, 2 access v10,
// 3 access v10, 4 access v20, 5 trunk (10, 20), 6 trunk (10, 20, native 30), 7 access v30.
function setup(): { pipe: Pipeline; ctx: StageContext; fdb: Fdb; ports: PortTable } {
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: 300 });
  const ports = new PortTable(16);
  ports.add(1, 'br1', 0);
  ports.add(2, 'a10', 1, 10);
  ports.add(3, 'b10', 1, 10);
  ports.add(4, 'a20', 2, 20);
  ports.add(5, 'trunk', NO_NET, { untagged: NO_NET, pvid: 0, tagged: [{ vid: 10, net: 1 }, { vid: 20, net: 2 }] });
  ports.add(6, 'trunkn', NO_NET, { untagged: 3, pvid: 30, tagged: [{ vid: 10, net: 1 }, { vid: 20, net: 2 }] });
  ports.add(7, 'a30', 3, 30);
  return { pipe: new Pipeline(), ctx: { fdb, ports, now: 1000, dryRun: false, l3: null }, fdb, ports };
}

/** A frame with its vnet header at `at` of a fresh buffer (4+ bytes of headroom before it). */
function place(frame: Uint8Array, hdr: Parameters<typeof withVnet>[1] = {}, at = 64): { buf: Uint8Array; off: number; len: number } {
  const v = withVnet(frame, hdr);
  const buf = new Uint8Array(8192).fill(0xee);
  buf.set(v, at);
  return { buf, off: at, len: v.length };
}

function run(s: ReturnType<typeof setup>, frame: Uint8Array, inPort: number, hdr: Parameters<typeof withVnet>[1] = {}): Packet {
  const p = new Packet();
  const { buf, off, len } = place(frame, hdr);
  p.reset(buf, off, len, true, inPort, 0);
  s.pipe.run(p, s.ctx);
  return p;
}

/** The frame the packet holds now (vnet header included). */
function bytes(p: Packet): Uint8Array {
  return p.buf.slice(p.off, p.off + p.len);
}

function dropName(p: Packet): string | undefined {
  return p.out === OUT_DROP ? DROP_REASONS[p.drop] : undefined;
}

/**
 * Egress over `buf` for every port of the table (all with virtio-net headers), scratch at
 * [scratchOff, scratchOff + scratchBytes); `q` records frames when the queues are sent.
 */
function egressOver(buf: Uint8Array, ports: PortTable, scratchOff: number, scratchBytes: number): { eg: Egress; q: MemoryWire } {
  const q = new MemoryWire(buf);
  const eg = new Egress({ buf, ports, device: q, counters: null, scratch: { off: scratchOff, bytes: scratchBytes } });
  for (const p of ports.list()) eg.attach(egressPort(p.id));
  return { eg, q };
}

describe('VLAN ingress', () => {
  it('an access port of a VLAN network: untagged frames join its VLAN, unchanged', () => {
    const s = setup();
    const p = run(s, PING, 2);
    expect([p.netId, p.vlan, p.prio, p.inTci]).toEqual([1, 10, 0, -1]);
    expect(p.out).toBe(OUT_FLOOD);
    expect(bytes(p)).toEqual(withVnet(PING));
  });

  it('an access port drops tagged frames (any VID, its own included): tagged-on-access', () => {
    const s = setup();
    for (const vid of [10, 20, 4095]) expect(dropName(run(s, tagged(PING, vid), 2))).toBe('tagged-on-access');
    expect(s.fdb.counters().entries).toBe(0); // not learned
  });

  it('priority-tagged (VID 0) on an access port: its VLAN, tag removed, PCP/DEI kept for the way out', () => {
    const s = setup();
    const p = run(s, tagged(SYN, 0, 5, 1), 2, { ...PARTIAL, csumStart: 38 });
    expect([p.netId, p.vlan, p.prio, p.inTci]).toEqual([1, 10, 0xb000, 0xb000]);
    expect(bytes(p)).toEqual(withVnet(SYN, PARTIAL));
  });

  it('a port of an untagged network is VLAN-unaware: tags (0x8100 and 0x88a8) pass as data', () => {
    const s = setup();
    for (const f of [tagged(PING, 10), tagged(PING, 0, 3), tagged(PING, 20, 0, 0, ETHERTYPE_QINQ)]) {
      const p = run(s, f, 1);
      expect([p.netId, p.vlan, p.out]).toEqual([0, 0, OUT_FLOOD]);
      expect(bytes(p)).toEqual(withVnet(f));
    }
  });

  it('a trunk: a member VID joins that VLAN, the tag is removed (csum_start follows), PCP/DEI kept', () => {
    const s = setup();
    const f = tagged(SYN, 20, 3, 1);
    const p = run(s, f, 5, { ...PARTIAL, csumStart: 38 });
    expect([p.netId, p.vlan, p.prio, p.inTci]).toEqual([2, 20, 0x7000, 0x7014]);
    expect(bytes(p)).toEqual(withVnet(SYN, PARTIAL));
    const h = new VnetHdrView();
    h.reset(p.buf, p.off, 10);
    expect(h.csumStart).toBe(34);
    expect(p.etherType).toBe(0x0800);
    expect(p.l3Off).toBe(p.ethOff + 14);
  });

  it('a trunk drops other VIDs (vlan-not-member) and untagged or priority-tagged frames without a native VLAN', () => {
    const s = setup();
    expect(dropName(run(s, tagged(PING, 30), 5))).toBe('vlan-not-member');
    expect(dropName(run(s, tagged(PING, 4095), 5))).toBe('vlan-not-member');
    expect(dropName(run(s, PING, 5))).toBe('untagged-on-trunk');
    expect(dropName(run(s, tagged(PING, 0, 4), 5))).toBe('untagged-on-trunk');
  });

  it('a trunk with a native VLAN: untagged, priority-tagged and tagged-with-the-native-VID frames join it', () => {
    const s = setup();
    const u = run(s, PING, 6);
    expect([u.netId, u.vlan, u.prio]).toEqual([3, 30, 0]);
    const t = run(s, tagged(PING, 30, 6), 6);
    expect([t.netId, t.vlan, t.prio]).toEqual([3, 30, 0xc000]);
    expect(bytes(t)).toEqual(withVnet(PING));
    const z = run(s, tagged(PING, 0, 2), 6);
    expect([z.netId, z.vlan, z.prio]).toEqual([3, 30, 0x4000]);
    const ten = run(s, tagged(PING, 10), 6);
    expect([ten.netId, ten.vlan]).toEqual([1, 10]);
  });

  it('QinQ: an 802.1ad outer tag, or a tag over another tag, is dropped as qinq (trunk and VLAN access port)', () => {
    const s = setup();
    expect(dropName(run(s, tagged(tagged(PING, 10), 100, 0, 0, ETHERTYPE_QINQ), 5))).toBe('qinq');
    expect(dropName(run(s, tagged(PING, 10, 0, 0, ETHERTYPE_QINQ), 5))).toBe('qinq');
    expect(dropName(run(s, tagged(PING, 10, 0, 0, ETHERTYPE_QINQ), 2))).toBe('qinq');
    expect(dropName(run(s, tagged(tagged(PING, 20), 10), 5))).toBe('qinq');
    expect(dropName(run(s, tagged(tagged(PING, 20, 0, 0, ETHERTYPE_QINQ), 10), 5))).toBe('qinq');
  });

  it('a tagged frame too short to keep an Ethernet header without its tag: runt-after-untag', () => {
    const s = setup();
    const f = tagged(PING, 10);
    for (const len of [14, 16, 17]) expect(dropName(run(s, f.subarray(0, len), 5))).toBe('runt-after-untag');
    const ok = run(s, f.subarray(0, 18), 5);
    expect([ok.netId, ok.ethLen]).toEqual([1, 14]);
  });

  it('learning is per VLAN: the same MAC in VLANs 10 and 20 is two entries', () => {
    const s = setup();
    run(s, tagged(BPING, 10), 5);
    run(s, BPING, 4);
    expect(s.fdb.lookup(1, 10, 0x0242, 0x0a000a02)).toBe(5);
    expect(s.fdb.lookup(2, 20, 0x0242, 0x0a000a02)).toBe(4);
    expect(s.fdb.counters().entries).toBe(2);
    // B in VLAN 10 behind an access port: known unicast from the trunk goes there only.
    run(s, icmpEcho({ srcMac: B, dstMac: BCAST, srcIp: '10.0.10.3', dstIp: '10.0.10.255', id: 2, seq: 1 }), 3);
    const p = run(s, tagged(PING, 10), 5);
    expect(p.out).toBe(3);
    // ... and B is unknown in VLAN 20: flooded there.
    expect(run(s, tagged(PING, 20), 5).out).toBe(OUT_FLOOD);
  });
});

describe('VLAN egress', () => {
  /** A buffer with the frame at 64 and a scratch area at [4096, 8192). */
  function setupEgress(ports: PortTable, frame: Uint8Array, hdr: Parameters<typeof withVnet>[1] = {}) {
    const { buf, off, len } = place(frame, hdr);
    return { buf, off, len, ...egressOver(buf, ports, 4096, 4096) };
  }

  it('to an access port: as it is; to a trunk: tagged with the VLAN, PCP/DEI and csum_start +4', () => {
    const s = setup();
    const a = setupEgress(s.ports, SYN, PARTIAL);
    expect(a.eg.unicast(3, 1, 0xb000, a.off, a.len, true)).toBe(true);
    a.eg.flush();
    expect(a.q.to(3)).toEqual([withVnet(SYN, PARTIAL)]);
    const t = setupEgress(s.ports, SYN, PARTIAL);
    expect(t.eg.unicast(5, 1, 0xb000, t.off, t.len, true)).toBe(true);
    t.eg.flush();
    expect(t.q.to(5)).toEqual([withVnet(tagged(SYN, 10, 5, 1), { ...PARTIAL, csumStart: 38 })]);
    expect(t.eg.copies).toBe(0);
  });

  it('a port that does not carry the VLAN gets nothing (false)', () => {
    const s = setup();
    const a = setupEgress(s.ports, PING);
    expect(a.eg.unicast(4, 1, 0, a.off, a.len, true)).toBe(false);
    expect(a.eg.unicast(7, 2, 0, a.off, a.len, true)).toBe(false);
    a.eg.flush();
    expect(a.q.sent).toEqual([]);
  });

  it("a trunk's native VLAN leaves untagged", () => {
    const s = setup();
    const a = setupEgress(s.ports, PING);
    expect(a.eg.unicast(6, 3, 0x2000, a.off, a.len, true)).toBe(true);
    a.eg.flush();
    expect(a.q.to(6)).toEqual([withVnet(PING)]);
  });

  it('a flood in VLAN 10 from an access port: untagged to access ports (in place), one tagged copy for both trunks', () => {
    const s = setup();
    const f = setupEgress(s.ports, BPING);
    expect(f.eg.flood(1, 2, 0x6000, f.off, f.len, true)).toBe(3);
    f.eg.flush();
    expect(f.q.to(3)).toEqual([withVnet(BPING)]);
    expect(f.q.to(5)).toEqual([withVnet(tagged(BPING, 10, 3))]);
    expect(f.q.to(6)).toEqual([withVnet(tagged(BPING, 10, 3))]);
    expect(f.q.to(2)).toEqual([]);  // not back to the ingress port
    expect(f.q.to(4)).toEqual([]);  // never into VLAN 20
    expect(f.q.to(7)).toEqual([]);
    expect(f.eg.copies).toBe(1);
  });

  it('a flood whose receivers all take the same tag is tagged in place (no copy)', () => {
    const s = setup();
    // VLAN 20 from the access port a20: the receivers are the two trunks.
    const f = setupEgress(s.ports, BPING);
    expect(f.eg.flood(2, 4, 0, f.off, f.len, true)).toBe(2);
    f.eg.flush();
    expect(f.q.to(5)).toEqual([withVnet(tagged(BPING, 20))]);
    expect(f.q.to(6)).toEqual([withVnet(tagged(BPING, 20))]);
    expect(f.eg.copies).toBe(0);
  });

  it('a flood from a trunk whose other receivers are untagged needs no copy', () => {
    const s = setup();
    s.ports.setVlans(6, { untagged: 3, pvid: 30, tagged: [{ vid: 20, net: 2 }] }); // trunkn leaves VLAN 10
    const f = setupEgress(s.ports, BPING);
    expect(f.eg.flood(1, 5, 0, f.off, f.len, true)).toBe(2);
    f.eg.flush();
    expect(f.q.to(2)).toEqual([withVnet(BPING)]);
    expect(f.q.to(3)).toEqual([withVnet(BPING)]);
    expect(f.eg.copies).toBe(0);
  });

  it('when the scratch area is full the queues are sent first, so no queued frame is overwritten', () => {
    const s = setup();
    const frames = Array.from({ length: 7 }, (_, i) => icmpEcho({
      srcMac: A, dstMac: BCAST, srcIp: '10.0.10.2', dstIp: '10.0.10.255', id: 9, seq: i, payload: new Uint8Array(900).fill(i),
    }));
    // Seven frames at 64 + i*1024... need room: a bigger buffer, scratch of 2 KiB (two copies).
    const buf = new Uint8Array(16384).fill(0xee);
    const offs = frames.map((f, i) => { const v = withVnet(f); buf.set(v, 64 + i * 1100); return 64 + i * 1100; });
    const { eg, q } = egressOver(buf, s.ports, 12288, 2048);
    frames.forEach((f, i) => eg.flood(1, 2, 0, offs[i], f.length + 10, true));
    eg.flush();
    expect(q.to(3)).toEqual(frames.map((f) => withVnet(f)));
    expect(q.to(5)).toEqual(frames.map((f) => withVnet(tagged(f, 10))));
    expect(q.to(6)).toEqual(frames.map((f) => withVnet(tagged(f, 10))));
    expect(eg.copies).toBe(7);
    expect(eg.flushes).toBeGreaterThanOrEqual(3);
  });

  it('round trip for every VID: tagged in on one trunk, out of another byte for byte (PCP/DEI kept), untagged to access ports', () => {
    const ports = new PortTable(8);
    const all = Array.from({ length: 4094 }, (_, i) => ({ vid: i + 1, net: i + 1 }));
    ports.add(1, 't1', NO_NET, { untagged: NO_NET, pvid: 0, tagged: all });
    ports.add(2, 't2', NO_NET, { untagged: NO_NET, pvid: 0, tagged: all });
    ports.add(3, 'acc', 77, 77);
    const fdb = new Fdb({ maxEntries: 16, maxPerPort: 16, maxPorts: 8, agingSeconds: 300 });
    const s = { pipe: new Pipeline(), ctx: { fdb, ports, now: 1, dryRun: true, l3: null } as StageContext, fdb, ports };
    let bad = 0;
    for (let vid = 1; vid <= 4094; vid++) {
      const pcp = vid & 7;
      const dei = (vid >> 3) & 1;
      const f = tagged(SYN, vid, pcp, dei);
      const p = run(s, f, 1, { ...PARTIAL, csumStart: 38 });
      const { eg, q } = egressOver(p.buf, ports, 4096, 4096);
      const n = eg.flood(p.netId, p.inPort, p.prio, p.off, p.len, true);
      eg.flush();
      const out = q.to(2)[0];
      const want = withVnet(f, { ...PARTIAL, csumStart: 38 });
      if (n !== (vid === 77 ? 2 : 1) || p.vlan !== vid || out.length !== want.length || out.some((b, i) => b !== want[i])) bad++;
    }
    expect(bad).toBe(0);
    // And VLAN 77 (the access port's): tagged 77 in, untagged out.
    const p = run(s, tagged(SYN, 77, 7, 1), 1, { ...PARTIAL, csumStart: 38 });
    const { eg, q } = egressOver(p.buf, ports, 4096, 4096);
    eg.unicast(3, p.netId, p.prio, p.off, p.len, true);
    eg.flush();
    expect(q.to(3)).toEqual([withVnet(SYN, PARTIAL)]);
  });
});
