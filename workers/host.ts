// The main thread's side of the dataplane: starts the workers, opens and closes ports, and
// reads the shared FDB and stats. Nothing here touches frames.
//
// How the work is split: each port is received by exactly one worker (the one with the
// fewest ports), and any worker may send on any port. Two containers talking therefore use
// two workers, one per direction, and a MAC table in shared memory makes what one worker
// learns visible to the other at once. A port is removed in two steps: every worker drops
// it (and acknowledges), then its fd is closed, so no worker can send to a reused fd.

import { Worker } from 'node:worker_threads';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadIo, KIND_PACKET, KIND_TAP, type Io } from './io';
import { Fdb, fdbBytes, type FdbConfig, type FdbEntry, type FdbCounters } from '../dataplane/tables/fdb';
import { DROP_REASONS } from '../dataplane/drops';
import type { AckMsg, FromWorker, ToWorker, WorkerInit } from './protocol';
import { CaptureRing, captureRingBytes, type CapturedFrame } from './capture-ring';
import type { TapNames, TapSpec } from './taps';
import { CT_EVENT_BASE, ctEventWriter, decodeCtEvent, decodeFdbEvent, type CtEvent, type FdbEvent } from './events';
import { macToStringHiLo } from '../dataplane/wire/mac';
import {
  CTRL_PUNT, CTRL_STOP, CTRL_WORDS, DNS_WORDS, dnsCountersOffset, MAX_PORTS, ST_DROP0, ST_ROW, ST_RX_BYTES, ST_RX_PKTS, ST_TX_BYTES,
  ST_TX_PKTS, WK_BATCHES, WK_BUSY_MS, WK_FRAMES, WK_ITERATIONS, stageCountersOffset, statsBytes,
  workerCountersOffset,
} from './shared';
import { STAGE_NAMES } from '../dataplane/stages/order';
import { Neigh, neighBytes, type NeighConfig } from '../dataplane/tables/neigh';
import { Conntrack, conntrackBytes, type ConntrackConfig } from '../dataplane/tables/conntrack';
import type { L3Snapshot } from '../dataplane/tables/l3';
import { PortTable, type PortVlans } from '../dataplane/tables/ports';

export const NEIGH_DEFAULTS: NeighConfig = { maxEntries: 4096, reachableSeconds: 30, staleSeconds: 60, retrySeconds: 1, maxProbes: 3 };
export const CONNTRACK_DEFAULTS: ConntrackConfig = { maxEntries: 65536, maxPerSource: 16384, portMin: 1024, portMax: 65535 };
/** Bytes of each worker's ring of punted frames (DNS queries). */
const PUNT_RING_BYTES = 1 << 20;

export interface PortSpec {
  /** Interface name: the veth host end (afpacket), or the TAP to create (tap). */
  name: string;
  kind: 'afpacket' | 'tap';
  netId: number;
  /** VLAN id of netId's network (an access port; 0 or absent: an untagged network). */
  vlan?: number;
  /** What the port carries, when more than one network untagged (a trunk, a tagged uplink). */
  vlans?: PortVlans;
}

export interface PortHandle {
  id: number;
  name: string;
  kind: 'afpacket' | 'tap';
  netId: number;
  vnet: boolean;
  worker: number;
  fd: number;
  /** What it carries (802.1Q). */
  vlans: PortVlans;
}

export interface PortCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  drops: Record<string, number>;
}

export interface WorkerCounters {
  worker: number;
  ports: number;
  iterations: number;
  batches: number;
  frames: number;
  busyMs: number;
}

export interface HostOptions {
  workers: number;
  fdb: Omit<FdbConfig, 'maxPorts'>;
  neigh?: Partial<NeighConfig>;
  conntrack?: Partial<ConntrackConfig>;
  io?: Io;
  clock?: () => number;
}

const ACK_TIMEOUT_MS = 10_000;

/** Bytes of each worker's capture ring. */
const CAPTURE_RING_BYTES = 4 << 20;
/** Bytes of each worker's MAC-table events ring. */
const EVENTS_RING_BYTES = 256 << 10;

interface WorkerSlot {
  worker: Worker;
  eventfd: number;
  stats: Float64Array;
  capture: CaptureRing;
  events: CaptureRing;
  punt: CaptureRing;
  rxPorts: number;
  exited: Promise<void>;
}

function workerScript(): string {
  // Compiled: dist/workers/worker.js beside this file. From the TypeScript sources (tests):
  // the compiled copy under dist/.
  const here = path.join(__dirname, 'worker.js');
  if (fs.existsSync(here)) return here;
  const dist = path.resolve(__dirname, '..', 'dist', 'workers', 'worker.js');
  if (fs.existsSync(dist)) return dist;
  throw new Error('vsw: compiled worker not found (run npm install or npm run build)');
}

export class DataplaneHost {
  readonly fdb: Fdb;
  /** The router's tables, shared with the workers (docs/L3.md). */
  readonly neigh: Neigh;
  readonly ct: Conntrack;
  private puntWaiting = false;
  private readonly localCt: CaptureRing;
  private readonly io: Io;
  private readonly opts: HostOptions;
  private readonly ctrl: Int32Array;
  private readonly workers: WorkerSlot[] = [];
  private readonly portsById = new Map<number, PortHandle>();
  /** The workers' port table, mirrored (dry-run traces, tagging what this thread sends). */
  readonly portTable = new PortTable(MAX_PORTS);
  /** Changes this thread makes to the MAC table (aging, evictions by flushes are not). */
  private readonly localEvents: FdbEvent[] = [];
  private seq = 0;
  private readonly pending = new Map<string, { resolve: (m: AckMsg) => void; reject: (e: Error) => void }>();
  private agingTimer: NodeJS.Timeout | undefined;
  private readonly clock: () => number;
  private stopped = false;

  constructor(opts: HostOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > 16) {
      throw new RangeError(`workers must be 1..16, got ${opts.workers}`);
    }
    this.opts = opts;
    this.io = opts.io ?? loadIo();
    this.clock = opts.clock ?? (() => (Date.now() / 1000) | 0);
    this.fdb = new Fdb({ ...opts.fdb, maxPorts: MAX_PORTS }, new SharedArrayBuffer(fdbBytes({ ...opts.fdb, maxPorts: MAX_PORTS })));
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
    const neighCfg = { ...NEIGH_DEFAULTS, ...opts.neigh };
    this.neigh = new Neigh(neighCfg, new SharedArrayBuffer(neighBytes(neighCfg)));
    const ctCfg = { ...CONNTRACK_DEFAULTS, ...opts.conntrack };
    this.ct = new Conntrack(ctCfg, new SharedArrayBuffer(conntrackBytes(ctCfg)));
    // Expired and removed connections are this thread's doing: they go through a ring of our own.
    this.localCt = new CaptureRing(new SharedArrayBuffer(captureRingBytes(EVENTS_RING_BYTES)));
    this.ct.hook = ctEventWriter(this.localCt, this.ct);
    this.fdb.hook = (kind, net, vlan, hi, lo, port, oldPort) => {
      if (this.localEvents.length < 10_000) {
        this.localEvents.push({ timeMs: Date.now(), kind, net, vlan, mac: macToStringHiLo(hi, lo), port, oldPort });
      }
    };
  }

  async start(): Promise<void> {
    const script = workerScript();
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.opts.workers; i++) {
      const eventfd = this.io.eventfd();
      const statsSab = new SharedArrayBuffer(statsBytes(MAX_PORTS));
      const captureSab = new SharedArrayBuffer(captureRingBytes(CAPTURE_RING_BYTES));
      const eventsSab = new SharedArrayBuffer(captureRingBytes(EVENTS_RING_BYTES));
      const puntSab = new SharedArrayBuffer(captureRingBytes(PUNT_RING_BYTES));
      const init: WorkerInit = {
        index: i, eventfd, ctrl: this.ctrl.buffer as SharedArrayBuffer, stats: statsSab,
        fdb: this.fdb.sab, fdbConfig: this.fdb.cfg, maxPorts: MAX_PORTS, capture: captureSab, events: eventsSab,
        neigh: this.neigh.sab, neighConfig: this.neigh.cfg, ct: this.ct.sab, ctConfig: this.ct.cfg, punt: puntSab,
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
      this.workers.push({
        worker, eventfd, stats: new Float64Array(statsSab), capture: new CaptureRing(captureSab), events: new CaptureRing(eventsSab),
        punt: new CaptureRing(puntSab), rxPorts: 0, exited,
      });
    }
    await Promise.all(ready);
    this.agingTimer = setInterval(() => {
      const now = this.clock();
      this.fdb.age(now);
      this.neigh.age(now);
      this.ct.expire(now);
    }, 1000);
    this.agingTimer.unref();
  }

  /** Open a port and hand it to the workers. */
  async addPort(spec: PortSpec): Promise<PortHandle> {
    const id = this.freeId();
    let fd: number;
    let vnet: boolean;
    let name = spec.name;
    if (spec.kind === 'tap') {
      const t = this.io.openTap(spec.name, true);
      fd = t.fd; vnet = t.vnet; name = t.name;
    } else {
      const s = this.io.openPacket(spec.name, true);
      fd = s.fd; vnet = s.vnet;
    }
    if (!vnet) {
      this.io.close(fd);
      throw new Error(`${name}: the kernel refused virtio-net headers on this port; vsw needs them (Linux >= 3.13)`);
    }
    const vlans: PortVlans = spec.vlans ?? { untagged: spec.netId, pvid: spec.vlan ?? 0, tagged: [] };
    try {
      this.portTable.add(id, name, spec.netId, vlans);
    } catch (e) {
      this.io.close(fd);
      throw e;
    }
    const owner = this.workers.reduce((best, w, i) => (w.rxPorts < this.workers[best].rxPorts ? i : best), 0);
    const handle: PortHandle = { id, name, kind: spec.kind, netId: spec.netId, vnet, worker: owner, fd, vlans };
    this.portsById.set(id, handle);
    this.workers[owner].rxPorts++;
    this.clearStats(id);
    try {
      await this.broadcast((w) => ({
        type: 'addPort', seq: 0, id, name, fd, kind: spec.kind === 'tap' ? KIND_TAP : KIND_PACKET,
        vnet, netId: spec.netId, vlans, rx: w === owner,
      }));
    } catch (e) {
      await this.removePort(id).catch(() => undefined);
      throw e;
    }
    return handle;
  }

  /** Take a port out of every worker, forget its MACs, close its fd. */
  async removePort(id: number): Promise<void> {
    const h = this.portsById.get(id);
    if (!h) return;
    await this.broadcast(() => ({ type: 'removePort', seq: 0, id }));
    this.portTable.remove(id);
    this.fdb.flushPort(id);
    this.io.close(h.fd);
    this.portsById.delete(id);
    this.workers[h.worker].rxPorts--;
  }

  /** Change what a port carries (a trunk, as networks come and go). */
  async setPortVlans(id: number, vlans: PortVlans): Promise<void> {
    const h = this.portsById.get(id);
    if (!h) throw new Error(`no port ${id}`);
    this.portTable.setVlans(id, vlans);
    h.vlans = vlans;
    h.netId = vlans.untagged;
    await this.broadcast(() => ({ type: 'vlans', seq: 0, id, vlans }));
  }

  ports(): PortHandle[] {
    return [...this.portsById.values()];
  }

  port(id: number): PortHandle | undefined {
    return this.portsById.get(id);
  }

  fdbEntries(): FdbEntry[] {
    return this.fdb.entries();
  }

  fdbCounters(): FdbCounters {
    return this.fdb.counters();
  }

  now(): number {
    return this.clock();
  }

  /** Counters of one port, summed over the workers. */
  portCounters(id: number): PortCounters {
    const c: PortCounters = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: {} };
    const row = id * ST_ROW;
    for (const w of this.workers) {
      c.rxPackets += w.stats[row + ST_RX_PKTS];
      c.rxBytes += w.stats[row + ST_RX_BYTES];
      c.txPackets += w.stats[row + ST_TX_PKTS];
      c.txBytes += w.stats[row + ST_TX_BYTES];
      DROP_REASONS.forEach((r, i) => {
        const v = w.stats[row + ST_DROP0 + i];
        if (v) c.drops[r] = (c.drops[r] ?? 0) + v;
      });
    }
    return c;
  }

  /**
   * Replace every capture and live-trace session in the workers (workers/taps.ts). Rejects,
   * changing nothing, when a worker refuses one (e.g. a filter that does not compile).
   */
  async setTaps(sessions: TapSpec[], names: TapNames): Promise<void> {
    await this.broadcast(() => ({ type: 'taps', seq: 0, sessions, names }));
  }

  /** Captured frames since the last call, oldest first, and frames lost so far. */
  drainCaptures(): { frames: CapturedFrame[]; lost: number } {
    const frames = this.workers.flatMap((w) => w.capture.drain());
    frames.sort((a, b) => a.timeMs - b.timeMs);
    return { frames, lost: this.workers.reduce((sum, w) => sum + w.capture.lost(), 0) };
  }

  /**
   * MAC table changes (the workers' learning and moves, our aging) and connection events
   * (new ones from the workers, expired/removed ones from us) since the last call.
   */
  drainEvents(): { fdb: FdbEvent[]; ct: CtEvent[] } {
    const fdb: FdbEvent[] = [];
    const ct: CtEvent[] = [];
    for (const f of [...this.workers.flatMap((w) => w.events.drain()), ...this.localCt.drain()]) {
      if (f.dir >= CT_EVENT_BASE) ct.push(decodeCtEvent(f));
      else fdb.push(decodeFdbEvent(f));
    }
    fdb.push(...this.localEvents.splice(0));
    fdb.sort((a, b) => a.timeMs - b.timeMs);
    ct.sort((a, b) => a.timeMs - b.timeMs);
    return { fdb, ct };
  }

  /** The last router configuration sent to the workers (null before the first): dry-run traces route with it. */
  lastL3: L3Snapshot | null = null;

  /** Replace the router's configuration in every worker. */
  async setL3(snapshot: L3Snapshot): Promise<void> {
    this.lastL3 = snapshot;
    await this.broadcast(() => ({ type: 'l3', seq: 0, snapshot }));
  }

  /**
   * Call fn with every batch of frames the workers punt (DNS queries to a gateway), as soon
   * as they arrive (the workers notify a shared word; we wait on it without blocking).
   */
  onPunt(fn: (frames: CapturedFrame[]) => void): void {
    if (this.puntWaiting) throw new Error('onPunt: already set');
    this.puntWaiting = true;
    let seen = Atomics.load(this.ctrl, CTRL_PUNT);
    const loop = async (): Promise<void> => {
      while (!this.stopped) {
        // Atomics.waitAsync (Node >= 16) is not in this TypeScript lib yet.
        const w = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> | string } })
          .waitAsync(this.ctrl, CTRL_PUNT, seen, 500);
        if (w.async) await w.value;
        seen = Atomics.load(this.ctrl, CTRL_PUNT);
        const frames = this.workers.flatMap((wk) => wk.punt.drain());
        if (frames.length > 0) {
          try { fn(frames); } catch (e) { process.stderr.write(`vsw: punt handler: ${(e as Error).message}\n`); }
        }
      }
    };
    void loop();
  }

  /** DNS queries the workers answered themselves, by result (DNS_RESULTS order), summed. */
  workerDnsCounters(): number[] {
    const off = dnsCountersOffset(MAX_PORTS);
    const out = new Array<number>(DNS_WORDS).fill(0);
    for (const w of this.workers) for (let i = 0; i < DNS_WORDS; i++) out[i] += w.stats[off + i];
    return out;
  }

  /** Frames punted but lost because a ring was full. */
  puntLost(): number {
    return this.workers.reduce((sum, w) => sum + w.punt.lost(), 0);
  }

  /**
   * Send one Ethernet frame out of a port from the main thread (DNS answers, ARP probes).
   * Adds the all-zero virtio-net header the port expects, and the 802.1Q tag of network
   * `netId` (default: the port's own network) when the port carries it tagged. Returns false
   * when it was not sent (or the port does not carry that network).
   */
  sendFrame(portId: number, frame: Uint8Array, netId = this.portsById.get(portId)?.netId ?? -1): boolean {
    const h = this.portsById.get(portId);
    if (!h || this.stopped || frame.length < 14) return false;
    const vid = this.portTable.egressVid(portId, netId);
    if (vid < 0) return false;
    const hdr = h.vnet ? 10 : 0;
    const tag = vid > 0 ? 4 : 0;
    const buf = new Uint8Array(hdr + tag + frame.length);
    buf.set(frame.subarray(0, 12), hdr);
    if (tag) { buf[hdr + 12] = 0x81; buf[hdr + 13] = 0x00; buf[hdr + 14] = vid >>> 8; buf[hdr + 15] = vid & 0xff; }
    buf.set(frame.subarray(12), hdr + 12 + tag);
    try {
      return this.io.send(h.fd, h.kind === 'tap' ? KIND_TAP : KIND_PACKET, buf, Int32Array.of(0), Int32Array.of(buf.length), 1) === 1;
    } catch {
      return false;
    }
  }

  /** Frames each stage ended (gave a verdict to), summed over the workers. */
  stageCounters(): { stage: string; ended: number }[] {
    const off = stageCountersOffset(MAX_PORTS);
    return STAGE_NAMES.map((stage, i) => ({
      stage, ended: this.workers.reduce((sum, w) => sum + w.stats[off + i], 0),
    }));
  }

  workerCounters(): WorkerCounters[] {
    const off = workerCountersOffset(MAX_PORTS);
    return this.workers.map((w, i) => ({
      worker: i, ports: w.rxPorts,
      iterations: w.stats[off + WK_ITERATIONS], batches: w.stats[off + WK_BATCHES],
      frames: w.stats[off + WK_FRAMES], busyMs: w.stats[off + WK_BUSY_MS],
    }));
  }

  /** Stop the workers (they see the STOP word within one poll timeout), close every port. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.agingTimer) clearInterval(this.agingTimer);
    Atomics.store(this.ctrl, CTRL_STOP, 1);
    for (const w of this.workers) this.io.eventfdSignal(w.eventfd);
    const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 3000).unref());
    const all = Promise.all(this.workers.map((w) => w.exited));
    if ((await Promise.race([all, timeout])) === 'timeout') {
      await Promise.all(this.workers.map((w) => w.worker.terminate()));
    }
    for (const h of this.portsById.values()) this.io.close(h.fd);
    this.portsById.clear();
    for (const w of this.workers) this.io.close(w.eventfd);
    for (const p of this.pending.values()) p.reject(new Error('dataplane stopped'));
    this.pending.clear();
  }

  private freeId(): number {
    for (let i = 0; i < MAX_PORTS; i++) if (!this.portsById.has(i)) return i;
    throw new Error(`no free port: at most ${MAX_PORTS} ports`);
  }

  private clearStats(id: number): void {
    for (const w of this.workers) w.stats.fill(0, id * ST_ROW, (id + 1) * ST_ROW);
  }

  /** Send a message to every worker and wait for all acks. */
  private async broadcast(make: (worker: number) => ToWorker): Promise<void> {
    if (this.stopped) throw new Error('dataplane stopped');
    const acks = this.workers.map((w, i) => {
      const msg = make(i);
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
    });
    const answers = await Promise.all(acks);
    const failed = answers.find((a) => a.error);
    if (failed) throw new Error(`dataplane worker ${failed.worker}: ${failed.error}`);
  }

  private settle(m: AckMsg): void {
    const key = `${m.worker}:${m.seq}`;
    const p = this.pending.get(key);
    if (p) { this.pending.delete(key); p.resolve(m); }
  }
}
