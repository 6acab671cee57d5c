// The per-worker loop: poll the ports this worker receives from, pull a batch from each
// ready port, run the pipeline over every frame, then send, once per egress port, the frames
// that go there (zero copy: a tx queue holds offsets into the receive buffer). Counters go
// to this worker's own stats row; the main thread sums them.
//
// The loop never returns to the event loop: control messages are pulled synchronously
// (`receive`) when the eventfd in the poll set fires, and the loop ends when the main thread
// sets the STOP word. poll() has a finite timeout so a stop is seen even when idle.

import type { Io } from './io';
import { MAX_BATCH, SLOT } from './io';
import type { Fdb } from '../dataplane/tables/fdb';
import { PortTable } from '../dataplane/tables/ports';
import { Packet, OUT_DROP, OUT_FLOOD } from '../dataplane/packet';
import { L3Table } from '../dataplane/tables/l3';
import { WorkerDns } from '../dataplane/l3/dns';
import { Taps } from './taps';
import type { Neigh } from '../dataplane/tables/neigh';
import type { Conntrack } from '../dataplane/tables/conntrack';
import { Pipeline } from '../dataplane/pipeline';
import { DROP } from '../dataplane/drops';
import type { Emitter, StageContext } from '../dataplane/stages/stage';
import { VlanEgress, type TxSink } from '../dataplane/stages/vlan-egress';
import { VLAN_TAG_LEN } from '../dataplane/wire/vlan';
import type { ToWorker, AckMsg } from './protocol';
import { DIR_RX, DIR_TX, type CaptureRing } from './capture-ring';
import {
  CTRL_PUNT, CTRL_STOP, DNS_WORDS, dnsCountersOffset, ST_DROP0, ST_ROW, ST_RX_BYTES, ST_RX_PKTS, ST_TX_BYTES, ST_TX_PKTS,
  MAX_STAGES, WK_BATCHES, WK_BUSY_MS, WK_FRAMES, WK_ITERATIONS, stageCountersOffset, workerCountersOffset,
} from './shared';

const POLL_TIMEOUT_MS = 200;
/** How often the kernel's per-socket drop counters are collected. */
const KERNEL_STATS_MS = 1000;
const POLLIN = 0x1;
const VNET_HDR_LEN = 10;
/** Room for frames the router generates (ARP requests, ICMP errors), per batch. */
const GEN_SLOTS = 32;
const GEN_SLOT = 2048;
/**
 * Room for the tagged copies of flooded frames that also leave untagged (VLAN egress), per
 * batch; when full, the queues are sent and it is reused (dataplane/stages/vlan-egress.ts).
 */
const SCRATCH_BYTES = 256 * 1024;

export interface LoopPort {
  id: number;
  fd: number;
  kind: number;
  vnet: boolean;
  rx: boolean;
  /** Copy its frames, both directions, to the capture ring. */
  capture: boolean;
  /** Pending transmissions for this batch. */
  txOffs: Int32Array;
  txLens: Int32Array;
  txN: number;
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

export class WorkerLoop {
  readonly ports: PortTable;
  readonly pipeline: Pipeline;
  private readonly d: LoopDeps;
  private readonly byId: (LoopPort | undefined)[];
  private readonly ctx: StageContext;
  private readonly clock: () => number;

  // Receive slots, then the generated frames, then the VLAN egress scratch area.
  private readonly rxBuf = new Uint8Array(SLOT * MAX_BATCH + GEN_SLOTS * GEN_SLOT + SCRATCH_BYTES);
  private readonly egress = new VlanEgress(this.rxBuf, SLOT * MAX_BATCH + GEN_SLOTS * GEN_SLOT, SCRATCH_BYTES);
  /** The transmit queues, as VLAN egress sees them. */
  private readonly sink: TxSink = {
    tx: (port, off, len) => {
      const dst = this.byId[port];
      if (dst !== undefined) this.enqueue(dst, off, len);
    },
    flush: () => this.flush(),
  };
  /** Generated frames used this batch. */
  private genN = 0;
  private punted = false;
  readonly l3table = new L3Table();
  /** Capture and live-trace sessions (workers/taps.ts); `tapping`: any inside the pipeline. */
  private readonly taps: Taps;
  private tapping = false;
  private readonly rxOffs = new Int32Array(MAX_BATCH);
  private readonly rxLens = new Int32Array(MAX_BATCH);
  private readonly rxFlags = new Uint8Array(MAX_BATCH);
  private readonly packets: Packet[] = Array.from({ length: MAX_BATCH }, () => new Packet());

  private pollFds = new Int32Array(1);
  private pollPorts: LoopPort[] = [];
  private revents = new Int32Array(1);
  private readonly dirty: LoopPort[] = [];
  private readonly wk: number;

  constructor(deps: LoopDeps) {
    this.d = deps;
    this.ports = new PortTable(deps.maxPorts);
    this.byId = new Array(deps.maxPorts);
    this.clock = deps.clock ?? (() => (Date.now() / 1000) | 0);
    this.ctx = {
      fdb: deps.fdb, ports: this.ports, now: this.clock(), dryRun: false,
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
    while (Atomics.load(ctrl, CTRL_STOP) === 0) {
      const ready = io.poll(this.pollFds, this.pollFds.length, POLL_TIMEOUT_MS, this.revents);
      stats[this.wk + WK_ITERATIONS]++;
      const t0 = performance.now();
      if (t0 >= nextKernelStats) {
        nextKernelStats = t0 + KERNEL_STATS_MS;
        this.collectKernelDrops();
      }
      if (ready <= 0) continue;
      if (this.revents[0] !== 0) this.control();
      this.ctx.now = this.clock();
      const ports = this.pollPorts;
      for (let i = 0; i < ports.length; i++) {
        if (this.revents[i + 1] !== 0) this.serve(ports[i]);
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

  /** How the router sends the frames it makes, and hands DNS queries to the main thread. */
  private emitter(): Emitter {
    const base = SLOT * MAX_BATCH;
    const buf = this.rxBuf;
    return {
      buf,
      // Each generated frame keeps 4 bytes of headroom before its vnet header, for a VLAN tag.
      alloc: () => (this.genN < GEN_SLOTS ? base + (this.genN++) * GEN_SLOT + VLAN_TAG_LEN + VNET_HDR_LEN : -1),
      send: (off, len, port, net) => {
        // A generated frame has no offloads: an all-zero virtio-net header before it.
        buf.fill(0, off - VNET_HDR_LEN, off);
        const ports = this.ports;
        if (port >= 0) {
          const dst = this.byId[port];
          if (dst === undefined) return;
          if (ports.isTrunk(port) && ports.netOf[port] !== net) {
            this.egress.unicast(ports, this.sink, port, net, 0, off - VNET_HDR_LEN, len + VNET_HDR_LEN, true);
            return;
          }
          this.enqueue(dst, dst.vnet ? off - VNET_HDR_LEN : off, dst.vnet ? len + VNET_HDR_LEN : len);
          return;
        }
        if (ports.tagsOf(net) !== null) {
          this.egress.flood(ports, this.sink, net, -1, 0, off - VNET_HDR_LEN, len + VNET_HDR_LEN, true);
          return;
        }
        const members = ports.portsOf(net);
        for (let j = 0; j < members.length; j++) {
          const dst = this.byId[members[j]];
          if (dst !== undefined) this.enqueue(dst, dst.vnet ? off - VNET_HDR_LEN : off, dst.vnet ? len + VNET_HDR_LEN : len);
        }
      },
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
    return this.byId[id];
  }

  /** Drain the eventfd and apply every pending control message. */
  control(): void {
    this.d.io.eventfdDrain(this.d.eventfd);
    for (let m = this.d.receive(); m !== undefined; m = this.d.receive()) {
      let error: string | undefined;
      try {
        this.apply(m);
      } catch (e) {
        error = (e as Error).message;
      }
      this.d.reply({ type: 'ack', worker: this.d.worker, seq: m.seq, error });
    }
  }

  apply(m: ToWorker): void {
    if (m.type === 'addPort') {
      this.byId[m.id] = {
        id: m.id, fd: m.fd, kind: m.kind, vnet: m.vnet, rx: m.rx, capture: false,
        txOffs: new Int32Array(MAX_BATCH), txLens: new Int32Array(MAX_BATCH), txN: 0,
      };
      this.ports.add(m.id, m.name, m.netId, m.vlans ?? m.vlan ?? 0);
      this.byId[m.id]!.capture = this.taps.wire[m.id] !== undefined;
    } else if (m.type === 'vlans') {
      this.ports.setVlans(m.id, m.vlans);
      return;
    } else if (m.type === 'removePort') {
      this.ports.remove(m.id);
      this.byId[m.id] = undefined;
    } else if (m.type === 'l3') {
      this.l3table.load(m.snapshot);
      this.ctx.l3?.dns?.load(m.snapshot.dns ?? { nets: [], endpoints: [] });
      return;
    } else if (m.type === 'taps') {
      this.taps.load(m.sessions, m.names, (id) => this.ports.name(id));
      for (const p of this.byId) if (p !== undefined) p.capture = this.taps.wire[p.id] !== undefined;
      this.tapping = this.taps.inPipeline;
      this.pipeline.tracer = this.tapping ? this.taps : null;
      return;
    }
    this.rebuildPollSet();
  }

  private rebuildPollSet(): void {
    const rx = this.byId.filter((p): p is LoopPort => p !== undefined && p.rx);
    this.pollPorts = rx;
    this.pollFds = new Int32Array(rx.length + 1);
    this.pollFds[0] = this.d.eventfd;
    rx.forEach((p, i) => { this.pollFds[i + 1] = p.fd; });
    this.revents = new Int32Array(rx.length + 1);
  }

  /** Receive one batch from a port and forward it. Returns the number of frames. */
  serve(port: LoopPort): number {
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
    this.forward(port, n);
    return n;
  }

  /** Decide and send frames [0, n) of the receive buffer, received on `port`. */
  forward(port: LoopPort, n: number): void {
    const { stats } = this.d;
    const row = port.id * ST_ROW;
    const hdr = port.vnet ? VNET_HDR_LEN : 0;
    if (port.capture) this.captureBatch(port, this.rxOffs, this.rxLens, n, DIR_RX);
    this.genN = 0;
    this.egress.reset();
    const ports = this.ports;
    for (let i = 0; i < n; i++) {
      const p = this.packets[i];
      p.reset(this.rxBuf, this.rxOffs[i], this.rxLens[i], port.vnet, port.id, this.rxFlags[i]);
      stats[row + ST_RX_PKTS]++;
      stats[row + ST_RX_BYTES] += this.rxLens[i] - hdr;
      if (this.tapping) {
        this.taps.begin(p);
        this.pipeline.run(p, this.ctx);
        this.taps.end(p, this.ctx);
      } else {
        this.pipeline.run(p, this.ctx);
      }
      const out = p.out;
      if (out >= 0) {
        const dst = this.byId[out];
        // An access port of the frame's network: as it is. Else VLAN egress (a trunk tags it).
        if (dst !== undefined && ports.netOf[out] === p.netId) this.enqueue(dst, p.off, p.len);
        else if (dst === undefined || !this.egress.unicast(ports, this.sink, out, p.netId, p.prio, p.off, p.len, p.vnet)) {
          stats[row + ST_DROP0 + DROP['port-down']]++;
        }
      } else if (out === OUT_FLOOD) {
        if (ports.tagsOf(p.netId) !== null) {
          // Trunks in the network: each port gets its form (dataplane/stages/vlan-egress.ts).
          if (this.egress.flood(ports, this.sink, p.netId, port.id, p.prio, p.off, p.len, p.vnet) === 0) {
            stats[row + ST_DROP0 + DROP['no-egress']]++;
          }
          continue;
        }
        const members = ports.portsOf(p.netId);
        let sent = 0;
        for (let j = 0; j < members.length; j++) {
          const m = members[j];
          if (m === port.id) continue;
          const dst = this.byId[m];
          if (dst === undefined) continue;
          this.enqueue(dst, p.off, p.len);
          sent++;
        }
        if (sent === 0) stats[row + ST_DROP0 + DROP['no-egress']]++;
      } else if (out === OUT_DROP) {
        stats[row + ST_DROP0 + p.drop]++;
      }
      // OUT_LOCAL: consumed by the switch (counted by the stage that ended it).
    }
    this.flush();
    if (this.punted) {
      this.punted = false;
      Atomics.add(this.d.ctrl, CTRL_PUNT, 1);
      Atomics.notify(this.d.ctrl, CTRL_PUNT);
    }
  }

  private enqueue(dst: LoopPort, off: number, len: number): void {
    // A full queue (a batch plus generated frames) goes out before it overflows.
    if (dst.txN === dst.txOffs.length) this.flush();
    if (dst.txN === 0) this.dirty.push(dst);
    dst.txOffs[dst.txN] = off;
    dst.txLens[dst.txN] = len;
    dst.txN++;
  }

  /** Send every pending queue; count what the kernel would not take. */
  private flush(): void {
    const { io, stats } = this.d;
    for (let k = 0; k < this.dirty.length; k++) {
      const q = this.dirty[k];
      const row = q.id * ST_ROW;
      const hdr = q.vnet ? VNET_HDR_LEN : 0;
      let sent = 0;
      let reason = DROP['tx-refused'];
      // A capture stamps the time before sending: the answer to this frame may be received
      // by another worker while our send is still returning.
      const sentAt = q.capture ? performance.timeOrigin + performance.now() : 0;
      try {
        sent = io.send(q.fd, q.kind, this.rxBuf, q.txOffs, q.txLens, q.txN);
      } catch {
        reason = DROP['tx-error'];
      }
      let bytes = 0;
      for (let j = 0; j < sent; j++) bytes += q.txLens[j] - hdr;
      if (q.capture && sent > 0) this.captureBatch(q, q.txOffs, q.txLens, sent, DIR_TX, sentAt);
      stats[row + ST_TX_PKTS] += sent;
      stats[row + ST_TX_BYTES] += bytes;
      if (sent < q.txN) stats[row + ST_DROP0 + reason] += q.txN - sent;
      q.txN = 0;
    }
    this.dirty.length = 0;
  }
}
