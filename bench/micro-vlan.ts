// Micro-benchmark of what 802.1Q costs the worker loop, per frame: a 64-frame batch through
// WorkerLoop.serve (receive from an in-memory device, the pipeline, VLAN egress, send to an
// in-memory device that keeps nothing), as the loop runs it minus the kernel.
//
//   access->access   untagged: two access ports of one network, no trunk anywhere (the path
//                    every container uses; it must not get slower)
//   access->trunk    known unicast from an access port out of a trunk: tag pushed in place
//   trunk->access    tagged frames in (tag re-inserted from auxdata, as AF_PACKET gives them),
//                    out of an access port: tag removed in place
//   trunk->trunk     tagged in, tagged out (removed, then pushed again)
//   flood, 2 forms   broadcast from an access port to an access port and a trunk: one copy
//
// `node dist/bench/micro-vlan.js [--quick] [--only NAME]` (build first: npx tsc -p tsconfig.json).
// Noisy on a shared machine: compare figures of one run.

import Benchmark from 'benchmark';
import { WorkerLoop } from '../workers/loop';
import { SLOT, type Io } from '../workers/io';
import { Fdb } from '../dataplane/tables/fdb';
import { statsBytes } from '../workers/shared';
import type { ToWorker } from '../workers/protocol';

const BATCH = 64;
const VNET = 10;
const MAXP = 16;

/** A device: recv hands out the same prepared batch every time; send keeps nothing. */
class BenchIo {
  frames: Uint8Array[] = [];
  aux = false;
  sent = 0;
  recv(_fd: number, _k: number, _v: boolean, buf: Uint8Array, slot: number, max: number,
    offs: Int32Array, lens: Int32Array, flags: Uint8Array): number {
    const n = Math.min(max, this.frames.length);
    for (let i = 0; i < n; i++) {
      const f = this.frames[i];
      const off = i * slot + (this.aux ? 0 : 4);
      buf.set(f, off);
      offs[i] = off; lens[i] = f.length; flags[i] = this.aux ? 2 : 0;
    }
    return n;
  }
  send(_fd: number, _k: number, _b: Uint8Array, _o: Int32Array, _l: Int32Array, count: number): number {
    this.sent += count;
    return count;
  }
  poll(): number { return 0; }
  packetStats(): { packets: number; drops: number } { return { packets: 0, drops: 0 }; }
  eventfdDrain(): void { /* nothing */ }
}

function frame(dst: number, src: number, vid: number, bytes = 98): Uint8Array {
  const tag = vid >= 0 ? 4 : 0;
  const f = new Uint8Array(VNET + bytes + tag);
  const e = VNET;
  f.set([0x02, 0x42, 0, 0, 0, dst, 0x02, 0x42, 0, 0, 0, src], e);
  if (vid >= 0) f.set([0x81, 0x00, (vid >> 8) & 0x0f, vid & 0xff], e + 12);
  f.set([0x08, 0x00], e + 12 + tag);
  return f;
}

function bcast(src: number): Uint8Array {
  const f = frame(0, src, -1);
  f.fill(0xff, VNET, VNET + 6);
  return f;
}

/** Ports: 1, 2 access VLAN 10 (net 1); 3 trunk carrying VLAN 10 (and 20); 4 another trunk. */
function setup(withTrunks: boolean): { loop: WorkerLoop; io: BenchIo } {
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
  add(1, { vlan: withTrunks ? 10 : 0 });
  add(2, { vlan: withTrunks ? 10 : 0 });
  if (withTrunks) {
    const vlans = { untagged: -1, pvid: 0, tagged: [{ vid: 10, net: 1 }, { vid: 20, net: 2 }] };
    add(3, { netId: -1, vlans });
    add(4, { netId: -1, vlans });
  }
  loop.control();
  // Learn: MAC 1 on port 1, MAC 2 on port 2, MAC 3 on trunk 3, MAC 4 on trunk 4 (VLAN 10).
  const vlan = withTrunks ? 10 : 0;
  fdb.learn(1, vlan, 0x0242, 1, 1, 1000);
  fdb.learn(1, vlan, 0x0242, 2, 2, 1000);
  if (withTrunks) { fdb.learn(1, 10, 0x0242, 3, 3, 1000); fdb.learn(1, 10, 0x0242, 4, 4, 1000); }
  return { loop, io };
}

interface Case { name: string; trunks: boolean; port: number; frames: () => Uint8Array[]; aux: boolean }

const CASES: Case[] = [
  { name: 'access->access', trunks: false, port: 1, aux: false, frames: () => Array.from({ length: BATCH }, () => frame(2, 1, -1)) },
  { name: 'access->access (trunks elsewhere)', trunks: true, port: 1, aux: false, frames: () => Array.from({ length: BATCH }, () => frame(2, 1, -1)) },
  { name: 'access->trunk', trunks: true, port: 1, aux: false, frames: () => Array.from({ length: BATCH }, () => frame(3, 1, -1)) },
  { name: 'trunk->access', trunks: true, port: 3, aux: true, frames: () => Array.from({ length: BATCH }, () => frame(1, 3, 10)) },
  { name: 'trunk->trunk', trunks: true, port: 3, aux: true, frames: () => Array.from({ length: BATCH }, () => frame(4, 3, 10)) },
  { name: 'flood, 2 forms', trunks: true, port: 1, aux: false, frames: () => Array.from({ length: BATCH }, () => bcast(1)) },
  { name: 'flood, untagged only', trunks: false, port: 1, aux: false, frames: () => Array.from({ length: BATCH }, () => bcast(1)) },
];

const quick = process.argv.includes('--quick');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const suite = new Benchmark.Suite();
for (const c of CASES) {
  if (only !== undefined && c.name !== only) continue;
  const { loop, io } = setup(c.trunks);
  io.frames = c.frames();
  io.aux = c.aux;
  const port = loop.port(c.port)!;
  const before = io.sent;
  if (loop.serve(port) !== BATCH || io.sent === before) throw new Error(`${c.name}: nothing forwarded`);
  suite.add(c.name, () => { loop.serve(port); }, quick ? { maxTime: 1 } : { maxTime: 4 });
}
suite.on('cycle', (ev: Benchmark.Event) => {
  const b = ev.target as Benchmark.Target & { name: string; hz: number; stats: { rme: number } };
  const ns = 1e9 / b.hz / BATCH;
  console.log(`${b.name.padEnd(36)} ${ns.toFixed(1).padStart(7)} ns/frame  (±${b.stats.rme.toFixed(1)}%)`);
});
void SLOT;
suite.run();
