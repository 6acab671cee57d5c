import { describe, it, expect } from 'vitest';
import { WorkerLoop } from '../../../workers/loop';
import { CaptureRing, captureRingBytes, DIR_RX, DIR_TRACE, DIR_TX } from '../../../workers/capture-ring';
import type { TapNames, TapSpec } from '../../../workers/taps';
import { MemoryIo } from '../../fixtures/memory-io';
import { Fdb } from '../../../dataplane/tables/fdb';
import { statsBytes } from '../../../workers/shared';
import { drops, dropsOf, portCounters, stageEnded, workerCounters } from '../../fixtures/counters';
import { buildEthernet } from '../../../dataplane/wire/ethernet';
import { parseMac } from '../../../dataplane/wire/mac';
import type { ToWorker } from '../../../workers/protocol';
import { emptySpec, type ImpairSpec } from '../../../dataplane/impair/spec';

const MAXP = 16;
const A = '02:42:0a:00:00:02';
const B = '02:42:0a:00:00:03';
const A_TEXT = A;
const B_TEXT = B;
const NO_NAMES: TapNames = { ports: [], nets: [] };
/** A wire capture session `sid` on port `port`, no filter. */
const wireTap = (sid: number, port: number): TapSpec => ({ sid, kind: 'capture', port, net: -1, stage: -1, filter: '', count: 0 });
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
    expect(portCounters(s.stats, 1)).toMatchObject({ rxPackets: 1, rxBytes: f.length - 10 });
    expect(portCounters(s.stats, 2)).toMatchObject({ txPackets: 1, txBytes: f.length - 10 });
    expect(portCounters(s.stats, 3)).toMatchObject({ txPackets: 1, txBytes: f.length - 10 });
    expect(portCounters(s.stats, 1).txPackets).toBe(0);
    expect(workerCounters(s.stats)).toMatchObject({ batches: 1, frames: 1 });
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
    expect(dropsOf(s.stats, 1)).toEqual({ runt: 1, 'bad-src-mac': 1 });
    s.io.sendLimit.set(13, 1);
    s.io.inject(11, vframe(BCAST, A));
    s.io.inject(11, vframe(BCAST, A));
    pump(s, 1);
    expect(portCounters(s.stats, 3).txPackets).toBe(1);
    expect(drops(s.stats, 3, 'tx-refused')).toBe(1);
    expect(portCounters(s.stats, 2).txPackets).toBe(2);
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
    expect(dropsOf(s.stats, 1)).toEqual({ 'port-down': 1 });
    expect(s.io.sent.get(12)).toBeUndefined();
    expect(s.io.sent.get(13)?.length).toBe(1);
  });

  it('a port without virtio-net headers gets frames without one; its frames reach vnet ports behind an all-zero one', () => {
    const s = setup();
    s.inbox.push({ type: 'addPort', seq: 5, id: 5, name: 'p5', fd: 15, kind: 1, vnet: false, netId: 5, rx: true });
    s.loop.control();
    const f = vframe(BCAST, A);
    f.set([1, 0, 0, 0, 0, 0, 34, 0, 16, 0], 0);                       // the ingress header: partial checksum
    s.io.inject(11, f);
    pump(s, 1);
    expect(s.io.sent.get(15)).toEqual([f.subarray(10)]);
    expect(s.io.sent.get(12)).toEqual([f]);
    expect(portCounters(s.stats, 5)).toMatchObject({ txPackets: 1, txBytes: f.length - 10 });
    s.io.sent.clear();
    const plain = vframe(BCAST, B).subarray(10);
    s.io.inject(15, plain);
    pump(s, 5);
    expect(s.io.sent.get(11)).toEqual([vframe(BCAST, B)]);
    expect(s.io.sent.get(13)).toEqual([vframe(BCAST, B)]);
    expect(portCounters(s.stats, 5)).toMatchObject({ rxPackets: 1, rxBytes: plain.length });
  });

  it('a port whose receive fails is counted and left out of the poll set', () => {
    const s = setup();
    s.io.broken.add(11);
    pump(s, 1);
    expect(drops(s.stats, 1, 'rx-error')).toBe(1);
  });

  it('counts frames the kernel dropped for want of room as rx-queue-full, on their port', () => {
    const s = setup();
    s.io.kernelDrops.set(11, 5);
    s.loop.collectKernelDrops();
    s.loop.collectKernelDrops();               // deltas: counted once
    expect(drops(s.stats, 1, 'rx-queue-full')).toBe(5);
    expect(drops(s.stats, 2, 'rx-queue-full')).toBe(0);
  });

  it('counts, in shared memory, the frames each stage ended', () => {
    const s = setup();
    s.io.inject(11, new Uint8Array(10 + 8));   // runt: ended by parse
    s.io.inject(11, vframe(BCAST, A));         // flooded: ended by forward
    pump(s, 1);
    expect(stageEnded(s.stats)).toEqual({ parse: 1, ingress: 0, learn: 0, gateway: 0, forward: 1 });
  });

  it('copies the frames of a captured port, both directions, without the vnet header; none when off', () => {
    const s = setup();
    s.io.inject(11, vframe(BCAST, A));
    pump(s, 1);
    expect(s.capture.drain()).toEqual([]);              // capture off: nothing
    s.inbox.push({ type: 'taps', seq: 20, sessions: [wireTap(0, 2)], names: NO_NAMES });
    s.loop.control();
    const toB = vframe(BCAST, A);
    s.io.inject(11, toB);                               // flooded: sent to port 2 (tx)
    s.io.inject(12, vframe(BCAST, B));                  // received on port 2 (rx)
    pump(s, 1);
    pump(s, 2);
    const got = s.capture.drain();
    expect(got.map((f) => [f.port, f.dir, f.tag])).toEqual([[2, DIR_TX, 1], [2, DIR_RX, 1]]);
    expect(Buffer.from(got[0].data).equals(Buffer.from(toB.subarray(10)))).toBe(true);
    s.inbox.push({ type: 'taps', seq: 21, sessions: [], names: NO_NAMES });
    s.loop.control();
    s.io.inject(12, vframe(BCAST, B));
    pump(s, 2);
    expect(s.capture.drain()).toEqual([]);
  });

  it('wire capture with a filter: only matching frames, tagged with the sessions they are for', () => {
    const s = setup();
    // session 0: everything on port 2; session 3: only frames from B
    s.inbox.push({ type: 'taps', seq: 20, sessions: [wireTap(0, 2), { ...wireTap(3, 2), filter: `ether src ${B_TEXT}` }], names: NO_NAMES });
    s.loop.control();
    s.io.inject(11, vframe(BCAST, A));                  // to port 2 (tx), from A
    s.io.inject(12, vframe(BCAST, B));                  // from port 2 (rx), from B
    pump(s, 1);
    pump(s, 2);
    expect(s.capture.drain().map((f) => [f.dir, f.tag])).toEqual([[DIR_TX, 1], [DIR_RX, 1 | 8]]);
  });

  it('stage capture and live trace: frames after a stage, and each stage\'s decision as JSON', () => {
    const s = setup();
    s.inbox.push({
      type: 'taps', seq: 22, names: { ports: [[1, 'p1 (a)'], [2, 'p2 (b)']], nets: [[5, 'bridge']] },
      sessions: [
        { sid: 1, kind: 'capture', port: 1, net: -1, stage: 2, filter: '', count: 0 },  // after 'learn'
        { sid: 2, kind: 'trace', port: -1, net: -1, stage: -1, filter: `ether src ${A_TEXT}`, count: 1 },
      ],
    });
    s.loop.control();
    s.io.inject(11, vframe(BCAST, A));
    s.io.inject(11, vframe(BCAST, A));                  // the trace's count (1) is used up
    pump(s, 1);
    const recs = s.capture.drain();
    const frames = recs.filter((r) => r.dir === DIR_RX);
    expect(frames.map((r) => [r.port, r.tag])).toEqual([[1, 2], [1, 2]]);
    const traces = recs.filter((r) => r.dir === DIR_TRACE).map((r) => JSON.parse(Buffer.from(r.data).toString()));
    expect(traces).toHaveLength(1);
    expect(traces[0].port).toBe('p1 (a)');
    expect(traces[0].steps.map((x: { stage: string }) => x.stage)).toEqual(['parse', 'ingress', 'learn', 'gateway', 'forward']);
    expect(traces[0].steps[1].text).toContain('network bridge');
    expect(traces[0].steps[2].text).toMatch(/^new: /);
    expect(traces[0].verdict).toEqual({ kind: 'flood', ports: ['p2 (b)', 'p3'] }); // p3 has no label: its name
    expect(recs.filter((r) => r.dir === DIR_TRACE)[0].tag).toBe(4);
    // Taps off: the pipeline has no tracer again.
    s.inbox.push({ type: 'taps', seq: 23, sessions: [], names: NO_NAMES });
    s.loop.control();
    expect(s.loop.pipeline.tracer).toBeNull();
  });

  it('refuses a session whose filter does not compile (the ack carries the error)', () => {
    const s = setup();
    s.inbox.push({ type: 'taps', seq: 24, sessions: [{ ...wireTap(0, 2), filter: 'port' }], names: NO_NAMES });
    s.loop.control();
    expect(s.acks.at(-1)?.error).toMatch(/filter/);
  });

  it('a wire capture on every port (-1): each port\'s frames, named by port and direction, ports added later too', () => {
    const s = setup();
    s.inbox.push({ type: 'taps', seq: 20, sessions: [wireTap(0, -1)], names: NO_NAMES });
    s.loop.control();
    s.io.inject(11, vframe(B, A)); // A learned on 1; B unknown: flooded to 2 and 3
    pump(s, 1);
    s.inbox.push({ type: 'addPort', seq: 21, id: 7, name: 'p7', fd: 17, kind: 0, vnet: true, netId: 5, rx: true });
    s.loop.control();
    s.io.inject(12, vframe(A, B)); // to A, known on port 1
    pump(s, 2);
    expect(s.capture.drain().map((f) => [f.port, f.dir])).toEqual([[1, DIR_RX], [2, DIR_TX], [3, DIR_TX], [2, DIR_RX], [1, DIR_TX]]);
    s.io.inject(17, vframe(BCAST, A));
    pump(s, 7);
    expect(s.capture.drain().map((f) => [f.port, f.dir])).toEqual([[7, DIR_RX], [1, DIR_TX], [2, DIR_TX], [3, DIR_TX]]);
  });

  it('injected frames take the received frames\' path: counted, learned, forwarded; the ack tallies the verdicts', () => {
    const s = setup();
    const eth = (dst: string, src: string): Uint8Array => vframe(dst, src).subarray(10);
    const f1 = eth(BCAST, A);
    const f2 = eth(A, B);
    const runt = new Uint8Array(8);
    const frames = Buffer.concat([f1, f2, runt]);
    // f1 and the runt arrive on port 1, f2 on port 2: two messages, as the host sends them.
    s.inbox.push({ type: 'inject', seq: 30, id: 1, frames: Buffer.concat([f1, runt]), lens: [f1.length, runt.length] });
    s.inbox.push({ type: 'inject', seq: 31, id: 2, frames: frames.subarray(f1.length, f1.length + f2.length), lens: [f2.length] });
    s.loop.control();
    expect(s.acks.slice(-2)).toEqual([
      { type: 'ack', worker: 0, seq: 30, tally: { forwarded: 1, local: 0, impaired: 0, drops: Object.assign([], { [0]: 1 }) } },
      { type: 'ack', worker: 0, seq: 31, tally: { forwarded: 1, local: 0, impaired: 0, drops: [] } },
    ]);
    expect(portCounters(s.stats, 1).rxPackets).toBe(2);
    expect(drops(s.stats, 1, 'runt')).toBe(1);
    // The flood left on 2 and 3 with an all-zero virtio-net header in front; f2 went to A only (learned from f1).
    expect(s.io.sent.get(12)?.map((f) => Buffer.from(f).toString('hex'))).toEqual([Buffer.concat([Buffer.alloc(10), f1]).toString('hex')]);
    expect(s.io.sent.get(13)).toHaveLength(1);
    expect(s.io.sent.get(11)?.map((f) => Buffer.from(f.subarray(10)).equals(f2))).toEqual([true]);
  });

  it('refuses to inject on a port it does not have, or a frame too long, with an error ack', () => {
    const s = setup();
    s.inbox.push({ type: 'inject', seq: 40, id: 9, frames: new Uint8Array(60), lens: [60] });
    s.inbox.push({ type: 'inject', seq: 41, id: 1, frames: new Uint8Array(60), lens: [70] });
    s.loop.control();
    expect(s.acks.slice(-2).map((a) => a.error)).toEqual(['port 9 cannot take injected frames: not attached', 'injected frame 0 is too long or cut (70 bytes)']);
  });
});

/** Set a port's impairment through the loop's control channel (workers/protocol.ts ImpairMsg). */
function impairOf(s: ReturnType<typeof setup>) {
  return (id: number, o: { in?: Partial<ImpairSpec>; out?: Partial<ImpairSpec> }): void => {
    s.inbox.push({ type: 'impair', seq: 100, id, in: o.in && { ...emptySpec(1), ...o.in }, out: o.out && { ...emptySpec(1), ...o.out } });
    s.loop.control();
  };
}

// Link impairment (vsw impair): frames wait in the port's queue and leave when releaseDue()
// is called at their time, in either direction; the ports that are not impaired are served at once.
describe('WorkerLoop with an impaired port', () => {
  it('out: frames to the port wait their delay; the other ports get theirs at once', () => {
    const s = setup();
    const impair = impairOf(s);
    impair(2, { out: { delay: 20 } });
    expect(s.acks.at(-1)?.error).toBeUndefined();
    const f = vframe(BCAST, A, 51);
    s.io.inject(11, f);
    const t0 = performance.now();
    s.loop.serve(s.loop.port(1)!);
    expect(s.io.sent.get(13)).toEqual([f]);
    expect(s.io.sent.get(12)).toBeUndefined();
    s.loop.releaseDue(t0 + 10);
    expect(s.io.sent.get(12)).toBeUndefined();
    s.loop.releaseDue(t0 + 1000);
    expect(s.io.sent.get(12)).toEqual([f]);
    expect(portCounters(s.stats, 2)).toMatchObject({ txPackets: 1, txBytes: f.length - 10 });
  });

  it('in: frames received on the port are counted at once and go through the pipeline when due', () => {
    const s = setup();
    const impair = impairOf(s);
    impair(1, { in: { delay: 30 } });
    const f = vframe(BCAST, A, 52);
    s.io.inject(11, f);
    const t0 = performance.now();
    s.loop.serve(s.loop.port(1)!);
    expect(portCounters(s.stats, 1)).toMatchObject({ rxPackets: 1 });
    expect(s.io.sent.get(12)).toBeUndefined();
    s.loop.releaseDue(t0 + 1000);
    expect(s.io.sent.get(12)).toEqual([f]);
    expect(s.io.sent.get(13)).toEqual([f]);
    expect(portCounters(s.stats, 1)).toMatchObject({ rxPackets: 1 });
  });

  it('loss is counted on the impaired port; removing the impairment sends what waits at once', () => {
    const s = setup();
    const impair = impairOf(s);
    impair(2, { out: { loss: 1 } });
    s.io.inject(11, vframe(BCAST, A, 53));
    s.loop.serve(s.loop.port(1)!);
    s.loop.releaseDue(performance.now() + 1000);
    expect(s.io.sent.get(12)).toBeUndefined();
    expect(dropsOf(s.stats, 2)['impair-loss']).toBe(1);

    impair(2, { out: { delay: 60_000 } });
    const f = vframe(BCAST, A, 54);
    s.io.inject(11, f);
    s.loop.serve(s.loop.port(1)!);
    expect(s.io.sent.get(12)).toBeUndefined();
    impair(2, {});
    expect(s.io.sent.get(12)).toEqual([f]);
  });

  it('an impairment on a port that is not there is refused (acked with an error)', () => {
    const s = setup();
    const impair = impairOf(s);
    impair(9, { out: { delay: 1 } });
    expect(s.acks.at(-1)?.error).toMatch(/no port 9/);
  });
});
