// A VXLAN overlay segment as a worker sees it: the state behind a port of form FORM_VXLAN
// (dataplane/egress.ts). One per network with --vxlan; the network's peers (the VTEPs that
// get its broadcast, multicast and unknown unicast: head-end replication), its VNI and UDP
// port, the MACs that stay on this host, and per-peer counters.
//
// Peers have stable slots (1..MAX_PEERS-1) chosen by the main thread, so a peer removed and
// another added never inherit each other's counters; slot 0 counts VTEPs that are not
// configured peers (vsw accepts frames from any VTEP, as the kernel's vxlan does, and
// answers them at the address they came from once their MACs are learned).
//
// Per-peer counters: a SharedArrayBuffer of Float64 words, one region per worker (each
// worker writes only its own), MAX_PEERS rows of PEER_WORDS: rx packets, rx bytes, tx
// packets, tx bytes (inner frame bytes). The main thread sums the regions.

import { ArpProxy, type ArpProxySpec } from './arp-proxy';

export const MAX_PEERS = 64;
export const PEER_RX_PKTS = 0;
export const PEER_RX_BYTES = 1;
export const PEER_TX_PKTS = 2;
export const PEER_TX_BYTES = 3;
export const PEER_WORDS = 4;

/** Bytes of a per-peer counter buffer for `workers` workers. */
export function peerCounterBytes(workers: number): number {
  return workers * MAX_PEERS * PEER_WORDS * 8;
}

/** What the main thread tells the workers about an overlay segment (workers/protocol.ts). */
export interface VxlanSpec {
  vni: number;
  /** Destination UDP port of what it sends. */
  port: number;
  /** Port id of the VTEP socket that receives for it. */
  vtep: number;
  /** The inner MTU: received inner frames above mtu + 18 are vxlan-oversize. */
  mtu: number;
  /** Configured peers: address (signed 32-bit, as io.sendUdp takes it) and counter slot. */
  peers: { addr: number; slot: number }[];
  /** MACs (hi 16 bits, lo 32 bits) that are this host's alone: the network's host port and gateway. */
  localMacs: { hi: number; lo: number }[];
  /** Per-peer counters (peerCounterBytes). */
  counters: SharedArrayBuffer;
  /** --arp-proxy: the network's table of remote stations (dataplane/vxlan/arp-proxy.ts); absent = off. */
  arpProxy?: ArpProxySpec;
  /** The VTEP's UDP send sockets (io.sendVxlan, UDP GSO); none: the raw socket (io.sendUdp). */
  socks?: number[];
}

export class VxlanPort {
  readonly vni: number;
  readonly dport: number;
  readonly vtep: number;
  readonly mtu: number;
  /** The network it carries (set by the worker from the port's network). */
  net = -1;
  /** Peer addresses and their counter slots, [0, peerN). */
  peerAddrs = new Int32Array(0);
  peerSlots = new Int32Array(0);
  /** Destination of each queued datagram, beside the port's txOffs/txLens. */
  readonly txAddrs: Int32Array;
  /** Counter slot of each queued datagram, and its inner length (counted once sent). */
  readonly txSlots: Int32Array;
  readonly txInner: Int32Array;
  /** UDP GSO segment size of each queued entry (0: one datagram); used only with `socks`. */
  readonly txSegs: Int32Array;
  /** The VTEP's UDP send sockets; empty: send through the raw socket, one datagram per entry. */
  readonly socks: Int32Array;
  private readonly macHi: Int32Array;
  private readonly macLo: Int32Array;
  readonly counters: Float64Array;
  /** ARP answered locally for remote stations (--arp-proxy), or null. */
  readonly arp: ArpProxy | null;

  constructor(spec: VxlanSpec, worker: number, queue: number) {
    this.vni = spec.vni;
    this.dport = spec.port;
    this.vtep = spec.vtep;
    this.mtu = spec.mtu;
    this.setPeers(spec.peers);
    this.txAddrs = new Int32Array(queue);
    this.txSlots = new Int32Array(queue);
    this.txInner = new Int32Array(queue);
    this.txSegs = new Int32Array(queue);
    this.socks = Int32Array.from(spec.socks ?? []);
    this.macHi = Int32Array.from(spec.localMacs.map((m) => m.hi));
    this.macLo = Int32Array.from(spec.localMacs.map((m) => m.lo | 0));
    const words = MAX_PEERS * PEER_WORDS;
    this.counters = spec.counters.byteLength >= (worker + 1) * words * 8
      ? new Float64Array(spec.counters, worker * words * 8, words)
      : new Float64Array(words);
    this.arp = spec.arpProxy !== undefined ? new ArpProxy(spec.arpProxy) : null;
  }

  setPeers(peers: { addr: number; slot: number }[]): void {
    this.peerAddrs = Int32Array.from(peers.map((p) => p.addr | 0));
    this.peerSlots = Int32Array.from(peers.map((p) => p.slot));
  }

  /** The counter slot of a VTEP address (0 when it is not a configured peer). */
  slotOf(addr: number): number {
    const a = this.peerAddrs;
    for (let i = 0; i < a.length; i++) if (a[i] === addr) return this.peerSlots[i];
    return 0;
  }

  /** Is (hi, lo) one of this host's own MACs on the network (never carried across)? */
  isLocalMac(hi: number, lo: number): boolean {
    const h = this.macHi;
    for (let i = 0; i < h.length; i++) if (h[i] === hi && this.macLo[i] === (lo | 0)) return true;
    return false;
  }

  countRx(addr: number, bytes: number): void {
    const row = this.slotOf(addr) * PEER_WORDS;
    this.counters[row + PEER_RX_PKTS]++;
    this.counters[row + PEER_RX_BYTES] += bytes;
  }

  countTx(slot: number, bytes: number): void {
    const row = slot * PEER_WORDS;
    this.counters[row + PEER_TX_PKTS]++;
    this.counters[row + PEER_TX_BYTES] += bytes;
  }
}

/** Sum the workers' regions of a per-peer counter buffer: slot -> [rxPkts, rxBytes, txPkts, txBytes]. */
export function sumPeerCounters(sab: SharedArrayBuffer, workers: number, slot: number): number[] {
  const out = [0, 0, 0, 0];
  const words = MAX_PEERS * PEER_WORDS;
  for (let w = 0; w < workers; w++) {
    const v = new Float64Array(sab, w * words * 8, words);
    for (let k = 0; k < PEER_WORDS; k++) out[k] += v[slot * PEER_WORDS + k];
  }
  return out;
}
