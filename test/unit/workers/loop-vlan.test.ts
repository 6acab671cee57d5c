// The worker loop with 802.1Q trunks, over an in-memory Io: frames in on one port, the
// frames (tagged or not) out of the others, counters by reason.
import { describe, it, expect } from 'vitest';
import { WorkerLoop } from '../../../workers/loop';
import { MemoryIo } from '../../fixtures/memory-io';
import { Fdb } from '../../../dataplane/tables/fdb';
import { NO_NET } from '../../../dataplane/tables/ports';
import { statsBytes } from '../../../workers/shared';
import { drops, portCounters } from '../../fixtures/counters';
import type { DropReason } from '../../../dataplane/drops';
import type { ToWorker } from '../../../workers/protocol';
import { icmpEcho, tagged, withVnet } from '../../fixtures/frames';

const MAXP = 16;
const A = '02:42:0a:00:0a:02';
const B = '02:42:0a:00:0a:03';
const X = '02:42:0a:00:14:02';
const BCAST = 'ff:ff:ff:ff:ff:ff';

function ping(src: string, dst: string, seq = 1, size = 0): Uint8Array {
  return icmpEcho({ srcMac: src, dstMac: dst, srcIp: '10.0.10.2', dstIp: '10.0.10.3', id: 5, seq, payload: new Uint8Array(size).fill(seq & 0xff) });
}

// Networks: 1 = VLAN 10, 2 = VLAN 20, 0 = bridge (untagged). Ports (fd = 10 + id):
// 1, 2 access VLAN 10; 3 access VLAN 20; 4 trunk (10, 20; AF_PACKET: tags out of band);
// 5 access bridge; 6 trunk (10 only, native 20; a TAP: tags inline).
function setup() {
  const io = new MemoryIo();
  const fdb = new Fdb({ maxEntries: 256, maxPerPort: 64, maxPorts: MAXP, agingSeconds: 300 });
  const stats = new Float64Array(new SharedArrayBuffer(statsBytes(MAXP)));
  const inbox: ToWorker[] = [];
  const acks: { seq: number; error?: string }[] = [];
  const loop = new WorkerLoop({
    io, fdb, stats, ctrl: new Int32Array(4), eventfd: 99, maxPorts: MAXP, worker: 0,
    receive: () => inbox.shift(), reply: (m) => acks.push(m), clock: () => 1000,
  });
  const add = (id: number, netId: number, extra: Partial<Extract<ToWorker, { type: 'addPort' }>> = {}): void => {
    inbox.push({ type: 'addPort', seq: id, id, name: `p${id}`, fd: 10 + id, kind: 0, vnet: true, netId, rx: true, ...extra });
  };
  add(1, 1, { vlan: 10 });
  add(2, 1, { vlan: 10 });
  add(3, 2, { vlan: 20 });
  add(4, NO_NET, { vlans: { untagged: NO_NET, pvid: 0, tagged: [{ vid: 10, net: 1 }, { vid: 20, net: 2 }] } });
  add(5, 0);
  add(6, 2, { kind: 1, vlans: { untagged: 2, pvid: 20, tagged: [{ vid: 10, net: 1 }] } });
  io.auxVlan.add(14);
  loop.control();
  const pump = (port: number): number => loop.serve(loop.port(port)!);
  const sent = (port: number): Uint8Array[] => io.sent.get(10 + port) ?? [];
  return { io, fdb, stats, loop, acks, inbox, pump, sent, drops: (port: number, reason: DropReason): number => drops(stats, port, reason) };
}

describe('WorkerLoop with VLANs', () => {
  it('acks the port messages (access, trunk, native)', () => {
    const s = setup();
    expect(s.acks.map((a) => [a.seq, a.error])).toEqual([1, 2, 3, 4, 5, 6].map((i) => [i, undefined]));
  });

  it('a broadcast in VLAN 10 from an access port: untagged to the other access port, tagged 10 to both trunks, nowhere else', () => {
    const s = setup();
    const f = ping(A, BCAST);
    s.io.inject(11, withVnet(f));
    s.pump(1);
    expect(s.sent(2)).toEqual([withVnet(f)]);
    expect(s.sent(4)).toEqual([withVnet(tagged(f, 10))]);
    expect(s.sent(6)).toEqual([withVnet(tagged(f, 10))]);
    expect(s.sent(3)).toEqual([]);
    expect(s.sent(5)).toEqual([]);
    expect(portCounters(s.stats, 4)).toMatchObject({ txPackets: 1, txBytes: f.length + 4 });
    expect(portCounters(s.stats, 2)).toMatchObject({ txPackets: 1, txBytes: f.length });
  });

  it('a tagged broadcast in VLAN 20 on the trunk (tag from auxdata): untagged to VLAN 20 access ports and the native trunk only', () => {
    const s = setup();
    const f = ping(X, BCAST);
    s.io.inject(14, withVnet(tagged(f, 20, 5)));
    s.pump(4);
    expect(s.sent(3)).toEqual([withVnet(f)]);
    expect(s.sent(6)).toEqual([withVnet(f)]);           // VLAN 20 is trunk 6's native: untagged
    for (const p of [1, 2, 5]) expect(s.sent(p)).toEqual([]);
    expect(s.fdb.lookup(2, 20, 0x0242, 0x0a001402)).toBe(4);
  });

  it('unicast across the trunk: tag added one way, removed the other, PCP kept', () => {
    const s = setup();
    s.io.inject(11, withVnet(ping(A, BCAST)));          // A learned on port 1 (VLAN 10)
    s.pump(1);
    s.io.inject(14, withVnet(tagged(ping(B, BCAST), 10))); // B learned on the trunk (VLAN 10)
    s.pump(4);
    s.io.sent.clear();
    const toB = ping(A, B, 2);
    s.io.inject(11, withVnet(toB));
    s.pump(1);
    expect(s.sent(4)).toEqual([withVnet(tagged(toB, 10))]);
    const toA = ping(B, A, 3);
    s.io.inject(14, withVnet(tagged(toA, 10, 6, 1)));
    s.pump(4);
    expect(s.sent(1)).toEqual([withVnet(toA)]);
    for (const p of [2, 3, 5, 6]) expect(s.sent(p)).toEqual([]);
  });

  it('drops by named reason on the ingress port: wrong VID, tagged on access, untagged on trunk, QinQ, runt after untag', () => {
    const s = setup();
    s.io.inject(14, withVnet(tagged(ping(X, BCAST), 30)));
    s.io.inject(14, withVnet(ping(X, BCAST)));
    s.io.inject(14, withVnet(tagged(ping(X, BCAST), 0, 3)));
    s.io.inject(14, withVnet(tagged(tagged(ping(X, BCAST), 20), 10, 0, 0, 0x88a8)));
    s.io.inject(14, withVnet(tagged(tagged(ping(X, BCAST), 20), 10)));
    s.io.inject(14, withVnet(tagged(ping(X, BCAST), 10).subarray(0, 16)));
    s.pump(4);
    expect(s.drops(4, 'vlan-not-member')).toBe(1);
    expect(s.drops(4, 'untagged-on-trunk')).toBe(2);
    expect(s.drops(4, 'qinq')).toBe(2);
    expect(s.drops(4, 'runt-after-untag')).toBe(1);
    s.io.inject(11, withVnet(tagged(ping(A, BCAST), 10)));
    s.pump(1);
    expect(s.drops(1, 'tagged-on-access')).toBe(1);
    expect(portCounters(s.stats, 4).rxPackets).toBe(6);
    for (const p of [1, 2, 3, 5, 6]) expect(s.sent(p)).toEqual([]);
  });

  it('a port of the untagged network passes tagged frames as they are', () => {
    const s = setup();
    s.inbox.push({ type: 'addPort', seq: 7, id: 7, name: 'p7', fd: 17, kind: 0, vnet: true, netId: 0, rx: true });
    s.loop.control();
    const f = withVnet(tagged(ping(A, BCAST), 10));
    s.io.inject(15, f);
    s.pump(5);
    expect(s.sent(7)).toEqual([f]);
    for (const p of [1, 2, 3, 4, 6]) expect(s.sent(p)).toEqual([]);
  });

  it('a full batch of floods needing two forms: every frame right (scratch reused after a flush)', () => {
    const s = setup();
    const frames = Array.from({ length: 64 }, (_, i) => ping(A, BCAST, i, 1400));
    for (const f of frames) s.io.inject(11, withVnet(f));
    expect(s.pump(1)).toBe(64);
    expect(s.sent(2)).toEqual(frames.map((f) => withVnet(f)));
    expect(s.sent(4)).toEqual(frames.map((f) => withVnet(tagged(f, 10))));
    expect(s.sent(6)).toEqual(frames.map((f) => withVnet(tagged(f, 10))));
    expect(portCounters(s.stats, 4).txPackets).toBe(64);
    // 64 KB frames (GSO segments): the scratch holds few, the queues go out in between.
    s.io.sent.clear();
    const big = Array.from({ length: 8 }, (_, i) => ping(A, BCAST, 100 + i, 60000));
    for (const f of big) s.io.inject(11, withVnet(f));
    s.pump(1);
    expect(s.sent(2).length).toBe(8);
    expect(s.sent(4).every((f, i) => Buffer.from(f).equals(Buffer.from(withVnet(tagged(big[i], 10)))))).toBe(true);
    expect(s.sent(2).every((f, i) => Buffer.from(f).equals(Buffer.from(withVnet(big[i]))))).toBe(true);
  });

  it('a vlans message changes what a trunk carries', () => {
    const s = setup();
    s.inbox.push({ type: 'vlans', seq: 8, id: 4, vlans: { untagged: NO_NET, pvid: 0, tagged: [{ vid: 10, net: 1 }] } });
    s.loop.control();
    s.io.inject(14, withVnet(tagged(ping(X, BCAST), 20)));
    s.pump(4);
    expect(s.drops(4, 'vlan-not-member')).toBe(1);
    s.io.inject(13, withVnet(ping(X, BCAST)));
    s.pump(3);
    expect(s.sent(4)).toEqual([]);
    expect(s.sent(6).length).toBe(1);
  });
});
