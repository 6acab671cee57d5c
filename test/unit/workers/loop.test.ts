import { describe, it, expect } from 'vitest';
import { WorkerLoop } from '../../../workers/loop';
import { CaptureRing, captureRingBytes, DIR_RX, DIR_TX } from '../../../workers/capture-ring';
import { MemoryIo } from '../../fixtures/memory-io';
import { Fdb } from '../../../dataplane/tables/fdb';
import { DROP } from '../../../dataplane/drops';
import { stageCountersOffset, ST_DROP0, ST_ROW, ST_RX_BYTES, ST_RX_PKTS, ST_TX_BYTES, ST_TX_PKTS, statsBytes } from '../../../workers/shared';
import { buildEthernet } from '../../../dataplane/wire/ethernet';
import { parseMac } from '../../../dataplane/wire/mac';
import type { ToWorker } from '../../../workers/protocol';

const MAXP = 16;
const A = '02:42:0a:00:00:02';
const B = '02:42:0a:00:00:03';
const BCAST = 'ff:ff:ff:ff:ff:ff';

/** A frame as a vnet port delivers it: 10-byte virtio-net header, then Ethernet. */
function vframe(dst: string, src: string, payload = 50): Uint8Array {
  const eth = buildEthernet({ dst: parseMac(dst), src: parseMac(src), etherType: 0x0800, payload: new Uint8Array(payload).fill(7) });
  const f = new Uint8Array(10 + eth.length);
  f.set(eth, 10);
  return f;
}

function setup() {
  const io = new MemoryIo();
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: MAXP, agingSeconds: 300 });
  const stats = new Float64Array(new SharedArrayBuffer(statsBytes(MAXP)));
  const inbox: ToWorker[] = [];
  const acks: { seq: number; error?: string }[] = [];
  const capture = new CaptureRing(new SharedArrayBuffer(captureRingBytes(1 << 16)));
  const loop = new WorkerLoop({
    io, fdb, stats, ctrl: new Int32Array(4), capture, eventfd: 99, maxPorts: MAXP, worker: 0,
    receive: () => inbox.shift(), reply: (m) => acks.push(m), clock: () => 1000,
  });
  // ports 1, 2, 3 on network 5 (fds 11, 12, 13); port 4 on network 6 (fd 14)
  for (const [id, net] of [[1, 5], [2, 5], [3, 5], [4, 6]]) {
    inbox.push({ type: 'addPort', seq: id, id, name: `p${id}`, fd: 10 + id, kind: 0, vnet: true, netId: net, rx: true });
  }
  loop.control();
  return { capture, io, fdb, stats, loop, acks, inbox };
}

function pump(s: ReturnType<typeof setup>, port: number): number {
  return s.loop.serve(s.loop.port(port)!);
}

describe('WorkerLoop over an in-memory Io', () => {
  it('acks every control message', () => {
    const s = setup();
    expect(s.acks.map((a) => a.seq)).toEqual([1, 2, 3, 4]);
    expect(s.acks.every((a) => a.error === undefined)).toBe(true);
  });

  it('floods a broadcast to the other ports of the network only, byte for byte', () => {
    const s = setup();
    const f = vframe(BCAST, A);
    s.io.inject(11, f);
    pump(s, 1);
    expect(s.io.sent.get(12)).toEqual([f]);
    expect(s.io.sent.get(13)).toEqual([f]);
    expect(s.io.sent.get(11)).toBeUndefined();  // never back to the ingress port
    expect(s.io.sent.get(14)).toBeUndefined();  // never into another network
    const row = (p: number) => p * ST_ROW;
    expect(s.stats[row(1) + ST_RX_PKTS]).toBe(1);
    expect(s.stats[row(1) + ST_RX_BYTES]).toBe(f.length - 10);
    expect(s.stats[row(2) + ST_TX_PKTS]).toBe(1);
    expect(s.stats[row(2) + ST_TX_BYTES]).toBe(f.length - 10);
  });

  it('sends known unicast to one port, in order, batched', () => {
    const s = setup();
    s.io.inject(12, vframe(BCAST, B));
    pump(s, 2);                            // learn B on port 2
    s.io.sent.clear();
    const frames = Array.from({ length: 10 }, (_, i) => vframe(B, A, 50 + i));
    frames.forEach((f) => s.io.inject(11, f));
    pump(s, 1);
    expect(s.io.sent.get(12)).toEqual(frames);
    expect(s.io.sent.get(13)).toBeUndefined();
  });

  it('counts drops by reason on the ingress port, and what the egress would not take', () => {
    const s = setup();
    s.io.inject(11, new Uint8Array(10 + 8));     // runt
    s.io.inject(11, vframe(B, '01:00:00:00:00:01')); // bad source
    pump(s, 1);
    expect(s.stats[1 * ST_ROW + ST_DROP0 + DROP.runt]).toBe(1);
    expect(s.stats[1 * ST_ROW + ST_DROP0 + DROP['bad-src-mac']]).toBe(1);
    s.io.sendLimit.set(13, 1);
    s.io.inject(11, vframe(BCAST, A));
    s.io.inject(11, vframe(BCAST, A));
    pump(s, 1);
    expect(s.stats[3 * ST_ROW + ST_TX_PKTS]).toBe(1);
    expect(s.stats[3 * ST_ROW + ST_DROP0 + DROP['tx-refused']]).toBe(1);
    expect(s.stats[2 * ST_ROW + ST_TX_PKTS]).toBe(2);
  });

  it('drops unicast to a port removed meanwhile, and stops flooding to it', () => {
    const s = setup();
    s.io.inject(12, vframe(BCAST, B));
    pump(s, 2);
    s.inbox.push({ type: 'removePort', seq: 9, id: 2 });
    s.loop.control();
    s.io.sent.clear();
    s.io.inject(11, vframe(B, A));   // B still in the FDB until the host flushes it
    s.io.inject(11, vframe(BCAST, A));
    pump(s, 1);
    expect(s.stats[1 * ST_ROW + ST_DROP0 + DROP['port-down']]).toBe(1);
    expect(s.io.sent.get(12)).toBeUndefined();
    expect(s.io.sent.get(13)?.length).toBe(1);
  });

  it('a port whose receive fails is counted and left out of the poll set', () => {
    const s = setup();
    s.io.broken.add(11);
    pump(s, 1);
    expect(s.stats[1 * ST_ROW + ST_DROP0 + DROP['rx-error']]).toBe(1);
  });

  it('counts frames the kernel dropped for want of room as rx-queue-full, on their port', () => {
    const s = setup();
    s.io.kernelDrops.set(11, 5);
    s.loop.collectKernelDrops();
    s.loop.collectKernelDrops();               // deltas: counted once
    expect(s.stats[1 * ST_ROW + ST_DROP0 + DROP['rx-queue-full']]).toBe(5);
    expect(s.stats[2 * ST_ROW + ST_DROP0 + DROP['rx-queue-full']]).toBe(0);
  });

  it('counts, in shared memory, the frames each stage ended', () => {
    const s = setup();
    s.io.inject(11, new Uint8Array(10 + 8));   // runt: ended by parse
    s.io.inject(11, vframe(BCAST, A));         // flooded: ended by forward
    pump(s, 1);
    const o = stageCountersOffset(MAXP);
    expect(Array.from(s.stats.subarray(o, o + 5))).toEqual([1, 0, 0, 0, 1]);
  });

  it('copies the frames of a captured port, both directions, without the vnet header; none when off', () => {
    const s = setup();
    s.io.inject(11, vframe(BCAST, A));
    pump(s, 1);
    expect(s.capture.drain()).toEqual([]);              // capture off: nothing
    s.inbox.push({ type: 'capture', seq: 20, id: 2, on: true });
    s.loop.control();
    const toB = vframe(BCAST, A);
    s.io.inject(11, toB);                               // flooded: sent to port 2 (tx)
    s.io.inject(12, vframe(BCAST, B));                  // received on port 2 (rx)
    pump(s, 1);
    pump(s, 2);
    const got = s.capture.drain();
    expect(got.map((f) => [f.port, f.dir])).toEqual([[2, DIR_TX], [2, DIR_RX]]);
    expect(Buffer.from(got[0].data).equals(Buffer.from(toB.subarray(10)))).toBe(true);
    s.inbox.push({ type: 'capture', seq: 21, id: 2, on: false });
    s.loop.control();
    s.io.inject(12, vframe(BCAST, B));
    pump(s, 2);
    expect(s.capture.drain()).toEqual([]);
  });
});
