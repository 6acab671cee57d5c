// The per-worker loop: poll the ports this worker receives from, pull a batch from each
// ready port, run the pipeline over every frame, and hand each verdict to egress
// (dataplane/egress.ts), which queues the frame for its port(s) in their form and sends each
// queue once per batch (zero copy: a tx queue holds offsets into the receive buffer). The
// loop is egress's device: transmit() is io.send plus the tx capture. Counters go to this
// worker's own stats rows; the main thread sums them.
//
// The loop never returns to the event loop: control messages are pulled synchronously
// (`receive`) when the eventfd in the poll set fires, and the loop ends when the main thread
// sets the STOP word. poll() has a finite timeout so a stop is seen even when idle.
//
// Link impairment (dataplane/impair/, vsw impair): a port impaired `out` has an Impairment
// on its egress port in every worker (egress queues its frames there); a port impaired `in`
// has one here, on the worker that receives from it: its frames are counted and captured
// as received, then offered to it instead of the pipeline. Each delayed frame waits in its
// port's queue; poll()'s timeout becomes the earliest deadline of this worker's queues, and
// after every wake-up releaseDue() sends what is due (out: through egress; in: through the
// pipeline, as a batch copied back into the receive slots), so one port's delay never holds
// up another port. With no impairment the timeout stays POLL_TIMEOUT_MS: an idle switch
// stays idle. Impairment's clock is performance.now() (ms, this thread's).
//
// Injected frames (vsw inject, vsw replay: docs/EXPERIMENTS.md) arrive as an `inject`
// control message (or a direct inject() call offline) and take forward()'s path as if the
// port had received them.
//
// VXLAN (docs/VXLAN.md): a VTEP socket (KIND_UDP, no network) is polled like any port, but
// serveVtep() decapsulates each datagram first: the VNI picks the network's overlay port
// (KIND_UDP + FORM_VXLAN, never polled: its fd is the raw sending socket), whose frame it
// then is -- counted, captured, learned with its VTEP, run through the pipeline as if it
// had arrived on that port. Malformed datagrams are named drops on the VTEP socket's port.

import type { Io } from './io';
import { MAX_BATCH, SLOT, KIND_UDP, FLAG_TRUNCATED, FLAG_PACKED, UDP_GRO_MAX, RX_HEADROOM } from './io';
import { Impairment, IMP_LOST, IMP_QUEUE_FULL, IMP_RATE_FULL, type ImpairNote } from '../dataplane/impair/impair';
import type { ImpairSpec } from '../dataplane/impair/spec';
import { VxlanPort } from '../dataplane/vxlan/port';
import type { ArpProxy } from '../dataplane/vxlan/arp-proxy';
import { markTcpGso, repairPartialChecksum, useChecksum } from '../dataplane/vxlan/segment';
import { coalesce } from '../dataplane/vxlan/gro';
import { parseVxlan, VX_RUNT, VXLAN_HDR_LEN } from '../dataplane/vxlan/header';
import { UDP_HDR_LEN } from '../dataplane/wire/udp';
import { macHi, macLo } from '../dataplane/wire/mac';
import { writeEmptyVnetHdr } from '../dataplane/wire/vnet';
import { copyBytes } from '../dataplane/wire/bytes';
import type { Fdb } from '../dataplane/tables/fdb';
import { PortTable } from '../dataplane/tables/ports';
import { OUT_DROP, OUT_LOCAL, Packet } from '../dataplane/packet';
import { L3Table, type L3Snapshot } from '../dataplane/tables/l3';
import { WorkerDns } from '../dataplane/l3/dns';
import { Taps } from './taps';
import type { Neigh } from '../dataplane/tables/neigh';
import type { Conntrack } from '../dataplane/tables/conntrack';
import { Pipeline } from '../dataplane/pipeline';
import { DROP } from '../dataplane/drops';
import type { Emitter, StageContext } from '../dataplane/stages/stage';
import { Egress, FORM_ETHERNET, FORM_VNET, FORM_VXLAN, type EgressPort, type TxDevice } from '../dataplane/egress';
import { VNET_HDR_LEN } from '../dataplane/wire/vnet';
import type { ToWorker, AckMsg, InjectTally } from './protocol';
import { DIR_RX, DIR_TX, type CaptureRing } from './capture-ring';
import {
  CTRL_BUSY_POLL_US, CTRL_PUNT, CTRL_STOP, DNS_WORDS, dnsCountersOffset, portRows, ST_DROP0, ST_ROW, ST_RX_BYTES, ST_RX_PKTS,
  MAX_STAGES, WK_BATCHES, WK_BUSY_MS, WK_FRAMES, WK_ITERATIONS, WK_SPIN_MS, stageCountersOffset, workerCountersOffset,
} from './shared';

const POLL_TIMEOUT_MS = 200;
/** How often the kernel's per-socket drop counters are collected. */
const KERNEL_STATS_MS = 1000;
/** Room for frames the router generates (ARP requests, ICMP errors), per batch. */
const GEN_SLOTS = 32;
const GEN_SLOT = 2048;
/**
 * Room for the tagged copies of flooded frames that also leave untagged, per batch; when
 * full, the queues are sent and it is reused (dataplane/egress.ts).
 */
// 1 MiB: it also holds the VXLAN copies (every overlay frame, and the ~47 segments of a
// 64 KB TCP frame cut to the overlay MTU), so a few super frames fit between flushes.
const SCRATCH_BYTES = 1024 * 1024;
/** Transmit queue of an overlay port: replicas and segments, sent in batches of this many. */
const VX_QUEUE = 256;
const GEN_OFF = SLOT * MAX_BATCH;
/** The longest frame inject() takes (a receive slot, less its headroom and a virtio-net header). */
export const maxInjectLen = SLOT - RX_HEADROOM - VNET_HDR_LEN;
const SCRATCH_OFF = GEN_OFF + GEN_SLOTS * GEN_SLOT;

/** A port as this worker sees it: its device, and (EgressPort) its form and transmit queue. */
export interface LoopPort extends EgressPort {
  fd: number;
  kind: number;
  /** Its frames start with a virtio-net header (as received; form FORM_VNET as sent). */
  vnet: boolean;
  rx: boolean;
  /** Copy its frames, both directions, to the capture ring. */
  capture: boolean;
  /** Link impairment of what it receives (vsw impair --direction in), on its receiving worker; absent = none. */
  impairIn?: Impairment;
}

export interface LoopDeps {
  io: Io;
  fdb: Fdb;
  ctrl: Int32Array;
  stats: Float64Array;
  eventfd: number;
  maxPorts: number;
  /** Pulls one pending control message, or undefined. */
  receive: () => ToWorker | undefined;
  /** Answers a control message. */
  reply: (msg: AckMsg) => void;
  worker: number;
  clock?: () => number;
  /** Where captured frames go (vsw capture). */
  capture?: CaptureRing;
  /** The router's shared tables; absent = a pure L2 switch. */
  l3?: { neigh: Neigh; ct: Conntrack };
  /** Where DNS queries to the gateway go (the main thread answers them). */
  punt?: CaptureRing;
}

export class WorkerLoop implements TxDevice<LoopPort> {
  readonly ports: PortTable;
  readonly pipeline: Pipeline;
  private readonly d: LoopDeps;
  private readonly ctx: StageContext;
  private readonly clock: () => number;

  // Receive slots, then the generated frames, then egress's scratch area.
  private readonly rxBuf = new Uint8Array(SCRATCH_OFF + SCRATCH_BYTES);
  /** Where every verdict becomes frames on ports; it owns the transmit queues. */
  private readonly egress: Egress<LoopPort>;
  private punted = false;
  readonly l3table = new L3Table();
  /** Capture and live-trace sessions (workers/taps.ts); `tapping`: any inside the pipeline. */
  private readonly taps: Taps;
  private tapping = false;
  private readonly rxOffs = new Int32Array(MAX_BATCH);
  private readonly rxLens = new Int32Array(MAX_BATCH);
  private readonly rxFlags = new Uint8Array(MAX_BATCH);
  /** Source addresses of received VXLAN datagrams. */
  // --- serveVtep (UDP GRO: a batch of MAX_BATCH reads can be up to UDP_GRO_MAX datagrams each) ---
  private readonly vtOffs = new Int32Array(MAX_BATCH * UDP_GRO_MAX);
  private readonly vtLens = new Int32Array(MAX_BATCH * UDP_GRO_MAX);
  private readonly vtFlags = new Uint8Array(MAX_BATCH * UDP_GRO_MAX);
  private readonly vtPacked = new Uint8Array(MAX_BATCH * UDP_GRO_MAX);
  private readonly rxAddrs = new Int32Array(MAX_BATCH * UDP_GRO_MAX);
  /** A decapsulated batch: each frame's virtio-net header offset, length, overlay port (-1: dropped or merged), GSO mark. */
  private readonly vxVnet = new Int32Array(MAX_BATCH * UDP_GRO_MAX);
  private readonly vxLen = new Int32Array(MAX_BATCH * UDP_GRO_MAX);
  private readonly vxPort = new Int32Array(MAX_BATCH * UDP_GRO_MAX);
  private readonly vxGso = new Uint8Array(MAX_BATCH * UDP_GRO_MAX);
  private readonly slotEnd = (i: number): number => (Math.floor(this.vxVnet[i] / SLOT) + 1) * SLOT;
  /** Each VTEP socket's overlay ports, by VNI. */
  private readonly vnis = new Map<number, Map<number, LoopPort>>();
  /** ARP proxies by network id (--arp-proxy), shared with the stages (StageContext.arpProxy). */
  private readonly arpProxies: (ArpProxy | undefined)[] = [];
  private lastL3: L3Snapshot | undefined;
  private readonly packets: Packet[] = Array.from({ length: MAX_BATCH }, () => new Packet());
  /** Ports with an impairment on this worker (either direction): their queues have deadlines. */
  private impaired: LoopPort[] = [];
  /** A released batch (direction in): each frame's delay and what impairment did (traces). */
  private readonly relDelay = new Float64Array(MAX_BATCH);
  private readonly relFlags = new Uint8Array(MAX_BATCH);
  private relN = 0;
  /** Copy a frame released by an in-direction impairment into the next receive slot. */
  private readonly inSink = (pool: Uint8Array, off: number, len: number, delay: number, flags: number): void => {
    const i = this.relN++;
    // Where recv() puts a frame (headroom for a VLAN tag), unless it is too long for that.
    const at = i * SLOT + (len <= SLOT - RX_HEADROOM ? RX_HEADROOM : 0);
    this.rxBuf.set(pool.subarray(off, off + len), at);
    this.rxOffs[i] = at;
    this.rxLens[i] = len;
    this.rxFlags[i] = 0;
    this.relDelay[i] = delay;
    this.relFlags[i] = flags;
  };
  /** What impairment did to the frame being traced (reused; filled only when a trace is on). */
  private readonly notes: ImpairNote[] = [];

  private pollFds = new Int32Array(1);
  private pollPorts: LoopPort[] = [];
  private revents = new Int32Array(1);
  private readonly wk: number;

  constructor(deps: LoopDeps) {
    this.d = deps;
    this.ports = new PortTable(deps.maxPorts);
    this.egress = new Egress<LoopPort>({
      buf: this.rxBuf, ports: this.ports, device: this, counters: portRows(deps.stats), vteps: deps.fdb,
      made: { off: GEN_OFF, slots: GEN_SLOTS, slotBytes: GEN_SLOT }, scratch: { off: SCRATCH_OFF, bytes: SCRATCH_BYTES },
    });
    this.clock = deps.clock ?? (() => (Date.now() / 1000) | 0);
    const nativeSum = deps.io.onesSum;
    if (typeof nativeSum === 'function') useChecksum((b, o, l, i) => nativeSum.call(deps.io, b, o, l, i));
    this.ctx = {
      fdb: deps.fdb, ports: this.ports, now: this.clock(), dryRun: false, arpProxy: this.arpProxies,
      l3: deps.l3 ? {
        table: this.l3table, neigh: deps.l3.neigh, ct: deps.l3.ct, emit: this.emitter(),
        dns: new WorkerDns(deps.stats.subarray(dnsCountersOffset(deps.maxPorts), dnsCountersOffset(deps.maxPorts) + DNS_WORDS)),
      } : null,
    };
    this.taps = new Taps(deps.capture, deps.worker);
    this.wk = workerCountersOffset(deps.maxPorts);
    const so = stageCountersOffset(deps.maxPorts);
    this.pipeline = new Pipeline(undefined, deps.stats.subarray(so, so + MAX_STAGES));
    this.rebuildPollSet();
  }

  /** Run until the STOP word is set. */
  run(): void {
    const { io, ctrl, stats } = this.d;
    let nextKernelStats = 0;
    // Adaptive busy-polling (--busy-poll W us): once frames come closer together than W (a
    // batch within W of the one before), poll() spins -- no sleep, yielding the CPU between
    // tries -- until W after the last batch, then sleeps as usual. A lone frame (an ARP, a
    // router solicitation now and then) starts no spin, so an idle switch stays idle. A frame
    // that comes during the spin skips the thread wake-up and finds the caches warm
    // (README "Where the time goes").
    let hotUntil = 0;
    let lastBatch = -Infinity;
    while (Atomics.load(ctrl, CTRL_STOP) === 0) {
      const spinUs = Atomics.load(ctrl, CTRL_BUSY_POLL_US);
      const before = spinUs > 0 ? performance.now() : 0;
      const left = hotUntil - before;
      const spin = left > 0 ? Math.ceil(left * 1000) : 0;
      const ready = io.poll(this.pollFds, this.pollFds.length, this.impaired.length === 0 ? POLL_TIMEOUT_MS : this.impairTimeout(), this.revents, spin);
      stats[this.wk + WK_ITERATIONS]++;
      const t0 = performance.now();
      if (spin > 0) stats[this.wk + WK_SPIN_MS] += Math.min(t0 - before, spin / 1000);
      if (ready > 0 && spinUs > 0) {
        if (t0 - lastBatch <= spinUs / 1000) hotUntil = t0 + spinUs / 1000;
        lastBatch = t0;
      }
      if (t0 >= nextKernelStats) {
        nextKernelStats = t0 + KERNEL_STATS_MS;
        this.collectKernelDrops();
      }
      if (ready > 0) {
        if (this.revents[0] !== 0) this.control();
        this.ctx.now = this.clock();
        const ports = this.pollPorts;
        for (let i = 0; i < ports.length; i++) {
          if (this.revents[i + 1] !== 0) this.serve(ports[i]);
        }
      } else if (this.impaired.length === 0) {
        continue;
      }
      if (this.impaired.length > 0) {
        this.ctx.now = this.clock();
        this.releaseDue(performance.now());
      }
      stats[this.wk + WK_BUSY_MS] += performance.now() - t0;
    }
  }

  /**
   * Frames the kernel dropped before we could read them (our receive ring or queue was
   * full) never reach the pipeline: collect them from the sockets' own counters.
   */
  collectKernelDrops(): void {
    const { io, stats } = this.d;
    for (const p of this.pollPorts) {
      try {
        const { drops } = io.packetStats(p.fd);
        if (drops > 0) stats[p.id * ST_ROW + ST_DROP0 + DROP['rx-queue-full']] += drops;
      } catch {
        // fd being closed: its port is on its way out
      }
    }
  }

  /**
   * Copy frames [0, n) of the receive buffer to the capture ring (Ethernet, no vnet header),
   * each tagged with the capture sessions whose filter it matches.
   */
  // `at`: milliseconds with a fraction, so frames of two workers sort right in the pcap.
  private captureBatch(port: LoopPort, offs: Int32Array, lens: Int32Array, n: number, dir: number,
    at = performance.timeOrigin + performance.now()): void {
    const ring = this.d.capture;
    if (!ring) return;
    const hdr = port.vnet ? VNET_HDR_LEN : 0;
    for (let i = 0; i < n; i++) {
      const mask = this.taps.wireMask(port.id, this.rxBuf, offs[i] + hdr, lens[i] - hdr);
      if (mask !== 0) ring.push(this.rxBuf, offs[i] + hdr, lens[i] - hdr, port.id, dir, at, mask);
    }
  }

  /** How the router sends the frames it makes (through egress), and hands DNS queries to the main thread. */
  private emitter(): Emitter {
    const egress = this.egress;
    return {
      buf: this.rxBuf,
      alloc: () => egress.alloc(),
      send: (off, len, port, net) => egress.emit(off, len, port, net),
      punt: (p) => {
        const ring = this.d.punt;
        if (!ring) return false;
        this.punted = true;
        return ring.push(p.buf, p.ethOff, p.ethLen, p.inPort, DIR_RX, 0);
      },
    };
  }

  /** The loop's view of a port (tests). */
  port(id: number): LoopPort | undefined {
    return this.egress.port(id);
  }

  /** Drain the eventfd and apply every pending control message. */
  control(): void {
    this.d.io.eventfdDrain(this.d.eventfd);
    for (let m = this.d.receive(); m !== undefined; m = this.d.receive()) {
      let error: string | undefined;
      let tally: InjectTally | undefined;
      try {
        if (m.type === 'inject') tally = this.inject(m.id, m.frames, m.lens);
        else this.apply(m);
      } catch (e) {
        error = (e as Error).message;
      }
      this.d.reply({ type: 'ack', worker: this.d.worker, seq: m.seq, error, ...(tally ? { tally } : {}) });
    }
  }

  apply(m: Exclude<ToWorker, { type: 'inject' }>): void {
    if (m.type === 'addPort' && m.vxlan !== undefined) {
      this.ports.add(m.id, m.name, m.netId, m.vlans ?? m.vlan ?? 0);
      const vx = new VxlanPort(m.vxlan, this.d.worker, VX_QUEUE);
      vx.net = m.netId;
      if (vx.arp !== null) this.addArpProxy(vx.arp, m.id, m.netId);
      const q: LoopPort = {
        id: m.id, form: FORM_VXLAN, fd: m.fd, kind: m.kind, vnet: false, rx: false, vx,
        capture: this.taps.onWire(m.id), txOffs: new Int32Array(VX_QUEUE), txLens: new Int32Array(VX_QUEUE), txN: 0,
      };
      this.egress.attach(q);
      let byVni = this.vnis.get(vx.vtep);
      if (byVni === undefined) this.vnis.set(vx.vtep, byVni = new Map());
      byVni.set(vx.vni, q);
      return;
    } else if (m.type === 'vxlanPeers') {
      this.egress.port(m.id)?.vx?.setPeers(m.peers);
      return;
    } else if (m.type === 'addPort') {
      this.ports.add(m.id, m.name, m.netId, m.vlans ?? m.vlan ?? 0);
      this.ports.setGuard(m.id, m.guard ?? null);
      this.egress.attach({
        id: m.id, form: m.vnet ? FORM_VNET : FORM_ETHERNET, fd: m.fd, kind: m.kind, vnet: m.vnet, rx: m.rx,
        capture: this.taps.onWire(m.id), txOffs: new Int32Array(MAX_BATCH), txLens: new Int32Array(MAX_BATCH), txN: 0,
      });
    } else if (m.type === 'vlans') {
      this.ports.setVlans(m.id, m.vlans);
      return;
    } else if (m.type === 'impair') {
      this.setImpair(m.id, m.in ?? null, m.out ?? null);
      return;
    } else if (m.type === 'removePort') {
      const vx = this.egress.port(m.id)?.vx;
      if (vx !== undefined) this.vnis.get(vx.vtep)?.delete(vx.vni);
      if (vx?.arp != null && this.arpProxies[vx.net] === vx.arp) this.arpProxies[vx.net] = undefined;
      this.ports.remove(m.id);
      this.egress.detach(m.id);
      this.impaired = this.impaired.filter((p) => p.id !== m.id);
    } else if (m.type === 'l3') {
      this.l3table.load(m.snapshot);
      this.lastL3 = m.snapshot;
      for (const a of this.arpProxies) a?.load(m.snapshot);
      this.ctx.l3?.dns?.load(m.snapshot.dns ?? { nets: [], endpoints: [] });
      return;
    } else if (m.type === 'taps') {
      this.taps.load(m.sessions, m.names, (id) => this.ports.name(id));
      for (const p of this.egress.attached()) p.capture = this.taps.onWire(p.id);
      this.tapping = this.taps.inPipeline;
      this.pipeline.tracer = this.tapping ? this.taps : null;
      return;
    }
    this.rebuildPollSet();
  }

  /** --arp-proxy on an overlay port's network: the forward stage answers ARP from it (dataplane/vxlan/arp-proxy.ts). */
  private addArpProxy(a: ArpProxy, port: number, net: number): void {
    a.net = net;
    a.overlay = port;
    a.load(this.lastL3);
    this.arpProxies[net] = a;
  }

  private rebuildPollSet(): void {
    const rx = this.egress.attached().filter((p) => p.rx);
    this.pollPorts = rx;
    this.pollFds = new Int32Array(rx.length + 1);
    this.pollFds[0] = this.d.eventfd;
    rx.forEach((p, i) => { this.pollFds[i + 1] = p.fd; });
    this.revents = new Int32Array(rx.length + 1);
  }

  /** Receive one batch from a port and forward it. Returns the number of frames. */
  serve(port: LoopPort): number {
    if (port.kind === KIND_UDP) return this.serveVtep(port);
    const { io, stats } = this.d;
    let n: number;
    try {
      n = io.recv(port.fd, port.kind, port.vnet, this.rxBuf, SLOT, MAX_BATCH, this.rxOffs, this.rxLens, this.rxFlags);
    } catch {
      // The interface is gone (e.g. a TAP deleted under us): stop polling it, or its
      // POLLERR would spin this loop. The control plane removes the port.
      stats[port.id * ST_ROW + ST_DROP0 + DROP['rx-error']]++;
      port.rx = false;
      this.rebuildPollSet();
      return 0;
    }
    if (n === 0) return 0;
    stats[this.wk + WK_BATCHES]++;
    stats[this.wk + WK_FRAMES] += n;
    this.egress.now = performance.now(); // the batch's time, for impairment
    this.forward(port, n);
    return n;
  }

  /**
   * Frames that come from elsewhere (vsw inject, vsw replay) handled exactly as if `portId`
   * had received them: copied into the receive slots (behind an all-zero virtio-net header
   * when the port has one), then forward()ed like a received batch -- counters, captures,
   * traces, pipeline, egress. `frames` holds them back to back from `start`, `lens` their lengths (at most
   * MAX_BATCH, each at most maxInjectLen); `nowMs` the batch's time for impairment (replay:
   * virtual). Returns what the pipeline decided for them.
   */
  inject(portId: number, frames: Uint8Array, lens: ArrayLike<number>, tally: InjectTally = { forwarded: 0, local: 0, impaired: 0, drops: [] },
    start = 0, nowMs = performance.now()): InjectTally {
    const port = this.egress.port(portId);
    if (port === undefined || port.kind === KIND_UDP) throw new Error(`port ${portId} cannot take injected frames${port ? ' (a VXLAN port)' : ': not attached'}`);
    const n = lens.length;
    if (n > MAX_BATCH) throw new RangeError(`at most ${MAX_BATCH} frames per injected batch`);
    const hdr = port.vnet ? VNET_HDR_LEN : 0;
    let from = start;
    for (let i = 0; i < n; i++) {
      const len = lens[i];
      if (len > maxInjectLen || from + len > frames.length) throw new RangeError(`injected frame ${i} is too long or cut (${len} bytes)`);
      const off = i * SLOT + RX_HEADROOM;
      if (hdr > 0) writeEmptyVnetHdr(this.rxBuf, off);
      copyBytes(this.rxBuf, off + hdr, frames, from, len);
      from += len;
      this.rxOffs[i] = off;
      this.rxLens[i] = len + hdr;
      this.rxFlags[i] = 0;
    }
    this.ctx.now = this.clock();
    this.egress.now = nowMs; // the batch's time, for impairment
    this.forward(port, n);
    // A port impaired `in` holds them: their verdicts come when they are released.
    if (port.impairIn !== undefined) { tally.impaired += n; return tally; }
    for (let i = 0; i < n; i++) {
      const p = this.packets[i];
      if (p.out === OUT_DROP) tally.drops[p.drop] = (tally.drops[p.drop] ?? 0) + 1;
      else if (p.out === OUT_LOCAL) tally.local++;
      else tally.forwarded++;
    }
    return tally;
  }

  /**
   * Decide and send frames [0, n) of the receive buffer, received on `port` (counted and
   * captured as received; a port impaired `in` offers them to its impairment instead).
   */
  forward(port: LoopPort, n: number): void {
    const { stats } = this.d;
    const row = port.id * ST_ROW;
    const hdr = port.vnet ? VNET_HDR_LEN : 0;
    if (port.capture) this.captureBatch(port, this.rxOffs, this.rxLens, n, DIR_RX);
    const imp = port.impairIn;
    if (imp !== undefined) {
      for (let i = 0; i < n; i++) {
        stats[row + ST_RX_PKTS]++;
        stats[row + ST_RX_BYTES] += this.rxLens[i] - hdr;
        imp.offer(this.rxBuf, this.rxOffs[i], this.rxLens[i], hdr, this.egress.now);
        if (this.tapping && (imp.lastFlags & (IMP_LOST | IMP_QUEUE_FULL | IMP_RATE_FULL)) !== 0) this.traceInDrop(port, i, imp.lastFlags);
      }
      return;
    }
    this.egress.reset();
    for (let i = 0; i < n; i++) {
      const p = this.packets[i];
      p.reset(this.rxBuf, this.rxOffs[i], this.rxLens[i], port.vnet, port.id, this.rxFlags[i]);
      stats[row + ST_RX_PKTS]++;
      stats[row + ST_RX_BYTES] += this.rxLens[i] - hdr;
      this.forwardOne(p);
    }
    this.endBatch();
  }

  /** One received frame through the pipeline (and the taps, when any are set) to egress. */
  private forwardOne(p: Packet, rel = -1): void {
    if (this.tapping) {
      this.taps.begin(p);
      this.pipeline.run(p, this.ctx);
      // What impairment does to it (a delay on the way in, out by an impaired port) is part of its trace.
      const notes = this.notes;
      notes.length = 0;
      if (rel >= 0) notes.push({ port: p.inPort, dir: 'in', flags: this.relFlags[rel], delay: this.relDelay[rel] });
      this.egress.notes = this.taps.tracing ? notes : null;
      this.egress.deliver(p);
      this.egress.notes = null;
      this.taps.end(p, this.ctx, notes);
    } else {
      this.pipeline.run(p, this.ctx);
      this.egress.deliver(p);
    }
  }

  /** A traced frame impairment dropped on the way in: its trace says so (it never reaches the pipeline). */
  private traceInDrop(port: LoopPort, i: number, flags: number): void {
    const p = this.packets[0];
    p.reset(this.rxBuf, this.rxOffs[i], this.rxLens[i], port.vnet, port.id, this.rxFlags[i]);
    this.taps.begin(p);
    if (!this.taps.tracing) return;
    p.dropWith(DROP[(flags & IMP_LOST) !== 0 ? 'impair-loss' : (flags & IMP_RATE_FULL) !== 0 ? 'impair-rate' : 'impair-queue-full']);
    this.notes.length = 0;
    this.notes.push({ port: port.id, dir: 'in', flags, delay: 0 });
    this.taps.end(p, this.ctx, this.notes);
  }

  /** When the next frame this worker's impairment queues hold is due (ms); Infinity: none waits (replay drives releaseDue by it). */
  nextImpairDeadline(): number {
    let next = Infinity;
    for (const p of this.impaired) {
      if (p.impair !== undefined) next = Math.min(next, p.impair.nextDeadline());
      if (p.impairIn !== undefined) next = Math.min(next, p.impairIn.nextDeadline());
    }
    return next;
  }

  /** poll()'s timeout: until the earliest deadline of this worker's impairment queues (ms, at most POLL_TIMEOUT_MS). */
  private impairTimeout(): number {
    const next = this.nextImpairDeadline();
    if (next === Infinity) return POLL_TIMEOUT_MS;
    const wait = next - performance.now();
    return wait <= 0 ? 0 : Math.min(POLL_TIMEOUT_MS, Math.ceil(wait));
  }

  /**
   * Send what this worker's impairment queues hold that is due at `now` (ms): out by
   * egress, in through the pipeline (up to a batch per port and call: the rest at the next).
   */
  releaseDue(now: number): void {
    const egress = this.egress;
    egress.now = now;
    this.ctx.now = this.clock(); // the stages' whole seconds (in-direction frames run the pipeline)
    let out = false;
    egress.reset();
    for (const p of this.impaired) {
      if (p.impair !== undefined && egress.release(p, now) > 0) out = true;
    }
    if (out) egress.flush();
    for (const p of this.impaired) this.releaseIn(p, now);
  }

  /** One batch of the frames `port`'s in-direction impairment holds that are due at `now`: through the pipeline. */
  private releaseIn(port: LoopPort, now: number): number {
    const imp = port.impairIn;
    if (imp === undefined || imp.nextDeadline() > now) return 0;
    this.relN = 0;
    imp.due(now, this.inSink, MAX_BATCH);
    const n = this.relN;
    this.egress.reset();
    for (let i = 0; i < n; i++) {
      const p = this.packets[i];
      p.reset(this.rxBuf, this.rxOffs[i], this.rxLens[i], port.vnet, port.id, 0);
      this.forwardOne(p, i);
    }
    this.endBatch();
    return n;
  }

  /** Everything `port`'s impairments hold, sent now (their settings change). */
  private releaseAll(port: LoopPort): void {
    const egress = this.egress;
    egress.now = performance.now();
    egress.reset();
    if (egress.release(port, Infinity) > 0) egress.flush();
    while (this.releaseIn(port, Infinity) > 0) { /* a batch at a time */ }
  }

  /**
   * Set (or, null, remove) a port's impairments. Frames the old ones still hold leave at
   * once: a change of settings loses nothing.
   */
  private setImpair(id: number, inSpec: ImpairSpec | null, outSpec: ImpairSpec | null): void {
    const q = this.egress.port(id);
    if (q === undefined) throw new Error(`no port ${id}`);
    const count = (reason: number): void => { this.d.stats[id * ST_ROW + ST_DROP0 + reason]++; };
    this.releaseAll(q);
    q.impair = outSpec === null ? undefined : new Impairment(outSpec, count);
    q.impairIn = inSpec === null || !q.rx ? undefined : new Impairment(inSpec, count);
    this.impaired = this.egress.attached().filter((p) => p.impair !== undefined || p.impairIn !== undefined);
  }

  /** After a batch: send what egress queued, and wake the main thread if frames were punted. */
  private endBatch(): void {
    this.egress.flush();
    if (this.punted) {
      this.punted = false;
      Atomics.add(this.d.ctrl, CTRL_PUNT, 1);
      Atomics.notify(this.d.ctrl, CTRL_PUNT);
    }
  }

  /** Receive one batch of VXLAN datagrams from a VTEP socket, decapsulate and forward them. */
  serveVtep(vtep: LoopPort): number {
    const { io, stats, fdb } = this.d;
    const buf = this.rxBuf;
    let n: number;
    try {
      n = io.recvUdp(vtep.fd, buf, SLOT, MAX_BATCH, this.vtOffs, this.vtLens, this.vtFlags, this.rxAddrs);
    } catch {
      stats[vtep.id * ST_ROW + ST_DROP0 + DROP['rx-error']]++;
      vtep.rx = false;
      this.rebuildPollSet();
      return 0;
    }
    if (n === 0) return 0;
    stats[this.wk + WK_BATCHES]++;
    stats[this.wk + WK_FRAMES] += n;
    const vrow = vtep.id * ST_ROW;
    const byVni = this.vnis.get(vtep.id);
    const egress = this.egress;
    egress.reset();
    egress.now = performance.now();
    const at = this.d.capture ? performance.timeOrigin + performance.now() : 0;
    const vx2 = this.vxVnet;
    const vxLen = this.vxLen;
    const vxPort = this.vxPort;
    const vxGso = this.vxGso;
    const packed = this.vtPacked;
    for (let i = 0; i < n; i++) {
      vxPort[i] = -1;
      const off = this.vtOffs[i];
      const len = this.vtLens[i];
      stats[vrow + ST_RX_PKTS]++;
      stats[vrow + ST_RX_BYTES] += len;
      packed[i] = this.vtFlags[i] & FLAG_PACKED;
      if ((this.vtFlags[i] & FLAG_TRUNCATED) !== 0) { stats[vrow + ST_DROP0 + DROP['vxlan-oversize']]++; continue; }
      const vni = parseVxlan(buf, off, len);
      if (vni < 0) {
        stats[vrow + ST_DROP0 + (vni === VX_RUNT ? DROP['vxlan-runt'] : DROP['vxlan-bad-flags'])]++;
        continue;
      }
      const q = byVni?.get(vni);
      const vx = q?.vx;
      if (q === undefined || vx === undefined) { stats[vrow + ST_DROP0 + DROP['vxlan-bad-vni']]++; continue; }
      const eth = off + VXLAN_HDR_LEN;
      const ethLen = len - VXLAN_HDR_LEN;
      // Larger than the MTU: a TCP super frame is passed on as one (a GSO header), anything else is dropped.
      const gso = ethLen > vx.mtu + 18;
      if (gso && (packed[i] !== 0 || !markTcpGso(buf, eth - VNET_HDR_LEN, eth, ethLen, vx.mtu))) { stats[vrow + ST_DROP0 + DROP['vxlan-oversize']]++; continue; }
      const row = q.id * ST_ROW;
      const sHi = macHi(buf, eth + 6);
      const sLo = macLo(buf, eth + 6);
      if (vx.isLocalMac(sHi, sLo)) { stats[row + ST_DROP0 + DROP['vxlan-host-mac']]++; continue; }
      const addr = this.rxAddrs[i];
      vx.countRx(addr, ethLen);
      // Learn where the MAC lives (a valid station address only; parse drops the others).
      if ((buf[eth + 6] & 1) === 0 && (sHi | sLo) !== 0) fdb.learnVtep(vx.net, 0, sHi, sLo, q.id, addr, this.ctx.now);
      if (vx.arp !== null) vx.arp.learnFrame(buf, eth, ethLen, this.ctx.now);
      // A decapsulated frame has complete checksums: an all-zero virtio-net header in front
      // (in the VXLAN header's place) makes it a vnet frame no port needs to copy.
      if (!gso) {
        repairPartialChecksum(buf, eth, ethLen);
        if (packed[i] === 0) writeEmptyVnetHdr(buf, eth - VNET_HDR_LEN); // packed: after coalescing, below
      }
      stats[row + ST_RX_PKTS]++;
      stats[row + ST_RX_BYTES] += ethLen;
      if (q.capture && this.d.capture) {
        const mask = this.taps.wireMask(q.id, buf, eth, ethLen);
        if (mask !== 0) this.d.capture.push(buf, eth, ethLen, q.id, DIR_RX, at, mask);
      }
      vx2[i] = eth - VNET_HDR_LEN;
      vxLen[i] = ethLen;
      vxPort[i] = q.id;
      vxGso[i] = gso ? 1 : 0;
    }
    // Consecutive segments of one TCP flow become one super frame (dataplane/vxlan/gro.ts).
    coalesce(buf, vx2, vxLen, vxPort, vxGso, n, this.slotEnd, packed);
    let c = 0;
    for (let i = 0; i < n; i++) {
      if (vxPort[i] < 0) continue;
      if (c === this.packets.length) { egress.flush(); egress.reset(); c = 0; }
      const p = this.packets[c++];
      if (packed[i] !== 0 && vxGso[i] === 0 && vxPort[i - 1] >= 0) {
        // Split from a GRO buffer, the datagram before it still a frame: no room for a
        // virtio-net header, so it goes on as a plain Ethernet frame (checksums complete).
        p.reset(buf, vx2[i] + VNET_HDR_LEN, vxLen[i], false, vxPort[i], 0);
      } else {
        if (packed[i] !== 0 && vxGso[i] === 0) writeEmptyVnetHdr(buf, vx2[i]);
        p.reset(buf, vx2[i], vxLen[i] + VNET_HDR_LEN, true, vxPort[i], 0);
      }
      p.vtep = this.rxAddrs[i];
      this.forwardOne(p);
    }
    this.endBatch();
    return n;
  }

  /** Egress's device: send q's queue (one sendmmsg), and copy what left to the capture ring. */
  transmit(q: LoopPort): number {
    const vx = q.vx;
    if (vx !== undefined) {
      const sentAt = q.capture ? performance.timeOrigin + performance.now() : 0;
      const io = this.d.io;
      const sent = vx.socks.length > 0 && io.sendVxlan !== undefined
        ? io.sendVxlan(vx.socks, this.rxBuf, q.txOffs, q.txLens, vx.txAddrs, vx.txSegs, q.txN, vx.dport)
        : io.sendUdp(q.fd, this.rxBuf, q.txOffs, q.txLens, vx.txAddrs, q.txN);
      const ring = this.d.capture;
      if (q.capture && ring) {
        // The inner frames (what a capture on the overlay port shows), once per frame, not per replica.
        let last = -1;
        for (let j = 0; j < sent; j++) {
          if (q.txOffs[j] === last) continue;
          last = q.txOffs[j];
          // A UDP GSO entry (txSegs > 0): datagrams of txSegs bytes behind one UDP header.
          const seg = vx.socks.length > 0 ? vx.txSegs[j] : 0;
          const end = q.txOffs[j] + q.txLens[j];
          for (let d = q.txOffs[j] + UDP_HDR_LEN; d < end; d += seg > 0 ? seg : end) {
            const o = d + VXLAN_HDR_LEN;
            const l = Math.min(seg > 0 ? seg : end, end - d) - VXLAN_HDR_LEN;
            const mask = this.taps.wireMask(q.id, this.rxBuf, o, l);
            if (mask !== 0) ring.push(this.rxBuf, o, l, q.id, DIR_TX, sentAt, mask);
          }
        }
      }
      return sent;
    }
    // A capture stamps the time before sending: the answer to this frame may be received
    // by another worker while our send is still returning.
    const sentAt = q.capture ? performance.timeOrigin + performance.now() : 0;
    const sent = this.d.io.send(q.fd, q.kind, this.rxBuf, q.txOffs, q.txLens, q.txN);
    if (q.capture && sent > 0) this.captureBatch(q, q.txOffs, q.txLens, sent, DIR_TX, sentAt);
    return sent;
  }
}
