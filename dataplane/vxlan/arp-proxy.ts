// ARP reduction on a VXLAN network (`vsw network create --vxlan VNI --arp-proxy`), the Linux
// vxlan device's `proxy` flag: an ARP request from a local container for a remote station
// whose address this host knows is answered here, out of the asking port, instead of being
// replicated to every peer. Off by default. docs/VXLAN.md "ARP proxy".
//
// What is known: per network, remote stations' IPv4 -> MAC, learned on the VTEP's worker
// (workers/loop.ts serveVtep) from decapsulated frames: an ARP packet's sender fields, an
// IPv4 packet's source address with the frame's source MAC. Only addresses inside the
// network's subnet (when the router's snapshot gives it), never 0.0.0.0 (RFC 5227 probes),
// never the switch's own addresses nor a local container's, never a multicast, broadcast or
// all-zero MAC.
//
// Table: a tables/neigh.ts table (its storage, lock-free reads and bounds) in a
// SharedArrayBuffer per network, keyed by (0, IPv4). Aged like the FDB's remote entries: an
// entry not confirmed for the FDB's agingSeconds is no longer used (neigh's STALE), and is
// the first to be evicted when the table is full. No aging pass is needed.
//
// Answer (dataplane/stages/forward.ts, for a broadcast ARP on a network with a proxy): a
// request (Ethernet/IPv4, op 1) that did not come from the overlay, is not gratuitous
// (sender = target address), whose target is not a local container's or the switch's, found
// here fresh, AND whose MAC the FDB still holds behind this network's overlay port (so a
// station that aged out of the FDB or moved to this host is never answered for). The reply
// is written in place (l3/frames.ts arpReplyInPlace: the remote MAC as sender) and sent back
// to the asking port by egress like any verdict. Everything else is flooded as without the
// proxy (unlike the kernel, which drops a request it cannot answer: vsw has no control plane
// to fill the table). A dry run decides the same and changes nothing.
//
// Counters (one SharedArrayBuffer of Int32, written with Atomics by any worker): answered,
// flooded (requests for a remote address that were not answered: not known, stale, or no
// longer behind a VTEP), local (requests for a local container's or the switch's address,
// left to their owner).

import { Neigh, NEIGH_LEARN_FAILED, NEIGH_LEARN_REFUSED, NEIGH_REACHABLE, neighBytes, type NeighConfig } from '../tables/neigh';
import type { L3Snapshot } from '../tables/l3';
import type { Packet } from '../packet';
import type { StageContext } from '../stages/stage';
import { arpReplyInPlace } from '../l3/frames';
import { ArpView, ARP_OP_REQUEST } from '../wire/arp';
import { ETH_HDR_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetView } from '../wire/ethernet';
import { Ipv4View } from '../wire/ipv4';
import { ipToString } from '../wire/ip';
import { isMulticastHi, macToStringHiLo } from '../wire/mac';
import { VNET_HDR_LEN, writeEmptyVnetHdr } from '../wire/vnet';
import { outcome } from '../router/outcome';
import { ipValue } from './header';

/** Default cap of entries per network. */
export const ARP_PROXY_ENTRIES = 1024;

const C_ANSWERED = 0;
const C_FLOODED = 1;
const C_LOCAL = 2;
const C_WORDS = 4;

/** What the main thread gives the workers (in the overlay port's VxlanSpec). */
export interface ArpProxySpec {
  table: SharedArrayBuffer;
  /** Static entries (`vsw fdb add NET MAC --vtep IP --ip ADDR`): never aged, never learned over. */
  statics: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  maxEntries: number;
  /** Entries unconfirmed for longer are not used (the FDB's agingSeconds). */
  agingSeconds: number;
}

export interface ArpProxyCounters {
  answered: number;
  flooded: number;
  local: number;
  /** Fresh entries (confirmed within agingSeconds). */
  entries: number;
}

export interface ArpProxyEntry { ip: string; mac: string; ageSeconds: number }

/** A new spec (main thread, workers/host.ts addVxlan). */
export function arpProxySpec(agingSeconds: number, maxEntries = ARP_PROXY_ENTRIES): ArpProxySpec {
  const cfg = neighConfig(agingSeconds, maxEntries);
  return { table: new SharedArrayBuffer(neighBytes(cfg)), statics: new SharedArrayBuffer(neighBytes(cfg)), counters: new SharedArrayBuffer(C_WORDS * 4), maxEntries, agingSeconds };
}

function neighConfig(agingSeconds: number, maxEntries: number): NeighConfig {
  // REACHABLE for agingSeconds, then STALE (not used); retries and probes: never solicited.
  return { maxEntries, reachableSeconds: agingSeconds, staleSeconds: 0, retrySeconds: 1, maxProbes: 1 };
}

/** Answered locally: the reply (the remote station's MAC) goes back to the asking port. */
export const L3_ARP_PROXY_REPLY = outcome('arp-proxy-reply', (name, t) => `${name}:${t.egress}`);
/** A request for a remote address the proxy could not answer: flooded to the peers as without it. */
export const L3_ARP_PROXY_FLOOD = outcome('arp-proxy-flood', (name, t) => `${name}:${t.egress}`);

/** The confirmation time of a static entry: always fresh (now - STATIC_T < 0). */
const STATIC_T = 0x7fffffff;

export class ArpProxy {
  readonly table: Neigh;
  readonly statics: Neigh;
  readonly agingSeconds: number;
  /** The network and its overlay port (set by the worker loop). */
  net = -1;
  overlay = -1;
  private readonly c: Int32Array;
  /** The subnet (0/0: unknown, everything is accepted) and the addresses that are this host's. */
  private subnet = 0;
  private mask = 0;
  private local = new Set<number>();
  private readonly eth = new EthernetView();
  private readonly arp = new ArpView();
  private readonly ip = new Ipv4View();
  /** What the last answer() decided, for the trace: the target and the MAC answered with. */
  lastIp = 0;
  lastHi = 0;
  lastLo = 0;

  constructor(spec: ArpProxySpec) {
    this.table = new Neigh(neighConfig(spec.agingSeconds, spec.maxEntries), spec.table);
    this.statics = new Neigh(neighConfig(spec.agingSeconds, spec.maxEntries), spec.statics);
    this.agingSeconds = spec.agingSeconds;
    this.c = new Int32Array(spec.counters, 0, C_WORDS);
  }

  /** The router's snapshot: this network's subnet, and the addresses of this host (gateway, host port, containers). */
  load(snap: L3Snapshot | undefined): void {
    const local = new Set<number>();
    this.subnet = 0;
    this.mask = 0;
    const n = snap?.nets.find((x) => x.id === this.net);
    if (n !== undefined) {
      this.subnet = n.subnet >>> 0;
      this.mask = n.mask >>> 0;
      local.add(n.gwIp >>> 0);
      if (n.hostIp !== 0) local.add(n.hostIp >>> 0);
    }
    const name = snap?.dns?.nets.find((x) => x.id === this.net)?.name;
    for (const e of snap?.dns?.endpoints ?? []) {
      if (e.network !== name) continue;
      const v = ipValue(e.ip) >>> 0;
      if (v !== 0) local.add(v);
    }
    this.local = local;
  }

  /** Is ip one a remote station may be learned for? */
  private learnable(ip: number): boolean {
    ip >>>= 0;
    if (ip === 0 || this.local.has(ip)) return false;
    return this.mask === 0 || ((ip & this.mask) >>> 0) === this.subnet;
  }

  /** A decapsulated frame (Ethernet at eth, len bytes): learn its sender's address. */
  learnFrame(buf: Uint8Array, eth: number, len: number, now: number): void {
    const e = this.eth;
    if (!e.reset(buf, eth, len)) return;
    const type = e.etherType;
    if (type === ETHERTYPE_ARP) {
      const a = this.arp;
      if (!a.reset(buf, eth + ETH_HDR_LEN, len - ETH_HDR_LEN) || !a.isEthernetIpv4) return;
      const spa = a.spa;
      if (this.learnable(spa)) this.table.learn(0, spa, a.shaHi, a.shaLo, now);
    } else if (type === ETHERTYPE_IPV4) {
      const ip = this.ip;
      if (!ip.reset(buf, eth + ETH_HDR_LEN, len - ETH_HDR_LEN) || ip.version !== 4) return;
      const src = ip.src;
      if (this.learnable(src)) this.table.learn(0, src, e.srcHi, e.srcLo, now);
    }
  }

  /**
   * A broadcast ARP frame on this network (forward stage). true: answered (p.out is the
   * asking port, the frame is the reply unless a dry run); false: flood it as usual.
   */
  answer(p: Packet, ctx: StageContext): boolean {
    if (p.inPort === this.overlay) return false;
    const a = this.arp;
    if (!a.reset(p.buf, p.l3Off, p.ethOff + p.ethLen - p.l3Off) || !a.isEthernetIpv4 || a.op !== ARP_OP_REQUEST) return false;
    const tpa = a.tpa >>> 0;
    if (tpa === (a.spa >>> 0) || tpa === 0 || tpa >>> 24 === 127 || tpa >>> 28 >= 0xe) return false;
    this.lastIp = tpa;
    if (this.local.has(tpa)) { this.count(ctx, C_LOCAL); return false; }
    const st = this.statics;
    const t = st.lookup(0, tpa, ctx.now) ? st : this.table;
    const fresh = (t === st || t.lookup(0, tpa, ctx.now)) && t.state === NEIGH_REACHABLE;
    const hi = t.hi;
    const lo = t.lo;
    // The FDB must still hold the MAC behind this network's overlay port.
    if (!fresh || isMulticastHi(hi) || (hi | lo) === 0 || ctx.fdb.lookup(p.netId, 0, hi, lo) !== this.overlay) {
      p.l3 = L3_ARP_PROXY_FLOOD;
      this.count(ctx, C_FLOODED);
      return false;
    }
    this.lastHi = hi;
    this.lastLo = lo;
    if (!ctx.dryRun) {
      const n = arpReplyInPlace(p.buf, p.ethOff, p.ethLen, hi, lo, tpa);
      if (n === 0) { p.l3 = L3_ARP_PROXY_FLOOD; this.count(ctx, C_FLOODED); return false; }
      // A new length (60): offloads no longer apply.
      p.ethLen = n;
      p.len = n + (p.vnet ? VNET_HDR_LEN : 0);
      if (p.vnet) writeEmptyVnetHdr(p.buf, p.off);
    }
    this.count(ctx, C_ANSWERED);
    p.l3 = L3_ARP_PROXY_REPLY;
    p.out = p.inPort;
    return true;
  }

  private count(ctx: StageContext, which: number): void {
    if (!ctx.dryRun) Atomics.add(this.c, which, 1);
  }

  /** The trace line of what answer() decided for p, or null when it decided nothing. */
  traceText(p: Packet): string | null {
    if (p.l3 === L3_ARP_PROXY_REPLY) {
      return `arp-proxy-reply: ${ipToString(this.lastIp)} is-at ${macToStringHiLo(this.lastHi, this.lastLo)} (a remote station), answered locally, not sent to the peers`;
    }
    if (p.l3 === L3_ARP_PROXY_FLOOD) return `arp-proxy-flood: ${ipToString(this.lastIp)} not known fresh behind a VTEP, flooded to the peers`;
    return null;
  }

  counters(now: number): ArpProxyCounters {
    return {
      answered: Atomics.load(this.c, C_ANSWERED), flooded: Atomics.load(this.c, C_FLOODED), local: Atomics.load(this.c, C_LOCAL),
      entries: this.entries(now).length,
    };
  }

  /** The fresh entries (what an answer may use, before the FDB check); static ones first, age -1. */
  entries(now: number): ArpProxyEntry[] {
    const fixed = this.statics.list(now).map((e) => ({ ip: ipToString(e.ip), mac: macToStringHiLo(e.macHi, e.macLo), ageSeconds: -1 }));
    const known = new Set(fixed.map((e) => e.ip));
    return [...fixed, ...this.table.list(now).filter((e) => e.state === NEIGH_REACHABLE && !known.has(ipToString(e.ip)))
      .map((e) => ({ ip: ipToString(e.ip), mac: macToStringHiLo(e.macHi, e.macLo), ageSeconds: e.ageSeconds }))];
  }

  /** Main thread: a static entry ip -> MAC (false: refused, a multicast/zero MAC or the table full). */
  addStatic(ip: number, macHi: number, macLo: number): boolean {
    const r = this.statics.learn(0, ip, macHi, macLo, STATIC_T);
    return r !== NEIGH_LEARN_FAILED && r !== NEIGH_LEARN_REFUSED;
  }

  /** Main thread: remove the static entries of a MAC. */
  removeStatic(macHi: number, macLo: number): void {
    for (const e of this.statics.list(0)) if (e.macHi === macHi && e.macLo === macLo >>> 0) this.statics.remove(0, e.ip);
  }
}
