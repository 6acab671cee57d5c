// The main thread's side of the dataplane: opens and closes ports and hands them to the
// workers (started and messaged by workers/pool.ts), owns the shared tables (FDB, neighbours,
// connections) and ages them, reads the workers' stats (workers/host-counters.ts) and rings,
// and sends the few frames this thread makes (sendFrame) through the same egress as the
// workers (dataplane/egress.ts). Injected frames (vsw inject) go to the port's own worker.
//
// How the work is split: each port is received by exactly one worker (the one with the
// fewest ports), and any worker may send on any port. Two containers talking therefore use
// two workers, one per direction, and a MAC table in shared memory makes what one worker
// learns visible to the other at once. A port is removed in two steps: every worker drops
// it (and acknowledges), then its fd is closed, so no worker can send to a reused fd.

import type { ImpairSpec } from '../dataplane/impair/spec';
import { loadIo, KIND_PACKET, KIND_TAP, KIND_UDP, SLOT, type Io } from './io';
import { MAX_PEERS, peerCounterBytes, sumPeerCounters, type VxlanSpec } from '../dataplane/vxlan/port';
import { ipValue } from '../dataplane/vxlan/header';
import { ArpProxy, arpProxySpec, type ArpProxyCounters } from '../dataplane/vxlan/arp-proxy';
import { NO_NET } from '../dataplane/tables/ports';
import { Fdb, fdbBytes, type FdbConfig, type FdbEntry, type FdbCounters } from '../dataplane/tables/fdb';
import { CaptureRing, captureRingBytes, type CapturedFrame } from './capture-ring';
import type { TapNames, TapSpec } from './taps';
import { CT_EVENT_BASE, ctEventWriter, decodeCtEvent, decodeFdbEvent, type CtEvent, type FdbEvent } from './events';
import { macToStringHiLo } from '../dataplane/wire/mac';
import { CTRL_BUSY_POLL_US, MAX_BUSY_POLL_US, CTRL_PUNT, CTRL_WORDS, MAX_PORTS } from './shared';
import { Neigh, NEIGH_DEFAULTS, neighBytes, type NeighConfig } from '../dataplane/tables/neigh';
import { Conntrack, CONNTRACK_DEFAULTS, conntrackBytes, type ConntrackConfig } from '../dataplane/tables/conntrack';
import type { L3Snapshot } from '../dataplane/tables/l3';
import { PortTable, type PortGuard, type PortVlans } from '../dataplane/tables/ports';
import { Egress, FORM_ETHERNET, FORM_VNET, type EgressPort } from '../dataplane/egress';
import { EVENTS_RING_BYTES, WorkerPool } from './pool';
import type { InjectTally } from './protocol';
import * as counters from './host-counters';
import type { PortCounters, WorkerCounters } from './host-counters';

export type { PortCounters, WorkerCounters } from './host-counters';

export interface PortSpec {
  /** Interface name: the veth host end (afpacket), or the TAP to create (tap). */
  name: string;
  kind: 'afpacket' | 'tap';
  netId: number;
  /** VLAN id of netId's network (an access port; 0 or absent: an untagged network). */
  vlan?: number;
  /** What the port carries, when more than one network untagged (a trunk, a tagged uplink). */
  vlans?: PortVlans;
  /** Port security: what a container port may send as its source (absent: not checked). */
  guard?: PortGuard;
}

export interface PortHandle {
  id: number;
  name: string;
  kind: 'afpacket' | 'tap' | 'vxlan' | 'vtep';
  netId: number;
  vnet: boolean;
  worker: number;
  fd: number;
  /** What it carries (802.1Q). */
  vlans: PortVlans;
}

export interface HostOptions {
  workers: number;
  fdb: Omit<FdbConfig, 'maxPorts'>;
  neigh?: Partial<NeighConfig>;
  conntrack?: Partial<ConntrackConfig>;
  io?: Io;
  clock?: () => number;
  /** --busy-poll: once batches come closer than this (us), a worker polls without sleeping until this long after the last (0: off). */
  busyPollUs?: number;
  /** --rx-ring: frames in each AF_PACKET port's receive ring (default: the addon's, 2048). */
  rxRingFrames?: number;
}

/** An overlay segment to open (addVxlan; docs/VXLAN.md). */
export interface VxlanPortSpec {
  /** The overlay port's name (vsw stats, capture --port). */
  name: string;
  netId: number;
  vni: number;
  localIp: string;
  port: number;
  mtu: number;
  peers: string[];
  /** The network's host-port and gateway MACs: this host's own, never sent or learned across. */
  localMacs: string[];
  /** --arp-proxy: answer ARP for known remote stations locally (dataplane/vxlan/arp-proxy.ts). */
  arpProxy?: boolean;
}

/** Counters of one VTEP an overlay port talks to (inner frame bytes). */
export interface VxlanPeerCounters {
  /** The peer's address, or 'other' for VTEPs that are not configured peers. */
  peer: string;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
}

/** A VTEP socket pair (rx UDP, tx raw), shared by the overlay ports on one address and UDP port. */
interface Vtep {
  key: string;
  /** Its port id (the rx socket is a port without a network: where malformed datagrams are counted). */
  id: number;
  tx: number;
  /** UDP send sockets (UDP GSO; io.sendVxlan), source ports 49152 up; empty: tx sends. */
  pool: number[];
  refs: number;
}

/** An overlay port's own state on this thread. */
interface Overlay {
  vtep: Vtep;
  vni: number;
  /** peer address -> counter slot (1..MAX_PEERS-1; 0 counts the others). */
  peers: Map<string, number>;
  counters: SharedArrayBuffer;
  /** --arp-proxy: the main thread's view of the workers' table and counters. */
  arp?: ArpProxy;
}

/** A port as this thread sends on it (DNS answers, ARP probes), through egress. */
interface HostPort extends EgressPort {
  fd: number;
  kind: number;
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
  private readonly pool: WorkerPool;
  private readonly portsById = new Map<number, PortHandle>();
  /** The workers' port table, mirrored (dry-run traces, tagging what this thread sends). */
  readonly portTable = new PortTable(MAX_PORTS);
  /** What this thread sends, one frame at a time (egress copies it into its buffer). */
  private readonly egress: Egress<HostPort>;
  /** Changes this thread makes to the MAC table (aging, evictions by flushes are not). */
  private readonly localEvents: FdbEvent[] = [];
  private agingTimer: NodeJS.Timeout | undefined;
  private readonly clock: () => number;
  private stopped = false;
  private readonly vteps = new Map<string, Vtep>();
  private readonly overlays = new Map<number, Overlay>();

  constructor(opts: HostOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > 16) {
      throw new RangeError(`workers must be 1..16, got ${opts.workers}`);
    }
    const spin = opts.busyPollUs ?? 0;
    if (!Number.isInteger(spin) || spin < 0 || spin > MAX_BUSY_POLL_US) {
      throw new RangeError(`busy-poll must be 0..${MAX_BUSY_POLL_US} microseconds, got ${spin}`);
    }
    this.opts = opts;
    this.io = opts.io ?? loadIo();
    this.clock = opts.clock ?? (() => (Date.now() / 1000) | 0);
    this.fdb = new Fdb({ ...opts.fdb, maxPorts: MAX_PORTS }, new SharedArrayBuffer(fdbBytes({ ...opts.fdb, maxPorts: MAX_PORTS })));
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
    Atomics.store(this.ctrl, CTRL_BUSY_POLL_US, spin);
    this.pool = new WorkerPool(this.io, this.ctrl);
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
    // The workers count what they send; this thread has no stats row of its own.
    const txBuf = new Uint8Array(SLOT);
    this.egress = new Egress<HostPort>({
      buf: txBuf, ports: this.portTable, counters: null, made: { off: 0, slots: 1, slotBytes: SLOT },
      device: { transmit: (q) => this.io.send(q.fd, q.kind, txBuf, q.txOffs, q.txLens, q.txN) },
    });
  }

  async start(): Promise<void> {
    await this.pool.start(this.opts.workers, {
      ctrl: this.ctrl.buffer as SharedArrayBuffer, fdb: this.fdb.sab, fdbConfig: this.fdb.cfg,
      neigh: this.neigh.sab, neighConfig: this.neigh.cfg, ct: this.ct.sab, ctConfig: this.ct.cfg,
    });
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
      const s = this.io.openPacket(spec.name, true, this.opts.rxRingFrames ? { frames: this.opts.rxRingFrames } : true);
      fd = s.fd; vnet = s.vnet;
    }
    // Offloads (partial checksums, GSO) travel in the header: a port without it would get
    // frames it cannot take (dataplane/egress.ts, the virtio-net header rule).
    if (!vnet) {
      this.io.close(fd);
      throw new Error(`${name}: the kernel refused virtio-net headers on this port; vsw needs them (Linux >= 3.13)`);
    }
    const vlans: PortVlans = spec.vlans ?? { untagged: spec.netId, pvid: spec.vlan ?? 0, tagged: [] };
    try {
      this.portTable.add(id, name, spec.netId, vlans);
      this.portTable.setGuard(id, spec.guard ?? null);
    } catch (e) {
      this.portTable.remove(id);
      this.io.close(fd);
      throw e;
    }
    const owner = this.pool.leastLoaded();
    const handle: PortHandle = { id, name, kind: spec.kind, netId: spec.netId, vnet, worker: owner, fd, vlans };
    const kind = spec.kind === 'tap' ? KIND_TAP : KIND_PACKET;
    this.portsById.set(id, handle);
    this.egress.attach({ id, form: vnet ? FORM_VNET : FORM_ETHERNET, fd, kind, txOffs: new Int32Array(1), txLens: new Int32Array(1), txN: 0 });
    this.pool.slots[owner].rxPorts++;
    counters.clearPortCounters(this.pool.slots, id);
    try {
      await this.pool.broadcast((w) => ({
        type: 'addPort', seq: 0, id, name, fd, kind, vnet, netId: spec.netId, vlans, rx: w === owner, guard: spec.guard,
      }));
    } catch (e) {
      await this.removePort(id).catch(() => undefined);
      throw e;
    }
    return handle;
  }

  /** Take a port out of every worker, forget its MACs, close its fd. */
  async removePort(id: number): Promise<void> {
    if (this.overlays.has(id)) return this.removeVxlan(id);
    const h = this.portsById.get(id);
    if (!h) return;
    await this.pool.broadcast(() => ({ type: 'removePort', seq: 0, id }));
    this.egress.detach(id);
    this.portTable.remove(id);
    this.fdb.flushPort(id);
    this.io.close(h.fd);
    this.portsById.delete(id);
    this.pool.slots[h.worker].rxPorts--;
  }

  // --- VXLAN overlay segments (docs/VXLAN.md) ---

  /**
   * Open an overlay port for a network: the VTEP socket for (localIp, port) is opened the
   * first time (shared by every network on it, told apart by VNI) and received by one
   * worker. Throws (opening nothing) when the address is not on this host (EADDRNOTAVAIL),
   * the port is taken (EADDRINUSE), a network on this VTEP already has the VNI, or there
   * are more than MAX_PEERS-1 peers.
   */
  async addVxlan(spec: VxlanPortSpec): Promise<PortHandle> {
    const key = `${spec.localIp}:${spec.port}`;
    for (const o of this.overlays.values()) {
      if (o.vtep.key === key && o.vni === spec.vni) throw new Error(`VNI ${spec.vni} is already carried on ${key}`);
    }
    if (spec.peers.length > MAX_PEERS - 1) throw new RangeError(`at most ${MAX_PEERS - 1} peers`);
    let v = this.vteps.get(key);
    if (v === undefined) v = await this.openVtep(key, spec.localIp, spec.port);
    v.refs++;
    const id = this.freeId();
    const vlans: PortVlans = { untagged: spec.netId, pvid: 0, tagged: [] };
    const peers = new Map<string, number>();
    spec.peers.forEach((p, i) => peers.set(p, i + 1));
    const peerSab = new SharedArrayBuffer(peerCounterBytes(this.opts.workers));
    const vx: VxlanSpec = {
      vni: spec.vni, port: spec.port, vtep: v.id, mtu: spec.mtu, peers: peerList(peers), counters: peerSab, socks: v.pool,
      localMacs: spec.localMacs.map((m) => {
        const b = m.split(':').map((x) => parseInt(x, 16));
        return { hi: (b[0] << 8) | b[1], lo: ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) >>> 0 };
      }),
    };
    if (spec.arpProxy === true) vx.arpProxy = arpProxySpec(this.opts.fdb.agingSeconds);
    const owner = this.portsById.get(v.id)?.worker ?? 0;
    const handle: PortHandle = { id, name: spec.name, kind: 'vxlan', netId: spec.netId, vnet: false, worker: owner, fd: v.tx, vlans };
    this.portTable.add(id, spec.name, spec.netId, vlans);
    this.portsById.set(id, handle);
    this.overlays.set(id, { vtep: v, vni: spec.vni, peers, counters: peerSab, arp: vx.arpProxy ? new ArpProxy(vx.arpProxy) : undefined });
    counters.clearPortCounters(this.pool.slots, id);
    try {
      await this.pool.broadcast(() => ({
        type: 'addPort', seq: 0, id, name: spec.name, fd: v.tx, kind: KIND_UDP, vnet: false, netId: spec.netId, vlans, rx: false, vxlan: vx,
      }));
    } catch (e) {
      await this.removeVxlan(id).catch(() => undefined);
      throw e;
    }
    return handle;
  }

  private async openVtep(key: string, localIp: string, port: number): Promise<Vtep> {
    const s = this.io.openUdp(localIp, port);
    const id = this.freeId();
    const name = `vtep-${port}`;
    const none: PortVlans = { untagged: NO_NET, pvid: 0, tagged: [] };
    const owner = this.pool.leastLoaded();
    const handle: PortHandle = { id, name, kind: 'vtep', netId: NO_NET, vnet: false, worker: owner, fd: s.rx, vlans: none };
    this.portTable.add(id, name, NO_NET, none);
    this.portsById.set(id, handle);
    this.pool.slots[owner].rxPorts++;
    counters.clearPortCounters(this.pool.slots, id);
    const v: Vtep = { key, id, tx: s.tx, pool: s.pool ?? [], refs: 0 };
    this.vteps.set(key, v);
    try {
      await this.pool.broadcast((w) => ({
        type: 'addPort', seq: 0, id, name, fd: s.rx, kind: KIND_UDP, vnet: false, netId: NO_NET, vlans: none, rx: w === owner,
      }));
    } catch (e) {
      await this.closeVtep(v).catch(() => undefined);
      throw e;
    }
    return v;
  }

  private async closeVtep(v: Vtep): Promise<void> {
    this.vteps.delete(v.key);
    await this.removePort(v.id);
    this.io.close(v.tx);
    for (const fd of v.pool) this.io.close(fd);
  }

  /** Close an overlay port (and its VTEP socket when no other network uses it). */
  async removeVxlan(id: number): Promise<void> {
    const o = this.overlays.get(id);
    const h = this.portsById.get(id);
    if (!o || !h) return;
    await this.pool.broadcast(() => ({ type: 'removePort', seq: 0, id }));
    this.portTable.remove(id);
    this.fdb.flushPort(id);
    this.portsById.delete(id);
    this.overlays.delete(id);
    if (--o.vtep.refs === 0) await this.closeVtep(o.vtep);
  }

  /** Replace an overlay port's peers (a kept peer keeps its counters). */
  async setVxlanPeers(id: number, peers: string[]): Promise<void> {
    const o = this.overlays.get(id);
    if (!o) throw new Error(`no overlay port ${id}`);
    if (peers.length > MAX_PEERS - 1) throw new RangeError(`at most ${MAX_PEERS - 1} peers`);
    const next = new Map<string, number>();
    for (const p of peers) if (o.peers.has(p)) next.set(p, o.peers.get(p) as number);
    const used = new Set(next.values());
    for (const p of peers) {
      if (next.has(p)) continue;
      let slot = 1;
      while (used.has(slot)) slot++;
      used.add(slot);
      // A new peer's slot starts from zero.
      for (let w = 0; w < this.opts.workers; w++) new Float64Array(o.counters, (w * MAX_PEERS + slot) * 4 * 8, 4).fill(0);
      next.set(p, slot);
    }
    const gone = [...o.peers.keys()].filter((p) => !next.has(p));
    o.peers = next;
    const list = peerList(next);
    await this.pool.broadcast(() => ({ type: 'vxlanPeers', seq: 0, id, peers: list }));
    // What was learned behind a removed peer goes too (it is learned again if it keeps sending).
    for (const p of gone) this.fdb.flushVtep(id, ipValue(p));
  }

  /** Per-VTEP counters of an overlay port: each configured peer, then 'other'. */
  vxlanPeerCounters(id: number): VxlanPeerCounters[] {
    const o = this.overlays.get(id);
    if (!o) return [];
    const row = (peer: string, slot: number): VxlanPeerCounters => {
      const [rxPackets, rxBytes, txPackets, txBytes] = sumPeerCounters(o.counters, this.opts.workers, slot);
      return { peer, rxPackets, rxBytes, txPackets, txBytes };
    };
    return [...[...o.peers].map(([p, s]) => row(p, s)), row('other', 0)];
  }

  /** An overlay port's ARP proxy counters (--arp-proxy), or undefined when it has none. */
  vxlanArpProxy(id: number): ArpProxyCounters | undefined {
    return this.overlays.get(id)?.arp?.counters(this.clock());
  }

  /**
   * A static ARP proxy entry of an overlay port (`fdb add ... --ip`): ip -> mac, or with
   * mac's entries removed when ip is undefined. false: the port has no proxy, or refused.
   */
  vxlanArpStatic(id: number, mac: string, ip?: string): boolean {
    const a = this.overlays.get(id)?.arp;
    if (a === undefined) return false;
    const b = mac.split(':').map((x) => parseInt(x, 16));
    const hi = (b[0] << 8) | b[1];
    const lo = ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) >>> 0;
    a.removeStatic(hi, lo);
    return ip === undefined || a.addStatic(ipValue(ip), hi, lo);
  }

  /** Change what a port carries (a trunk, as networks come and go). */
  async setPortVlans(id: number, vlans: PortVlans): Promise<void> {
    const h = this.portsById.get(id);
    if (!h) throw new Error(`no port ${id}`);
    this.portTable.setVlans(id, vlans);
    h.vlans = vlans;
    h.netId = vlans.untagged;
    await this.pool.broadcast(() => ({ type: 'vlans', seq: 0, id, vlans }));
  }

  /** A port's link impairment (dataplane/impair/): each direction's spec, or absent for none. */
  async setImpair(id: number, spec: { in?: ImpairSpec; out?: ImpairSpec }): Promise<void> {
    if (!this.portsById.has(id)) throw new Error(`no port ${id}`);
    await this.pool.broadcast(() => ({ type: 'impair', seq: 0, id, in: spec.in, out: spec.out }));
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
    return counters.portCounters(this.pool.slots, id);
  }

  /** Frames each stage ended (gave a verdict to), summed over the workers. */
  stageCounters(): { stage: string; ended: number }[] {
    return counters.stageCounters(this.pool.slots);
  }

  workerCounters(): WorkerCounters[] {
    return counters.workerCounters(this.pool.slots);
  }

  /** DNS queries the workers answered themselves, by result (DNS_RESULTS order), summed. */
  workerDnsCounters(): number[] {
    return counters.workerDnsCounters(this.pool.slots);
  }

  /**
   * Replace every capture and live-trace session in the workers (workers/taps.ts). Rejects,
   * changing nothing, when a worker refuses one (e.g. a filter that does not compile).
   */
  async setTaps(sessions: TapSpec[], names: TapNames): Promise<void> {
    await this.pool.broadcast(() => ({ type: 'taps', seq: 0, sessions, names }));
  }

  /** Captured frames since the last call, oldest first, and frames lost so far. */
  drainCaptures(): { frames: CapturedFrame[]; lost: number } {
    const slots = this.pool.slots;
    const frames = slots.flatMap((w) => w.capture.drain());
    frames.sort((a, b) => a.timeMs - b.timeMs);
    return { frames, lost: slots.reduce((sum, w) => sum + w.capture.lost(), 0) };
  }

  /**
   * MAC table changes (the workers' learning and moves, our aging) and connection events
   * (new ones from the workers, expired/removed ones from us) since the last call.
   */
  drainEvents(): { fdb: FdbEvent[]; ct: CtEvent[] } {
    const fdb: FdbEvent[] = [];
    const ct: CtEvent[] = [];
    for (const f of [...this.pool.slots.flatMap((w) => w.events.drain()), ...this.localCt.drain()]) {
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
    await this.pool.broadcast(() => ({ type: 'l3', seq: 0, snapshot }));
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
        const frames = this.pool.slots.flatMap((wk) => wk.punt.drain());
        if (frames.length > 0) {
          try { fn(frames); } catch (e) { process.stderr.write(`vsw: punt handler: ${(e as Error).message}\n`); }
        }
      }
    };
    void loop();
  }

  /** Frames punted but lost because a ring was full. */
  puntLost(): number {
    return this.pool.slots.reduce((sum, w) => sum + w.punt.lost(), 0);
  }

  /**
   * Send one Ethernet frame out of a port from the main thread (DNS answers, ARP probes),
   * through egress (dataplane/egress.ts): in network `netId` (default: the port's own), so
   * tagged when the port carries that network tagged, with the port's device header (an
   * all-zero virtio-net header). Returns false when it was not sent (or the port does not
   * carry that network).
   */
  sendFrame(portId: number, frame: Uint8Array, netId = this.portsById.get(portId)?.netId ?? -1): boolean {
    return !this.stopped && this.egress.sendNow(frame, portId, netId);
  }

  /**
   * Frames to handle as if port `id` had received them (vsw inject): one batch (at most
   * MAX_BATCH, back to back in `frames`) to the worker that receives from the port, which
   * runs them through the whole pipeline (workers/loop.ts inject). Resolves with what the
   * pipeline decided for them.
   */
  async inject(id: number, frames: Uint8Array, lens: number[]): Promise<InjectTally> {
    const h = this.portsById.get(id);
    if (!h) throw new Error(`no port ${id}`);
    const ack = await this.pool.request(h.worker, { type: 'inject', seq: 0, id, frames, lens });
    return ack.tally ?? { forwarded: 0, local: 0, impaired: 0, drops: [] };
  }

  /** Stop the workers (they see the STOP word within one poll timeout), close every port. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.agingTimer) clearInterval(this.agingTimer);
    await this.pool.stop();
    for (const h of this.portsById.values()) {
      this.egress.detach(h.id);
      if (h.kind !== 'vxlan') this.io.close(h.fd); // an overlay port's fd is its VTEP's tx socket
    }
    for (const v of this.vteps.values()) {
      this.io.close(v.tx);
      for (const fd of v.pool) this.io.close(fd);
    }
    this.vteps.clear();
    this.overlays.clear();
    this.portsById.clear();
    this.pool.release();
  }

  private freeId(): number {
    for (let i = 0; i < MAX_PORTS; i++) if (!this.portsById.has(i)) return i;
    throw new Error(`no free port: at most ${MAX_PORTS} ports`);
  }
}

/** Peers as the workers take them: address as a signed 32-bit number, counter slot. */
function peerList(peers: Map<string, number>): { addr: number; slot: number }[] {
  return [...peers].map(([p, slot]) => ({ addr: ipValue(p), slot }));
}
