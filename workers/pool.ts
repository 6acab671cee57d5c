// The main thread's dataplane workers: start them (each with its own stats, capture, events
// and punt rings in shared memory), send them control messages and wait for every ack, and
// stop them. workers/host.ts decides what to send; this file only carries it.
//
// Messages (workers/protocol.ts) are posted, then the worker's eventfd is signalled: a worker
// never returns to the event loop, it reads them synchronously when its poll() sees the
// eventfd. Each message carries a sequence number the ack repeats.

import { Worker } from 'node:worker_threads';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Io } from './io';
import type { AckMsg, FromWorker, ToWorker, WorkerInit } from './protocol';
import { CaptureRing, captureRingBytes } from './capture-ring';
import { CTRL_STOP, MAX_PORTS, statsBytes } from './shared';

const ACK_TIMEOUT_MS = 10_000;
/** Bytes of each worker's capture ring. */
const CAPTURE_RING_BYTES = 4 << 20;
/** Bytes of each worker's MAC-table events ring. */
export const EVENTS_RING_BYTES = 256 << 10;
/** Bytes of each worker's ring of punted frames (DNS queries). */
const PUNT_RING_BYTES = 1 << 20;

/** One worker, as the main thread sees it. */
export interface WorkerSlot {
  worker: Worker;
  eventfd: number;
  /** Its stats (workers/shared.ts layout), written only by it. */
  stats: Float64Array;
  capture: CaptureRing;
  events: CaptureRing;
  punt: CaptureRing;
  /** Ports it receives from. */
  rxPorts: number;
  exited: Promise<void>;
}

/** The shared tables every worker attaches to. */
export type SharedTables = Pick<WorkerInit, 'ctrl' | 'fdb' | 'fdbConfig' | 'neigh' | 'neighConfig' | 'ct' | 'ctConfig'>;

function workerScript(): string {
  // Compiled: dist/workers/worker.js beside this file. From the TypeScript sources (tests):
  // the compiled copy under dist/.
  const here = path.join(__dirname, 'worker.js');
  if (fs.existsSync(here)) return here;
  const dist = path.resolve(__dirname, '..', 'dist', 'workers', 'worker.js');
  if (fs.existsSync(dist)) return dist;
  throw new Error('vsw: compiled worker not found (run npm install or npm run build)');
}

export class WorkerPool {
  readonly slots: WorkerSlot[] = [];
  private readonly io: Io;
  private readonly ctrl: Int32Array;
  private seq = 0;
  private readonly pending = new Map<string, { resolve: (m: AckMsg) => void; reject: (e: Error) => void }>();
  private stopped = false;

  constructor(io: Io, ctrl: Int32Array) {
    this.io = io;
    this.ctrl = ctrl;
  }

  /** Start `count` workers on the shared tables; resolves when every one is ready. */
  async start(count: number, tables: SharedTables): Promise<void> {
    const script = workerScript();
    const ready: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const eventfd = this.io.eventfd();
      const statsSab = new SharedArrayBuffer(statsBytes(MAX_PORTS));
      const captureSab = new SharedArrayBuffer(captureRingBytes(CAPTURE_RING_BYTES));
      const eventsSab = new SharedArrayBuffer(captureRingBytes(EVENTS_RING_BYTES));
      const puntSab = new SharedArrayBuffer(captureRingBytes(PUNT_RING_BYTES));
      const init: WorkerInit = {
        ...tables, index: i, eventfd, stats: statsSab, maxPorts: MAX_PORTS, capture: captureSab, events: eventsSab, punt: puntSab,
      };
      const worker = new Worker(script, { workerData: init, name: `vsw-worker-${i}` });
      let onReady!: () => void;
      let onFail!: (e: Error) => void;
      ready.push(new Promise<void>((res, rej) => { onReady = res; onFail = rej; }));
      const exited = new Promise<void>((res) => worker.once('exit', () => res()));
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') onReady();
        else if (m.type === 'ack') this.settle(m);
        else if (m.type === 'fatal') {
          onFail(new Error(`worker ${m.worker} failed: ${m.message}`));
          process.stderr.write(`vsw: dataplane worker ${m.worker} failed: ${m.message}\n`);
        }
      });
      worker.on('error', (e) => { onFail(e); process.stderr.write(`vsw: dataplane worker ${i} error: ${e.stack}\n`); });
      this.slots.push({
        worker, eventfd, stats: new Float64Array(statsSab), capture: new CaptureRing(captureSab), events: new CaptureRing(eventsSab),
        punt: new CaptureRing(puntSab), rxPorts: 0, exited,
      });
    }
    await Promise.all(ready);
  }

  /** The worker with the fewest ports to receive from. */
  leastLoaded(): number {
    return this.slots.reduce((best, w, i) => (w.rxPorts < this.slots[best].rxPorts ? i : best), 0);
  }

  /** Send a message to every worker and wait for all acks; rejects with the first error. */
  async broadcast(make: (worker: number) => ToWorker): Promise<void> {
    if (this.stopped) throw new Error('dataplane stopped');
    const answers = await Promise.all(this.slots.map((_w, i) => this.post(i, make(i))));
    const failed = answers.find((a) => a.error);
    if (failed) throw new Error(`dataplane worker ${failed.worker}: ${failed.error}`);
  }

  /** Send a message to one worker and wait for its ack (rejects when it reports an error). */
  async request(worker: number, msg: ToWorker): Promise<AckMsg> {
    if (this.stopped) throw new Error('dataplane stopped');
    const a = await this.post(worker, msg);
    if (a.error) throw new Error(`dataplane worker ${a.worker}: ${a.error}`);
    return a;
  }

  private post(i: number, msg: ToWorker): Promise<AckMsg> {
    const w = this.slots[i];
    msg.seq = ++this.seq;
    const key = `${i}:${msg.seq}`;
    const p = new Promise<AckMsg>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(key);
        reject(new Error(`dataplane worker ${i} did not answer ${msg.type} within ${ACK_TIMEOUT_MS} ms`));
      }, ACK_TIMEOUT_MS);
      this.pending.set(key, {
        resolve: (m) => { clearTimeout(t); resolve(m); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
    });
    w.worker.postMessage(msg);
    this.io.eventfdSignal(w.eventfd);
    return p;
  }

  /**
   * Stop the workers: they see the STOP word within one poll timeout (or are terminated after
   * 3 s). Their eventfds are closed and unanswered messages rejected.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(this.ctrl, CTRL_STOP, 1);
    for (const w of this.slots) this.io.eventfdSignal(w.eventfd);
    const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 3000).unref());
    const all = Promise.all(this.slots.map((w) => w.exited));
    if ((await Promise.race([all, timeout])) === 'timeout') {
      await Promise.all(this.slots.map((w) => w.worker.terminate()));
    }
  }

  /** After stop() and after the ports' fds are closed: the eventfds, and what is still waiting. */
  release(): void {
    for (const w of this.slots) this.io.close(w.eventfd);
    for (const p of this.pending.values()) p.reject(new Error('dataplane stopped'));
    this.pending.clear();
  }

  private settle(m: AckMsg): void {
    const key = `${m.worker}:${m.seq}`;
    const p = this.pending.get(key);
    if (p) { this.pending.delete(key); p.resolve(m); }
  }
}
