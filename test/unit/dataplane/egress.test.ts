// dataplane/egress.ts: frames in (verdicts, made frames, the main thread's frames), frames
// and counters out, for ports with and without virtio-net headers, access and trunk.
import { describe, it, expect } from 'vitest';
import { Egress, FORM_ETHERNET, FORM_VNET } from '../../../dataplane/egress';
import { Packet, OUT_FLOOD, OUT_LOCAL } from '../../../dataplane/packet';
import { Pipeline } from '../../../dataplane/pipeline';
import { Fdb } from '../../../dataplane/tables/fdb';
import { NO_NET, PortTable } from '../../../dataplane/tables/ports';
import { DROP } from '../../../dataplane/drops';
import type { StageContext } from '../../../dataplane/stages/stage';
import { VNET_F_NEEDS_CSUM } from '../../../dataplane/wire';
import { portRows, statsBytes } from '../../../workers/shared';
import { MemoryWire, egressPort } from '../../fixtures/memory-io';
import { dropsOf, portCounters } from '../../fixtures/counters';
import { icmpEcho, tagged, tcpSyn, withVnet } from '../../fixtures/frames';

const A = '02:42:0a:00:0a:02';
const B = '02:42:0a:00:0a:03';
const BCAST = 'ff:ff:ff:ff:ff:ff';
const SYN = tcpSyn({ srcMac: A, dstMac: B, srcIp: '10.0.10.2', dstIp: '10.0.10.3', srcPort: 4000, dstPort: 80 });
const BPING = icmpEcho({ srcMac: A, dstMac: BCAST, srcIp: '10.0.10.2', dstIp: '10.0.10.255', id: 1, seq: 2 });
/** A partial-checksum header as a veth gives it: csum_start at the TCP header (14 + 20). */
const PARTIAL = { flags: VNET_F_NEEDS_CSUM, csumStart: 34, csumOffset: 16 };
const MAXP = 16;
const FRAME_AT = 64;
const MADE_OFF = 8192;
const SCRATCH_OFF = 16384;

// Networks: 1 = VLAN 10, 2 = VLAN 20, 0 = bridge (untagged), 9 = a network of one port.
// Ports: 1 access v10 (vnet), 2 access v10 (no vnet), 3 trunk 10+20 (vnet), 4 trunk 10 (no
// vnet), 5 access v20 (vnet), 6 bridge (vnet), 7 bridge (no vnet), 8 alone in network 9.
function setup() {
  const ports = new PortTable(MAXP);
  const form = new Map<number, number>();
  const add = (id: number, f: number, net: number, vlans: Parameters<PortTable['add']>[3]): void => {
    ports.add(id, `p${id}`, net, vlans);
    form.set(id, f);
  };
  add(1, FORM_VNET, 1, 10);
  add(2, FORM_ETHERNET, 1, 10);
  add(3, FORM_VNET, NO_NET, { untagged: NO_NET, pvid: 0, tagged: [{ vid: 10, net: 1 }, { vid: 20, net: 2 }] });
  add(4, FORM_ETHERNET, NO_NET, { untagged: NO_NET, pvid: 0, tagged: [{ vid: 10, net: 1 }] });
  add(5, FORM_VNET, 2, 20);
  add(6, FORM_VNET, 0, 0);
  add(7, FORM_ETHERNET, 0, 0);
  add(8, FORM_VNET, 9, 0);
  const buf = new Uint8Array(32768).fill(0xee);
  const wire = new MemoryWire(buf);
  const stats = new Float64Array(statsBytes(MAXP) / 8);
  const eg = new Egress({
    buf, ports, device: wire, counters: portRows(stats),
    made: { off: MADE_OFF, slots: 2, slotBytes: 2048 }, scratch: { off: SCRATCH_OFF, bytes: 8192 },
  });
  for (const [id, f] of form) eg.attach(egressPort(id, f));
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: MAXP, agingSeconds: 300 });
  const ctx: StageContext = { fdb, ports, now: 1000, dryRun: false, l3: null };
  /** A packet holding `frame` (behind `hdr` when vnet) in the buffer, its verdict given. */
  const packet = (frame: Uint8Array, o: { inPort: number; net: number; out: number; prio?: number; vnet?: boolean; hdr?: typeof PARTIAL; at?: number }): Packet => {
    const vnet = o.vnet ?? true;
    const bytes = vnet ? withVnet(frame, o.hdr ?? {}) : frame;
    const at = o.at ?? FRAME_AT;
    buf.set(bytes, at);
    const p = new Packet();
    p.reset(buf, at, bytes.length, vnet, o.inPort, 0);
    p.netId = o.net;
    p.prio = o.prio ?? 0;
    p.out = o.out;
    return p;
  };
  /** Run the real pipeline over a frame received on a vnet port, then deliver it. */
  const receive = (frame: Uint8Array, inPort: number, hdr: Partial<typeof PARTIAL> = {}): Packet => {
    const bytes = withVnet(frame, hdr);
    buf.set(bytes, FRAME_AT);
    const p = new Packet();
    p.reset(buf, FRAME_AT, bytes.length, true, inPort, 0);
    new Pipeline().run(p, ctx);
    eg.deliver(p);
    return p;
  };
  return { ports, buf, wire, stats, eg, fdb, packet, receive };
}

describe('egress: unicast', () => {
  it('to an access port as it is (the ingress header kept); to a trunk tagged with PCP/DEI, csum_start +4', () => {
    const s = setup();
    s.eg.deliver(s.packet(SYN, { inPort: 6, net: 1, out: 1, prio: 0xb000, hdr: PARTIAL }));
    s.eg.deliver(s.packet(SYN, { inPort: 6, net: 1, out: 3, prio: 0xb000, hdr: PARTIAL, at: FRAME_AT + 512 }));
    expect(s.eg.flush()).toBe(2);
    expect(s.wire.to(1)).toEqual([withVnet(SYN, PARTIAL)]);
    expect(s.wire.to(3)).toEqual([withVnet(tagged(SYN, 10, 5, 1), { ...PARTIAL, csumStart: 38 })]);
    expect(s.eg.copies).toBe(0);
  });

  it('a port without virtio-net headers gets the frame stripped of it, tagged or not', () => {
    const s = setup();
    s.eg.deliver(s.packet(SYN, { inPort: 1, net: 1, out: 2, hdr: PARTIAL }));
    s.eg.flush();
    s.eg.deliver(s.packet(SYN, { inPort: 1, net: 1, out: 4, prio: 0x2000, hdr: PARTIAL }));
    s.eg.flush();
    expect(s.wire.to(2)).toEqual([SYN]);
    expect(s.wire.to(4)).toEqual([tagged(SYN, 10, 1)]);
    expect(portCounters(s.stats, 2)).toMatchObject({ txPackets: 1, txBytes: SYN.length });
    expect(portCounters(s.stats, 4)).toMatchObject({ txPackets: 1, txBytes: SYN.length + 4 });
  });

  it('from a trunk (ingress popped the tag) to access ports, with and without a header: untagged', () => {
    const s = setup();
    s.fdb.learn(1, 10, 0x0242, 0x0a000a03, 1, 1000);           // B behind port 1
    const p = s.receive(tagged(SYN, 10, 6), 3, { ...PARTIAL, csumStart: 38 });
    expect(p.out).toBe(1);
    s.eg.flush();
    expect(s.wire.to(1)).toEqual([withVnet(SYN, PARTIAL)]);
    s.fdb.learn(1, 10, 0x0242, 0x0a000a03, 2, 1001);           // B moved to port 2 (no vnet)
    s.receive(tagged(SYN, 10, 6), 3, { ...PARTIAL, csumStart: 38 });
    s.eg.flush();
    expect(s.wire.to(2)).toEqual([SYN]);
  });

  it('a frame that arrived without a header gets an all-zero one for a vnet port (a copy); none for the others', () => {
    const s = setup();
    s.eg.deliver(s.packet(SYN, { inPort: 7, net: 1, out: 1, vnet: false }));
    s.eg.deliver(s.packet(SYN, { inPort: 7, net: 1, out: 2, vnet: false, at: FRAME_AT + 512 }));
    s.eg.deliver(s.packet(SYN, { inPort: 7, net: 1, out: 3, vnet: false, prio: 0xe000, at: FRAME_AT + 1024 }));
    s.eg.flush();
    expect(s.wire.to(1)).toEqual([withVnet(SYN)]);
    expect(s.wire.to(2)).toEqual([SYN]);
    expect(s.wire.to(3)).toEqual([withVnet(tagged(SYN, 10, 7))]);
    expect(s.eg.copies).toBe(2);
    expect(portCounters(s.stats, 1).txBytes).toBe(SYN.length);
  });
});

describe('egress: flood', () => {
  it('to mixed access and trunk ports, each in its form, never back to the ingress port: one tagged copy for both trunks', () => {
    const s = setup();
    s.eg.deliver(s.packet(BPING, { inPort: 1, net: 1, out: OUT_FLOOD, prio: 0x6000 }));
    expect(s.eg.flush()).toBe(3);
    expect(s.wire.to(2)).toEqual([BPING]);
    expect(s.wire.to(3)).toEqual([withVnet(tagged(BPING, 10, 3))]);
    expect(s.wire.to(4)).toEqual([tagged(BPING, 10, 3)]);
    for (const p of [1, 5, 6, 7, 8]) expect(s.wire.to(p)).toEqual([]);
    expect(s.eg.copies).toBe(1);
    expect(dropsOf(s.stats, 1)).toEqual({});
  });

  it('from a trunk through the pipeline: untagged to the access ports (header kept or stripped), tagged to the other trunk', () => {
    const s = setup();
    const p = s.receive(tagged(BPING, 10, 2), 3);
    expect(p.out).toBe(OUT_FLOOD);
    s.eg.flush();
    expect(s.wire.to(1)).toEqual([withVnet(BPING)]);
    expect(s.wire.to(2)).toEqual([BPING]);
    expect(s.wire.to(4)).toEqual([tagged(BPING, 10, 2)]);
    expect(s.wire.to(3)).toEqual([]);
  });

  it('receivers that all take one tag get it in place (no copy); an untagged network floods as it is', () => {
    const s = setup();
    s.eg.deliver(s.packet(BPING, { inPort: 5, net: 2, out: OUT_FLOOD }));
    s.eg.flush();
    expect(s.wire.to(3)).toEqual([withVnet(tagged(BPING, 20))]);
    s.eg.deliver(s.packet(BPING, { inPort: 6, net: 0, out: OUT_FLOOD }));
    s.eg.flush();
    expect(s.wire.to(7)).toEqual([BPING]);
    expect(s.wire.to(6)).toEqual([]);
    expect(s.eg.copies).toBe(0);
  });
});

describe('egress: drops and tx counters', () => {
  it('names every drop on the ingress port: port-down (gone, or not carrying the network), no-egress, the pipeline\'s reason; local: nothing', () => {
    const s = setup();
    s.eg.detach(2);
    s.eg.deliver(s.packet(SYN, { inPort: 1, net: 1, out: 2 }));        // port gone
    s.eg.deliver(s.packet(SYN, { inPort: 1, net: 1, out: 5 }));        // VLAN 20 only
    s.eg.deliver(s.packet(BPING, { inPort: 8, net: 9, out: OUT_FLOOD })); // nobody else
    const r = s.packet(SYN, { inPort: 6, net: 0, out: 0 });
    r.dropWith(DROP.reflected);
    s.eg.deliver(r);
    s.eg.deliver(s.packet(SYN, { inPort: 6, net: 0, out: OUT_LOCAL }));
    expect(s.eg.flush()).toBe(0);
    expect(s.wire.sent).toEqual([]);
    expect(dropsOf(s.stats, 1)).toEqual({ 'port-down': 2 });
    expect(dropsOf(s.stats, 8)).toEqual({ 'no-egress': 1 });
    expect(dropsOf(s.stats, 6)).toEqual({ reflected: 1 });
  });

  it('counts tx per egress port without its header; what the device refuses as tx-refused, a throw as tx-error', () => {
    const s = setup();
    s.wire.limit.set(3, 0);
    s.wire.limit.set(4, -1);
    s.eg.deliver(s.packet(BPING, { inPort: 1, net: 1, out: OUT_FLOOD }));
    expect(s.eg.flush()).toBe(1);
    expect(portCounters(s.stats, 2)).toEqual({ rxPackets: 0, rxBytes: 0, txPackets: 1, txBytes: BPING.length });
    expect(dropsOf(s.stats, 3)).toEqual({ 'tx-refused': 1 });
    expect(dropsOf(s.stats, 4)).toEqual({ 'tx-error': 1 });
    s.wire.limit.clear();
    s.eg.deliver(s.packet(SYN, { inPort: 6, net: 1, out: 1 }));
    s.eg.flush();
    expect(portCounters(s.stats, 1)).toMatchObject({ txPackets: 1, txBytes: SYN.length });
  });

  it('a full queue is sent before it overflows, in order', () => {
    const s = setup();
    s.eg.attach(egressPort(1, FORM_VNET, 2));
    const frames = [0, 1, 2].map((i) => icmpEcho({ srcMac: A, dstMac: B, srcIp: '10.0.10.2', dstIp: '10.0.10.3', id: 3, seq: i }));
    // each frame in its own place, as the frames of one batch are
    frames.forEach((f, i) => s.eg.deliver(s.packet(f, { inPort: 6, net: 1, out: 1, at: FRAME_AT + 512 * i })));
    expect(s.wire.transmits).toBe(1);
    s.eg.flush();
    expect(s.wire.transmits).toBe(2);
    expect(s.wire.to(1)).toEqual(frames.map((f) => withVnet(f)));
  });
});

describe('egress: frames the router makes', () => {
  it('alloc gives room for the header and a tag before each frame; none when the batch\'s slots are used; reset frees them', () => {
    const s = setup();
    expect([s.eg.alloc(), s.eg.alloc(), s.eg.alloc()]).toEqual([MADE_OFF + 14, MADE_OFF + 2048 + 14, -1]);
    s.eg.reset();
    expect(s.eg.alloc()).toBe(MADE_OFF + 14);
  });

  it('to one port: an all-zero header (whatever was in the buffer), tagged for a trunk, stripped for a port without headers', () => {
    const s = setup();
    for (const port of [1, 2, 3]) {
      s.eg.reset();
      const off = s.eg.alloc();
      s.buf.fill(0xab, off - 14, off);
      s.buf.set(SYN, off);
      s.eg.emit(off, SYN.length, port, 1);
      s.eg.flush();
    }
    expect(s.wire.to(1)).toEqual([withVnet(SYN)]);
    expect(s.wire.to(2)).toEqual([SYN]);
    expect(s.wire.to(3)).toEqual([withVnet(tagged(SYN, 10))]);
    expect(dropsOf(s.stats, 1)).toEqual({});
  });

  it('to a network (flood, port < 0): every port of it, each in its form', () => {
    const s = setup();
    const off = s.eg.alloc();
    s.buf.set(BPING, off);
    s.eg.emit(off, BPING.length, -1, 1);
    expect(s.eg.flush()).toBe(4);
    expect(s.wire.to(1)).toEqual([withVnet(BPING)]);
    expect(s.wire.to(2)).toEqual([BPING]);
    expect(s.wire.to(3)).toEqual([withVnet(tagged(BPING, 10))]);
    expect(s.wire.to(4)).toEqual([tagged(BPING, 10)]);
    expect(s.wire.to(5)).toEqual([]);
  });

  it('a port that is gone or does not carry the network gets nothing, and nothing is counted', () => {
    const s = setup();
    s.eg.detach(1);
    const off = s.eg.alloc();
    s.buf.set(SYN, off);
    s.eg.emit(off, SYN.length, 1, 1);
    s.eg.emit(off, SYN.length, 5, 1);
    expect(s.eg.flush()).toBe(0);
    for (const p of [1, 5]) expect(dropsOf(s.stats, p)).toEqual({});
  });
});

describe('egress: frames the main thread sends (sendNow)', () => {
  it('one frame at once: a zero header and the tag of the network for a trunk, bare for a port without headers', () => {
    const s = setup();
    expect(s.eg.sendNow(BPING, 3, 2)).toBe(true);
    expect(s.eg.sendNow(SYN, 2, 1)).toBe(true);
    expect(s.eg.sendNow(SYN, 1, 1)).toBe(true);
    expect(s.wire.to(3)).toEqual([withVnet(tagged(BPING, 20))]);
    expect(s.wire.to(2)).toEqual([SYN]);
    expect(s.wire.to(1)).toEqual([withVnet(SYN)]);
  });

  it('false, sending nothing: a port gone, not carrying the network, no port, a runt or an oversized frame, a refusing device', () => {
    const s = setup();
    s.eg.detach(6);
    expect(s.eg.sendNow(SYN, 6, 0)).toBe(false);
    expect(s.eg.sendNow(SYN, 5, 1)).toBe(false);
    expect(s.eg.sendNow(SYN, -1, 1)).toBe(false);
    expect(s.eg.sendNow(SYN.subarray(0, 13), 1, 1)).toBe(false);
    expect(s.eg.sendNow(new Uint8Array(2048), 1, 1)).toBe(false);
    expect(s.wire.sent).toEqual([]);
    s.wire.limit.set(1, 0);
    expect(s.eg.sendNow(SYN, 1, 1)).toBe(false);
    s.wire.limit.set(1, -1);
    expect(s.eg.sendNow(SYN, 1, 1)).toBe(false);
  });
});
