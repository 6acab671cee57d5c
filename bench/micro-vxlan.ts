// Micro-benchmark of what VXLAN costs the worker loop, per frame: a 64-frame batch through
// WorkerLoop (receive from an in-memory device, the pipeline, egress, send to an in-memory
// device that keeps nothing), minus the kernel.
//
//   local->local        baseline: two vnet ports of one network (no overlay)
//   encap 98 B          local port -> a MAC behind a remote VTEP: copy behind UDP + VXLAN headers
//   encap 1464 B        the same with MTU-size frames (partial checksum finished in the copy)
//   encap 64 KB GSO     one TCP super frame per "batch" of the table: cut into 47 segments
//                       (the figure is per segment)
//   decap 98 B          VXLAN datagrams from the VTEP socket -> a local port
//   flood to 2 peers    a broadcast from a local port: one local copy, two replicas
//
// `node dist/bench/micro-vxlan.js [--quick]` (build first). Noisy on a shared machine:
// compare figures of one run.

import Benchmark from 'benchmark';
import { WorkerLoop } from '../workers/loop';
import { KIND_UDP, loadIo, type Io } from '../workers/io';
import { Fdb } from '../dataplane/tables/fdb';
import { statsBytes } from '../workers/shared';
import type { ToWorker } from '../workers/protocol';
import { peerCounterBytes } from '../dataplane/vxlan/port';
import { ipValue, writeVxlanHeader } from '../dataplane/vxlan/header';

const BATCH = 64;
const VNET = 10;
const MAXP = 16;
const PEER = ipValue('192.168.77.2');

class BenchIo {
  frames: Uint8Array[] = [];
  /** The addon's C checksum, as the daemon's loop uses it (segment checksums). */
  onesSum = loadIo().onesSum;
  sent = 0;
  recv(_fd: number, _k: number, _v: boolean, buf: Uint8Array, slot: number, max: number, offs: Int32Array, lens: Int32Array, flags: Uint8Array): number {
    const n = Math.min(max, this.frames.length);
    for (let i = 0; i < n; i++) {
      const f = this.frames[i];
      buf.set(f, i * slot + 4);
      offs[i] = i * slot + 4; lens[i] = f.length; flags[i] = 0;
    }
    return n;
  }
  recvUdp(_fd: number, buf: Uint8Array, slot: number, max: number, offs: Int32Array, lens: Int32Array, flags: Uint8Array, addrs: Int32Array): number {
    const n = Math.min(max, this.frames.length);
    for (let i = 0; i < n; i++) {
      const f = this.frames[i];
      buf.set(f, i * slot + 8);
      offs[i] = i * slot + 8; lens[i] = f.length; flags[i] = 0; addrs[i] = PEER;
    }
    return n;
  }
  send(_fd: number, _k: number, _b: Uint8Array, _o: Int32Array, _l: Int32Array, count: number): number { this.sent += count; return count; }
  sendUdp(_fd: number, _b: Uint8Array, _o: Int32Array, _l: Int32Array, _a: Int32Array, count: number): number { this.sent += count; return count; }
  poll(): number { return 0; }
  packetStats(): { packets: number; drops: number } { return { packets: 0, drops: 0 }; }
  eventfdDrain(): void { /* nothing */ }
}

/** A vnet frame: IPv4/TCP between MAC 1 and MAC dst (bytes of Ethernet frame). */
function frame(dst: number, src: number, bytes: number, gso = 0): Uint8Array {
  const f = new Uint8Array(VNET + bytes);
  if (gso > 0) { f[0] = 1; f[1] = 1; f[4] = gso & 0xff; f[5] = gso >> 8; f[6] = 34; f[8] = 16; }
  const e = VNET;
  f.set([0x02, 0x42, 0, 0, 0, dst, 0x02, 0x42, 0, 0, 0, src, 0x08, 0x00], e);
  const ip = e + 14;
  f.set([0x45, 0, (bytes - 14) >> 8, (bytes - 14) & 0xff, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 77, 0, 2, 10, 77, 0, 64], ip);
  f[ip + 20 + 12] = 0x50;
  return f;
}

function setup(): { loop: WorkerLoop; io: BenchIo } {
  const io = new BenchIo();
  const fdb = new Fdb({ maxEntries: 16384, maxPerPort: 4096, maxPorts: MAXP, agingSeconds: 300 });
  const inbox: ToWorker[] = [];
  const loop = new WorkerLoop({
    io: io as unknown as Io, fdb, ctrl: new Int32Array(4), stats: new Float64Array(new SharedArrayBuffer(statsBytes(MAXP))),
    eventfd: 99, maxPorts: MAXP, worker: 0, receive: () => inbox.shift(), reply: () => undefined, clock: () => 1000,
  });
  const add = (id: number, m: Partial<Extract<ToWorker, { type: 'addPort' }>>): void => {
    inbox.push({ type: 'addPort', seq: id, id, name: `p${id}`, fd: 10 + id, kind: 0, vnet: true, netId: 1, rx: true, ...m });
  };
  add(1, {});
  add(2, {});
  add(5, { kind: KIND_UDP, vnet: false, netId: -1, vlans: { untagged: -1, pvid: 0, tagged: [] } });
  add(3, {
    kind: KIND_UDP, vnet: false, rx: false,
    vxlan: { vni: 100, port: 4789, vtep: 5, mtu: 1450, peers: [{ addr: PEER, slot: 1 }, { addr: PEER + 1, slot: 2 }], localMacs: [], counters: new SharedArrayBuffer(peerCounterBytes(1)) },
  });
  loop.control();
  fdb.learn(1, 0, 0x0242, 1, 1, 1000);
  fdb.learn(1, 0, 0x0242, 2, 2, 1000);
  fdb.learnVtep(1, 0, 0x0242, 3, 3, PEER, 1000);
  return { loop, io };
}

function vxlan(inner: Uint8Array): Uint8Array {
  const d = new Uint8Array(8 + inner.length - VNET);
  writeVxlanHeader(d, 0, 100);
  d.set(inner.subarray(VNET), 8);
  return d;
}

interface Case { name: string; port: number; frames: () => Uint8Array[]; per: number }
const CASES: Case[] = [
  { name: 'local->local 98 B', port: 1, per: BATCH, frames: () => Array.from({ length: BATCH }, () => frame(2, 1, 98)) },
  { name: 'encap 98 B', port: 1, per: BATCH, frames: () => Array.from({ length: BATCH }, () => frame(3, 1, 98)) },
  { name: 'encap 1464 B', port: 1, per: BATCH, frames: () => Array.from({ length: BATCH }, () => frame(3, 1, 1464)) },
  { name: 'encap 64 KB GSO (per segment)', port: 1, per: Math.ceil((65000 - 54) / 1398), frames: () => [frame(3, 1, 65000, 1398)] },
  { name: 'decap 98 B', port: 5, per: BATCH, frames: () => Array.from({ length: BATCH }, () => vxlan(frame(1, 3, 98))) },
  { name: 'decap 1464 B', port: 5, per: BATCH, frames: () => Array.from({ length: BATCH }, () => vxlan(frame(1, 3, 1464))) },
  { name: 'flood to 2 peers 98 B', port: 1, per: BATCH, frames: () => Array.from({ length: BATCH }, () => { const f = frame(0, 1, 98); f.fill(0xff, VNET, VNET + 6); return f; }) },
];

const quick = process.argv.includes('--quick');
const suite = new Benchmark.Suite();
for (const c of CASES) {
  const { loop, io } = setup();
  io.frames = c.frames();
  const port = loop.port(c.port)!;
  const before = io.sent;
  loop.serve(port);
  if (io.sent === before) throw new Error(`${c.name}: nothing sent`);
  suite.add(c.name, () => { loop.serve(port); }, { maxTime: quick ? 1 : 4, per: c.per } as Benchmark.Options);
}
suite.on('cycle', (ev: Benchmark.Event) => {
  const b = ev.target as Benchmark.Target & { name: string; hz: number; stats: { rme: number } };
  const c = CASES.find((x) => x.name === b.name)!;
  const ns = 1e9 / b.hz / c.per;
  console.log(`${b.name.padEnd(32)} ${ns.toFixed(1).padStart(8)} ns/frame  (±${b.stats.rme.toFixed(1)}%)`);
});
suite.run();
