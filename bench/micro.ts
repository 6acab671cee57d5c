// Micro-benchmarks of the dataplane's hot functions, with the `benchmark` package.
// `npm run bench:micro` (= node dist/bench/micro.js; build first with `npx tsc -p tsconfig.json`).
//
//   ethernet parse        EthernetView.reset + the field reads the parse stage does
//   fdb lookup (hit)      Fdb.lookup of a known MAC, table of 1000 entries
//   fdb lookup (miss)     Fdb.lookup of an unknown MAC, same table
//   fdb learn-refresh     Fdb.learn of a known MAC on its known port (the per-frame case)
//   pipeline, 64 frames   Packet.reset + Pipeline.run over a 64-frame batch (as the worker
//                         loop does, minus the I/O): known unicast, one source, vnet header
//   pipeline, 64 sources  the same batch with 64 different source MACs
//
// Prints ops/s and ns/op per function (plus ns/frame for the batch benchmarks).
// Options: --filter REGEX (run only matching benchmarks), --quick (shorter runs), --json.
// The results are noisy on a shared machine: compare runs made under the same load.

import Benchmark from 'benchmark';
import { EthernetView } from '../dataplane/wire/ethernet';
import { Fdb, LEARN_REFRESHED } from '../dataplane/tables/fdb';
import { PortTable } from '../dataplane/tables/ports';
import { Packet } from '../dataplane/packet';
import { Pipeline } from '../dataplane/pipeline';
import type { StageContext } from '../dataplane/stages/stage';

const BATCH = 64;
const FDB_ENTRIES = 1000;
const VNET_HDR = 10;
const SLOT = 65536 + 64;   // the receive slot of workers/io.ts
const NET = 0;
const NOW = 1000;

/** Results are folded into this so the JIT cannot drop the work as dead code. */
let sink = 0;

// MAC i as (hi, lo): 02:42:0a:xx:xx:xx, a locally administered unicast address.
const macHiOf = (_i: number): number => 0x0242;
const macLoOf = (i: number): number => (0x0a000000 + i + 2) >>> 0;

function writeFrame(buf: Uint8Array, off: number, dstLo: number, srcLo: number): void {
  buf.fill(0, off, off + VNET_HDR + 60);
  const e = off + VNET_HDR;
  buf[e] = 0x02; buf[e + 1] = 0x42;
  buf[e + 2] = dstLo >>> 24; buf[e + 3] = (dstLo >>> 16) & 0xff; buf[e + 4] = (dstLo >>> 8) & 0xff; buf[e + 5] = dstLo & 0xff;
  buf[e + 6] = 0x02; buf[e + 7] = 0x42;
  buf[e + 8] = srcLo >>> 24; buf[e + 9] = (srcLo >>> 16) & 0xff; buf[e + 10] = (srcLo >>> 8) & 0xff; buf[e + 11] = srcLo & 0xff;
  buf[e + 12] = 0x08; buf[e + 13] = 0x00; // IPv4
}

// ------------------------------------------------------------------ fixtures
/** An FDB like the daemon's (default caps) holding 1000 MACs spread over ports 1..4. */
function makeFdb(): Fdb {
  const fdb = new Fdb({ maxEntries: 16384, maxPerPort: 4096, maxPorts: 1024, agingSeconds: 300 });
  for (let i = 0; i < FDB_ENTRIES; i++) fdb.learn(NET, 0, macHiOf(i), macLoOf(i), 1 + (i % 4), NOW);
  if (fdb.counters().entries !== FDB_ENTRIES) throw new Error('fdb fixture: wrong entry count');
  return fdb;
}

const fdb = makeFdb();
const ports = new PortTable(1024);
for (let p = 1; p <= 4; p++) ports.add(p, `vsw${p}`, NET);
const ctx: StageContext = { fdb, ports, now: NOW, dryRun: false, l3: null };

// Keys in a scrambled order, so the lookups do not walk the table sequentially.
const order = new Int32Array(FDB_ENTRIES);
for (let i = 0; i < FDB_ENTRIES; i++) order[i] = (i * 617) % FDB_ENTRIES; // 617 is prime to 1000
const keyHi = new Int32Array(FDB_ENTRIES);
const keyLo = new Int32Array(FDB_ENTRIES);
const keyPort = new Int32Array(FDB_ENTRIES);
for (let k = 0; k < FDB_ENTRIES; k++) {
  const i = order[k];
  keyHi[k] = macHiOf(i);
  keyLo[k] = macLoOf(i) | 0;
  keyPort[k] = 1 + (i % 4);
}

// A receive buffer laid out like the worker loop's: frame i at slot i, 4 bytes in.
function makeBatch(manySources: boolean): { buf: Uint8Array; offs: Int32Array; lens: Int32Array; inPort: number } {
  const buf = new Uint8Array(SLOT * BATCH);
  const offs = new Int32Array(BATCH);
  const lens = new Int32Array(BATCH);
  // Destination: MAC 1 (learned on port 2). Sources: MAC 0 (port 1), or MACs learned on port 1.
  for (let i = 0; i < BATCH; i++) {
    offs[i] = i * SLOT + 4;
    lens[i] = VNET_HDR + 60;
    const src = manySources ? macLoOf(4 * i) : macLoOf(0); // 4*i % 4 == 0 -> learned on port 1
    writeFrame(buf, offs[i], macLoOf(1), src);
  }
  return { buf, offs, lens, inPort: 1 };
}

const packets = Array.from({ length: BATCH }, () => new Packet());
const pipeline = new Pipeline();

function runBatch(b: ReturnType<typeof makeBatch>): number {
  let s = 0;
  for (let i = 0; i < BATCH; i++) {
    const p = packets[i];
    p.reset(b.buf, b.offs[i], b.lens[i], true, b.inPort, 0);
    pipeline.run(p, ctx);
    s += p.out;
  }
  return s;
}

// Sanity checks: the benchmarks measure the paths they claim to.
const batchOne = makeBatch(false);
const batchMany = makeBatch(true);
if (runBatch(batchOne) !== 2 * BATCH) throw new Error('pipeline fixture: frames were not sent to port 2');
if (runBatch(batchMany) !== 2 * BATCH) throw new Error('pipeline fixture (64 sources): frames were not sent to port 2');
if (fdb.lookup(NET, 0, keyHi[0], keyLo[0] >>> 0) !== keyPort[0]) throw new Error('fdb fixture: lookup misses');
if (fdb.learn(NET, 0, keyHi[0], keyLo[0] >>> 0, keyPort[0], NOW) !== LEARN_REFRESHED) throw new Error('fdb fixture: not a refresh');
if (fdb.counters().entries !== FDB_ENTRIES) throw new Error('fdb fixture: the pipeline learned new MACs');

const ethBuf = new Uint8Array(SLOT * BATCH);
for (let i = 0; i < BATCH; i++) writeFrame(ethBuf, i * SLOT + 4, macLoOf(1), macLoOf(i));
const eth = new EthernetView();

// ------------------------------------------------------------------ benchmarks
interface Case { name: string; fn: () => void; perOp?: number }

let ki = 0;
let ei = 0;
const cases: Case[] = [
  {
    name: 'ethernet parse (reset + fields)',
    fn: () => {
      ei = (ei + 1) & (BATCH - 1);
      if (eth.reset(ethBuf, ei * SLOT + 4 + VNET_HDR, 60)) {
        sink += eth.dstHi + eth.dstLo + eth.srcHi + eth.srcLo + eth.etherType + eth.payloadOffset;
        if (eth.dstIsMulticast || eth.srcIsMulticast) sink++;
      }
    },
  },
  {
    name: 'fdb lookup, hit (1000 entries)',
    fn: () => {
      ki = ki + 1 === FDB_ENTRIES ? 0 : ki + 1;
      sink += fdb.lookup(NET, 0, keyHi[ki], keyLo[ki] >>> 0);
    },
  },
  {
    name: 'fdb lookup, miss (1000 entries)',
    fn: () => {
      ki = ki + 1 === FDB_ENTRIES ? 0 : ki + 1;
      sink += fdb.lookup(NET, 0, 0x0252, keyLo[ki] >>> 0);
    },
  },
  {
    name: 'fdb learn-refresh (1000 entries)',
    fn: () => {
      ki = ki + 1 === FDB_ENTRIES ? 0 : ki + 1;
      sink += fdb.learn(NET, 0, keyHi[ki], keyLo[ki] >>> 0, keyPort[ki], NOW);
    },
  },
  { name: 'pipeline, 64-frame batch, 1 source', fn: () => { sink += runBatch(batchOne); }, perOp: BATCH },
  { name: 'pipeline, 64-frame batch, 64 sources', fn: () => { sink += runBatch(batchMany); }, perOp: BATCH },
];

interface Result { name: string; opsPerSec: number; nsPerOp: number; nsPerFrame?: number; rmePct: number; samples: number }

function parseArgs(argv: string[]): { filter?: RegExp; quick: boolean; json: boolean } {
  const out: { filter?: RegExp; quick: boolean; json: boolean } = { quick: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--filter' && i + 1 < argv.length) out.filter = new RegExp(argv[++i], 'i');
    else if (argv[i] === '--quick') out.quick = true;
    else if (argv[i] === '--json') out.json = true;
    else if (argv[i] === '--help' || argv[i] === '-h') {
      process.stdout.write('usage: node dist/bench/micro.js [--filter REGEX] [--quick] [--json]\n');
      process.exit(0);
    } else {
      process.stderr.write(`micro: unknown argument ${argv[i]}\n`);
      process.exit(2);
    }
  }
  return out;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const chosen = cases.filter((c) => !args.filter || args.filter.test(c.name));
  if (chosen.length === 0) {
    process.stderr.write('micro: no benchmark matches the filter\n');
    process.exit(2);
  }
  const results: Result[] = [];
  const suite = new Benchmark.Suite('vsw dataplane');
  for (const c of chosen) {
    suite.add(c.name, c.fn, args.quick ? { maxTime: 1, minSamples: 5 } : { maxTime: 4, minSamples: 20 });
  }
  suite.on('cycle', (ev: Benchmark.Event) => {
    const b = ev.target as unknown as Benchmark;
    const c = chosen.find((x) => x.name === b.name);
    if (b.error) {
      process.stderr.write(`micro: ${b.name}: ${String(b.error)}\n`);
      process.exitCode = 1;
      return;
    }
    const hz = b.hz ?? 0;
    const r: Result = {
      name: b.name ?? '?', opsPerSec: hz, nsPerOp: 1e9 / hz, rmePct: b.stats.rme, samples: b.stats.sample.length,
    };
    if (c?.perOp) r.nsPerFrame = r.nsPerOp / c.perOp;
    results.push(r);
    if (!args.json) process.stderr.write(`  done: ${r.name}\n`);
  });
  suite.on('complete', () => {
    if (args.json) {
      process.stdout.write(JSON.stringify({ node: process.version, results }, null, 2) + '\n');
      return;
    }
    const head = ['benchmark', 'ops/s', 'ns/op', 'ns/frame', '±%', 'samples'];
    const rows = results.map((r) => [
      r.name, Math.round(r.opsPerSec).toLocaleString('en-US'), r.nsPerOp.toFixed(1),
      r.nsPerFrame !== undefined ? r.nsPerFrame.toFixed(1) : '-', r.rmePct.toFixed(1), String(r.samples),
    ]);
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
    process.stdout.write(`vsw micro-benchmarks (node ${process.version})\n${line(head)}\n${w.map((n) => '-'.repeat(n)).join('  ')}\n`);
    process.stdout.write(rows.map(line).join('\n') + '\n');
    if (sink === 0.5) process.stdout.write('\n'); // keeps `sink` observable
  });
  suite.run({ async: false });
}

main();
