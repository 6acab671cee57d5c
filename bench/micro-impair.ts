// Micro-benchmark: what link impairment costs the forwarding path when no port is impaired,
// main's build next to this one in the same process and run. The worker loop (workers/loop.js
// of each build) serves a 64-frame batch of known unicast (vnet header, 60-byte frames)
// through the pipeline and egress to an in-memory device; rounds alternate the builds.
//
//   npx tsc -p tsconfig.json && node dist/bench/micro-impair.js --a MAIN/dist --b dist [--rounds 9] [--ms 400]
//
// Rows: each build with no impairment, and this build with an impairment on a third port
// (one the traffic does not touch: the cost is then one field check per frame). Prints ns per
// frame, the median of the rounds. No root, no I/O.

import * as path from 'node:path';

const BATCH = 64;
const HEADROOM = 4;

interface LoopLike { serve(p: unknown): number; port(id: number): unknown; control(): void }
type LoopCtor = new (deps: Record<string, unknown>) => LoopLike;

/** One 70-byte vnet frame 02:42:0a:00:00:03 <- 02:42:0a:00:00:02, IPv4 ethertype. */
function frame(): Uint8Array {
  const f = new Uint8Array(10 + 60);
  f.set([0x02, 0x42, 0x0a, 0, 0, 3, 0x02, 0x42, 0x0a, 0, 0, 2, 0x08, 0x00], 10);
  return f;
}

/** An Io whose port fd 11 always has a full batch waiting, and which takes every send. */
function fakeIo(): Record<string, unknown> {
  const f = frame();
  return {
    recv: (_fd: number, _k: number, _v: boolean, buf: Uint8Array, slot: number, max: number, offs: Int32Array, lens: Int32Array, flags: Uint8Array): number => {
      const n = Math.min(max, BATCH);
      for (let i = 0; i < n; i++) {
        const at = i * slot + HEADROOM;
        buf.set(f, at);
        offs[i] = at; lens[i] = f.length; flags[i] = 0;
      }
      return n;
    },
    send: (_fd: number, _k: number, _b: Uint8Array, _o: Int32Array, _l: Int32Array, count: number): number => count,
    packetStats: () => ({ packets: 0, drops: 0 }),
    eventfdDrain: () => undefined,
  };
}

function makeLoop(dist: string, impairThird: boolean): { loop: LoopLike; port: unknown } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { WorkerLoop } = require(path.resolve(dist, 'workers', 'loop.js')) as { WorkerLoop: LoopCtor };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Fdb } = require(path.resolve(dist, 'dataplane', 'tables', 'fdb.js')) as { Fdb: new (c: unknown) => { learn(...a: number[]): number } };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { statsBytes, ST_ROW, ST_TX_PKTS } = require(path.resolve(dist, 'workers', 'shared.js')) as { statsBytes: (n: number) => number; ST_ROW: number; ST_TX_PKTS: number };
  const fdb = new Fdb({ maxEntries: 1024, maxPerPort: 1024, maxPorts: 16, agingSeconds: 300 });
  const inbox: Record<string, unknown>[] = [];
  for (const id of [1, 2, 3]) inbox.push({ type: 'addPort', seq: id, id, name: `p${id}`, fd: 10 + id, kind: 0, vnet: true, netId: 0, rx: true });
  if (impairThird) {
    inbox.push({
      type: 'impair', seq: 9, id: 3, out: {
        delay: 10, jitter: 0, distribution: 'uniform', loss: 0, duplicate: 0, corrupt: 0, reorder: 0, gap: 1, rate: 0, burst: 0,
        limit: 1000, limitBytes: 1 << 20, seed: 1,
      },
    });
  }
  const stats = new Float64Array(statsBytes(16) / 8);
  const loop = new WorkerLoop({
    io: fakeIo(), fdb, stats, ctrl: new Int32Array(4), eventfd: 0, maxPorts: 16, worker: 0,
    receive: () => inbox.shift(), reply: () => undefined, clock: () => 1000,
  });
  loop.control();
  fdb.learn(0, 0, 0x0242, 0x0a000003, 2, 1000); // the destination is on port 2: known unicast
  fdb.learn(0, 0, 0x0242, 0x0a000002, 1, 1000);
  // Sanity: the batch is known unicast to port 2 (not flooded, not dropped).
  loop.serve(loop.port(1));
  if (stats[2 * ST_ROW + ST_TX_PKTS] !== BATCH || stats[3 * ST_ROW + ST_TX_PKTS] !== 0) throw new Error(`${dist}: the batch did not go to port 2 only`);
  return { loop, port: loop.port(1) };
}

function nsPerFrame(l: { loop: LoopLike; port: unknown }, ms: number): number {
  let frames = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let k = 0; k < 100; k++) frames += l.loop.serve(l.port);
    t = performance.now();
  }
  return ((t - t0) * 1e6) / frames;
}

function main(): void {
  const args = process.argv.slice(2);
  const arg = (k: string, d: string): string => { const i = args.indexOf(k); return i >= 0 && i + 1 < args.length ? args[i + 1] : d; };
  const a = arg('--a', '');
  const b = arg('--b', path.resolve(__dirname, '..'));
  const rounds = Number(arg('--rounds', '9'));
  const ms = Number(arg('--ms', '400'));
  if (a === '') {
    process.stderr.write('usage: node dist/bench/micro-impair.js --a MAIN_DIST --b THIS_DIST [--rounds N] [--ms MS]\n');
    process.exit(2);
  }
  const rows: [string, { loop: LoopLike; port: unknown }][] = [
    ['main, no impairment', makeLoop(a, false)],
    ['this, no impairment', makeLoop(b, false)],
    ['this, another port impaired', makeLoop(b, true)],
  ];
  for (const [, l] of rows) nsPerFrame(l, ms); // warm up every row's JIT
  const samples = rows.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? rows.map((_, i) => i) : rows.map((_, i) => rows.length - 1 - i);
    for (const i of order) samples[i].push(nsPerFrame(rows[i][1], ms));
  }
  const median = (xs: number[]): number => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
  for (let i = 0; i < rows.length; i++) {
    const s = samples[i];
    process.stdout.write(`${rows[i][0].padEnd(30)} ${median(s).toFixed(1).padStart(7)} ns/frame  (min ${Math.min(...s).toFixed(1)}, max ${Math.max(...s).toFixed(1)}, ${rounds} rounds of ${ms} ms)\n`);
  }
}

main();
