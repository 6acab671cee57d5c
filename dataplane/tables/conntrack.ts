// Connection tracking for NAT, shared by every worker thread and the main thread.
//
// A connection has an *original* tuple (proto, src, dst, sport, dport: as its first packet
// arrived) and a *reply* tuple (as the answer will arrive, after NAT). Both tuples are keys
// of one hash table and point at the same connection record; a lookup returns a handle
// (record index << 1 | direction), so one find() says both which connection and which way the
// packet is travelling. ICMP echo uses the identifier as both ports.
//
// Storage (one SharedArrayBuffer; each thread constructs its own Conntrack over it):
//   header        Int32 words: lock, count, free list, high-water mark, port cursor, hash seed
//   counters      Float64: created, expired, removed, full, noPort, sourceLimit
//   records       maxEntries x REC_WORDS Int32: tuples, state, owner, chain links
//   record nums   maxEntries x REC_F64 Float64: expiry, packets and bytes per direction
//   buckets       Int32 heads of the hash chains (node + 1; 0 = empty); a power of two >= 2 x
//                 maxEntries, so chains average under one node
//   sources       open-addressing table (original source IPv4 -> connections), for the
//                 per-source cap (conntrack-sources.ts)
//   forwarder     Int32 bitmap of the DNS forwarder's ports in use (CT_FORWARDER_PORT_MIN..MAX):
//                 set and cleared by the main thread, read by the workers (atomic, no lock)
//   ports         Int32 per ingress port (< CT_PORTS): connections it opened, for the
//                 per-port cap (conntrack-sources.ts; the record keeps its port)
// Chained buckets: a node is unlinked from its chain on removal, so nothing builds up. Free
// records form a list (index + 1 in the header; 0 = empty); records never used yet are taken
// from the high-water mark, so an all-zero buffer is a valid empty table.
//
// Concurrency: one lock around every operation, lookups included (a futex-style mutex on a
// header word, lock.ts: uncontended it costs two atomic operations; contended it spins
// briefly, then Atomics.wait). Sweeps (expire, remove*, list) take it per chunk of records so a worker never
// waits long behind the main thread. find() and create() copy the found connection's
// translation into this object (one per thread), so the x*()/net()/kind()/mapping() reads
// that follow a find() are consistent even if another thread removes and reuses the record
// meanwhile; seen() on such a stale handle does nothing.
//
// Time is whole seconds from the caller. A connection is gone once now >= its expiry (find()
// does not return it; create() reclaims its tuples; expire() removes it and tells the hook).
// Timeouts are Linux's nf_conntrack defaults (see seen(); TCP's state machine:
// conntrack-tcp.ts).
//
// This file stays one piece of about 600 lines: the hot path (find, create, seen), the
// main thread's sweeps and the chain internals share one record layout and one lock, and
// each needs the private internals of the others; what stands apart (TCP states, per-source
// counts, the lock) is in its own file.

import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4';
import { mutexLock, mutexUnlock } from './lock';
import { CT_PORTS, PortCounts, SourceCounts } from './conntrack-sources';
import { CT_TCP_NONE, F_REPLIED, TCP_STATE_NAMES, TCP_TIMEOUTS, tcpSeen } from './conntrack-tcp';

export {
  CT_TCP_CLOSE, CT_TCP_CLOSE_WAIT, CT_TCP_ESTABLISHED, CT_TCP_FIN_WAIT, CT_TCP_LAST_ACK, CT_TCP_NONE,
  CT_TCP_SYN_RECV, CT_TCP_SYN_SENT, CT_TCP_TIME_WAIT, CT_TIMEOUT_TCP_UNREPLIED_ESTABLISHED,
} from './conntrack-tcp';

/** Sizes and limits of a conntrack table. */
export interface ConntrackConfig {
  /** connections (each is two hash nodes), default 65536 */
  maxEntries: number;
  /** connections per original source IPv4 address, default 16384 */
  maxPerSource: number;
  /** the range NAT ports (and ICMP identifiers) are allocated from: default 1024..65535; for
   *  UDP less the DNS forwarder's ports (CT_FORWARDER_PORT_MIN..MAX), never allocated */
  portMin: number;
  portMax: number;
  /** connections opened through one switch port (a container's share), default CT_MAX_PER_PORT */
  maxPerPort?: number;
}

/** Default per-port cap: a quarter of the default table, like the per-source cap. */
export const CT_MAX_PER_PORT = 16384;
export { CT_PORTS };

export const CONNTRACK_DEFAULTS: Readonly<ConntrackConfig> = Object.freeze({
  maxEntries: 65536, maxPerSource: 16384, portMin: 1024, portMax: 65535,
});

/**
 * UDP ports of the uplink address reserved for the main thread's DNS forwarder
 * (control/dns/uplink.ts): its queries leave from uplink-IP:port in this range, and a reply to
 * such a port with no connection is punted to it (router/nat.ts). Masquerade never hands one
 * out, not even by keeping a container's own source port, so a forwarder reply can never be
 * taken for a masqueraded flow's (or the reverse). Outside Linux's default ephemeral range
 * (32768-60999); 4096 ports: 12 bits of source-port randomness on top of the 16-bit DNS ID.
 */
export const CT_FORWARDER_PORT_MIN = 61440;
export const CT_FORWARDER_PORT_MAX = 65535;

/** Is this UDP port of the uplink address the DNS forwarder's (CT_FORWARDER_PORT_MIN..MAX)? */
export function isForwarderPort(port: number): boolean {
  return port >= CT_FORWARDER_PORT_MIN && port <= CT_FORWARDER_PORT_MAX;
}

/** Int32 words of the forwarder's in-use bitmap. */
const FWD_WORDS = (CT_FORWARDER_PORT_MAX - CT_FORWARDER_PORT_MIN + 1 + 31) >>> 5;

export const CT_ERR_FULL = -2;
export const CT_ERR_NO_PORT = -3;
export const CT_ERR_SOURCE_LIMIT = -4;
export const CT_ERR_PORT_LIMIT = -5;

export const CT_DIR_ORIG = 0;
export const CT_DIR_REPLY = 1;

export const CT_KIND_MASQ = 0;
export const CT_KIND_DNAT = 1;
export const CT_KIND_DNS = 2;

export const CT_EV_NEW = 1;
export const CT_EV_EXPIRED = 2;
export const CT_EV_REMOVED = 3;

export const CT_TIMEOUT_UDP = 30;
export const CT_TIMEOUT_UDP_REPLIED = 120;
export const CT_TIMEOUT_ICMP = 30;
/** Any other protocol (Linux nf_conntrack_generic_timeout). */
export const CT_TIMEOUT_GENERIC = 600;

// Record words (Int32).
const R_USED = 0;      // 0 free, 1 in use
const R_PROTO = 1;
const R_STATE = 2;     // TCP state; 0 for other protocols
const R_FLAGS = 3;     // F_REPLIED and TCP's FIN marks (conntrack-tcp.ts)
const R_TUPLE = 4;     // + dir * 3: src, dst, sport | dport << 16
const R_NET = 10;
const R_MAPPING = 11;
const R_KIND = 12;
const R_GEN = 13;      // bumped on every allocation and release of the record
const R_NEXT = 14;     // + dir: next node in the hash chain, + 1 (0 = end); R_NEXT also links free records
const R_PORT = 16;     // the ingress port that opened it, + 1 (0 = not counted per port)
const REC_WORDS = 17;

// Record numbers (Float64).
const D_EXPIRES = 0;
const D_PACKETS = 1;   // + dir
const D_BYTES = 3;     // + dir
const REC_F64 = 5;


// Header words (Int32).
const H_LOCK = 0;      // 0 free, 1 held, 2 held with waiters
const H_COUNT = 1;
const H_FREE = 2;      // first free record + 1 (0 = none)
const H_HWM = 3;       // records [0, H_HWM) have been used at least once
const H_CURSOR = 4;    // port allocation cursor, an offset into [portMin, portMax]
const H_SEED = 5;      // hash seed (set by the thread that allocates the buffer)
const HEADER_WORDS = 16;

// Counters (Float64).
const C_CREATED = 0;
const C_EXPIRED = 1;
const C_REMOVED = 2;
const C_FULL = 3;
const C_NO_PORT = 4;
const C_SOURCE_LIMIT = 5;
const C_PORT_LIMIT = 6;
const COUNTER_F64 = 8;

/** Records visited per lock hold by sweeps (expire, remove*, list). */
const SWEEP_CHUNK = 1024;
/** NAT port search: ports tried after the cursor, then halved per random round down to the min. */
const PORT_ATTEMPTS = 128;
const PORT_ATTEMPTS_MIN = 16;

export interface CtTuple { src: number; dst: number; sport: number; dport: number }

export interface CtEntry {
  proto: number;
  /** TCP: SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE (NONE
   * before the first packet was accounted); UDP/ICMP: UNREPLIED / REPLIED. */
  state: string;
  orig: CtTuple;
  reply: CtTuple;
  kind: number;
  net: number;
  mapping: number;
  /** absolute seconds */
  expires: number;
  /** original, reply direction */
  packets: [number, number];
  bytes: [number, number];
}

export interface ConntrackCounters {
  entries: number;
  created: number;
  expired: number;
  removed: number;
  full: number;
  noPort: number;
  sourceLimit: number;
  /** refused: the ingress port held its maximum (maxPerPort) */
  portLimit?: number;
}

/** (event: CT_EV_*, handle). Called under the table lock, by the thread that made the change. */
export type ConntrackHook = (event: number, h: number) => void;

function pow2AtLeast(n: number): number {
  let p = 16;
  while (p < n) p *= 2;
  return p;
}

function bucketCount(cfg: ConntrackConfig): number { return pow2AtLeast(cfg.maxEntries * 2); }
function sourceSlots(cfg: ConntrackConfig): number { return pow2AtLeast(Math.min(cfg.maxEntries, 1 << 24) * 2); }

function checkConfig(cfg: ConntrackConfig): void {
  if (!Number.isInteger(cfg.maxEntries) || cfg.maxEntries < 1 || cfg.maxEntries > (1 << 26)) {
    throw new RangeError('conntrack maxEntries must be 1..2^26');
  }
  if (!Number.isInteger(cfg.maxPerSource) || cfg.maxPerSource < 1) throw new RangeError('conntrack maxPerSource must be >= 1');
  if (cfg.maxPerPort !== undefined && (!Number.isInteger(cfg.maxPerPort) || cfg.maxPerPort < 1)) throw new RangeError('conntrack maxPerPort must be >= 1');
  if (!Number.isInteger(cfg.portMin) || !Number.isInteger(cfg.portMax) || cfg.portMin < 0 || cfg.portMax > 0xffff || cfg.portMin > cfg.portMax) {
    throw new RangeError('conntrack port range must satisfy 0 <= portMin <= portMax <= 65535');
  }
}

/** Bytes a SharedArrayBuffer needs for a conntrack table with this config. */
export function conntrackBytes(cfg: ConntrackConfig): number {
  checkConfig(cfg);
  return HEADER_WORDS * 4 + COUNTER_F64 * 8
    + cfg.maxEntries * (REC_WORDS * 4 + REC_F64 * 8)
    + bucketCount(cfg) * 4 + sourceSlots(cfg) * 8 + FWD_WORDS * 4 + CT_PORTS * 4;
}

// Murmur3 mixing step and finalizer.
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export class Conntrack {
  readonly cfg: ConntrackConfig;
  readonly sab: SharedArrayBuffer;
  /** Told of new and expired/removed connections (vsw events). Called under the lock: must be
   * quick, and may only use the accessors (x*, net, kind, mapping, entry), not find/create/list. */
  hook: ConntrackHook | null = null;

  private readonly h: Int32Array;
  private readonly c: Float64Array;
  private readonly r: Int32Array;
  private readonly d: Float64Array;
  private readonly b: Int32Array;
  private readonly sources: SourceCounts;
  private readonly fwd: Int32Array;
  private readonly portCounts: PortCounts;
  private readonly maxPerPort: number;
  private readonly bmask: number;
  private readonly seed: number;
  private held = false;

  // The last connection found or created by this object (see the header).
  private cH = -1;
  private cGen = 0;
  private cSrc = 0;
  private cDst = 0;
  private cSport = 0;
  private cDport = 0;
  private cNet = 0;
  private cKind = 0;
  private cMapping = 0;

  /** Attach to `sab` (from another thread) or allocate a new table. */
  constructor(cfg: ConntrackConfig, sab?: SharedArrayBuffer) {
    const bytes = conntrackBytes(cfg);
    this.cfg = cfg;
    this.sab = sab ?? new SharedArrayBuffer(bytes);
    if (this.sab.byteLength < bytes) throw new RangeError('conntrack buffer too small');
    const buckets = bucketCount(cfg);
    const slots = sourceSlots(cfg);
    let off = 0;
    this.h = new Int32Array(this.sab, off, HEADER_WORDS); off += HEADER_WORDS * 4;
    this.c = new Float64Array(this.sab, off, COUNTER_F64); off += COUNTER_F64 * 8;
    this.d = new Float64Array(this.sab, off, cfg.maxEntries * REC_F64); off += cfg.maxEntries * REC_F64 * 8;
    this.r = new Int32Array(this.sab, off, cfg.maxEntries * REC_WORDS); off += cfg.maxEntries * REC_WORDS * 4;
    this.b = new Int32Array(this.sab, off, buckets); off += buckets * 4;
    this.bmask = buckets - 1;
    if (sab === undefined) {
      // A random seed keeps chains short even against chosen tuples (inbound published ports).
      Atomics.store(this.h, H_SEED, (Math.random() * 0x100000000) | 0);
    }
    const seed = this.seed = Atomics.load(this.h, H_SEED);
    const smask = slots - 1;
    this.sources = new SourceCounts(new Int32Array(this.sab, off, slots * 2), smask, (ip) => fmix(mix(seed, ip)) & smask);
    off += slots * 8;
    this.fwd = new Int32Array(this.sab, off, FWD_WORDS);
    off += FWD_WORDS * 4;
    this.portCounts = new PortCounts(new Int32Array(this.sab, off, CT_PORTS));
    this.maxPerPort = cfg.maxPerPort ?? CT_MAX_PER_PORT;
  }

  // ---- the DNS forwarder's ports ----------------------------------------------------------

  /**
   * The main thread's DNS forwarder marks a port of its range in use while a try waits on it
   * (control/dns/uplink.ts), and clears it after. Ports outside the range are ignored.
   */
  forwarderPortUse(port: number, inUse: boolean): void {
    if (!isForwarderPort(port)) return;
    const i = port - CT_FORWARDER_PORT_MIN;
    const bit = 1 << (i & 31);
    if (inUse) Atomics.or(this.fwd, i >>> 5, bit);
    else Atomics.and(this.fwd, i >>> 5, ~bit);
  }

  /** Is a try of the forwarder waiting on this port? A worker punts only answers to such a port (router/nat.ts). */
  forwarderPortInUse(port: number): boolean {
    if (!isForwarderPort(port)) return false;
    const i = port - CT_FORWARDER_PORT_MIN;
    return (Atomics.load(this.fwd, i >>> 5) & (1 << (i & 31))) !== 0;
  }

  // ---- hot path ---------------------------------------------------------------------------

  /**
   * Handle of the connection a packet with this tuple belongs to: (record << 1) | direction,
   * or -1. Expired connections are not found. Addresses are uint32; ICMP echo: sport = dport =
   * identifier.
   */
  find(proto: number, src: number, dst: number, sport: number, dport: number, now: number): number {
    const ports = (sport & 0xffff) | ((dport & 0xffff) << 16);
    this.lock();
    let node = this.lookup(proto, src | 0, dst | 0, ports);
    if (node >= 0) {
      if (this.d[(node >> 1) * REC_F64 + D_EXPIRES] > now) this.snapshot(node);
      else node = -1;
    }
    this.unlock();
    return node;
  }

  /**
   * Create a connection: original direction (proto, src, dst, sport, dport), reply direction
   * (proto, rsrc, rdst, rsport, rdport). With allocPort, a taken reply tuple gets another
   * rdport: the original sport, else the next free one from a rotating cursor in [portMin,
   * portMax] (ICMP: the identifier, i.e. rsport and rdport both). The search is bounded like
   * Linux's: a range of up to 128 ports is scanned whole; in a larger one, 128 ports after the
   * cursor then 64, 32, 16 from random offsets (so a nearly full range may fail early). Returns the ORIG handle, or
   * CT_ERR_FULL (table full, or the original tuple is already tracked), CT_ERR_SOURCE_LIMIT,
   * CT_ERR_NO_PORT (no free reply tuple; also when it is taken and allocPort is false),
   * CT_ERR_PORT_LIMIT (inPort, the switch port the first packet came in on, holds
   * maxPerPort connections; -1 = not counted per port, e.g. from the uplink).
   * The connection expires after the first state's timeout unless seen() is called.
   */
  create(proto: number, src: number, dst: number, sport: number, dport: number,
    rsrc: number, rdst: number, rsport: number, rdport: number,
    allocPort: boolean, net: number, mapping: number, kind: number, now: number, inPort = -1): number {
    src |= 0; dst |= 0; rsrc |= 0; rdst |= 0;
    const oports = (sport & 0xffff) | ((dport & 0xffff) << 16);
    this.lock();
    try {
      const c = this.c;
      const h = this.h;
      const existing = this.lookup(proto, src, dst, oports);
      if (existing >= 0) {
        if (this.d[(existing >> 1) * REC_F64 + D_EXPIRES] > now) return CT_ERR_FULL;
        this.reclaim(existing >> 1);
      }
      if (h[H_COUNT] >= this.cfg.maxEntries) { c[C_FULL]++; return CT_ERR_FULL; }
      if (this.sources.count(src) >= this.cfg.maxPerSource) { c[C_SOURCE_LIMIT]++; return CT_ERR_SOURCE_LIMIT; }
      if (this.portCounts.count(inPort) >= this.maxPerPort) { c[C_PORT_LIMIT]++; return CT_ERR_PORT_LIMIT; }

      const icmp = proto === IPPROTO_ICMP;
      let rports = (rsport & 0xffff) | ((rdport & 0xffff) << 16);
      // An allocated UDP port (masquerade) never falls in the DNS forwarder's range.
      const reserved = allocPort && proto === IPPROTO_UDP && isForwarderPort(rdport & 0xffff);
      if (reserved || this.taken(proto, rsrc, rdst, rports, src, dst, oports, now)) {
        if (!allocPort) { c[C_NO_PORT]++; return CT_ERR_NO_PORT; }
        rports = this.freePort(proto, icmp, rsrc, rdst, rsport & 0xffff, rdport & 0xffff, sport & 0xffff, src, dst, oports, now);
        if (rports === -1) { c[C_NO_PORT]++; return CT_ERR_NO_PORT; }
      }

      // A record: from the free list, else never used ones.
      let rec: number;
      const free = h[H_FREE];
      if (free !== 0) {
        rec = free - 1;
        h[H_FREE] = this.r[rec * REC_WORDS + R_NEXT];
      } else {
        rec = h[H_HWM]++;
      }
      const r = this.r;
      const b = rec * REC_WORDS;
      r[b + R_PROTO] = proto;
      r[b + R_STATE] = CT_TCP_NONE;
      r[b + R_FLAGS] = 0;
      r[b + R_TUPLE] = src;
      r[b + R_TUPLE + 1] = dst;
      r[b + R_TUPLE + 2] = oports;
      r[b + R_TUPLE + 3] = rsrc;
      r[b + R_TUPLE + 4] = rdst;
      r[b + R_TUPLE + 5] = rports;
      r[b + R_NET] = net;
      r[b + R_MAPPING] = mapping;
      r[b + R_KIND] = kind;
      r[b + R_PORT] = this.portCounts.add(inPort);
      r[b + R_GEN] = (r[b + R_GEN] + 1) | 0;
      r[b + R_USED] = 1;
      const fb = rec * REC_F64;
      const d = this.d;
      d[fb + D_EXPIRES] = now + (proto === IPPROTO_TCP ? TCP_TIMEOUTS[CT_TCP_NONE]
        : proto === IPPROTO_UDP ? CT_TIMEOUT_UDP : icmp ? CT_TIMEOUT_ICMP : CT_TIMEOUT_GENERIC);
      d[fb + D_PACKETS] = 0; d[fb + D_PACKETS + 1] = 0;
      d[fb + D_BYTES] = 0; d[fb + D_BYTES + 1] = 0;
      this.link(rec << 1, proto, src, dst, oports);
      this.link((rec << 1) | 1, proto, rsrc, rdst, rports);
      this.sources.add(src); // probed afresh: reclaiming expired tuples may have shifted slots
      h[H_COUNT]++;
      c[C_CREATED]++;
      this.snapshot(rec << 1);
      if (this.hook !== null) this.hook(CT_EV_NEW, rec << 1);
      return rec << 1;
    } finally {
      this.unlock();
    }
  }

  /** Source address a packet travelling in h's direction must carry after NAT. */
  xSrc(h: number): number {
    if (h === this.cH) return this.cSrc;
    return this.r[(h >> 1) * REC_WORDS + R_TUPLE + (1 - (h & 1)) * 3 + 1] >>> 0;
  }

  xDst(h: number): number {
    if (h === this.cH) return this.cDst;
    return this.r[(h >> 1) * REC_WORDS + R_TUPLE + (1 - (h & 1)) * 3] >>> 0;
  }

  xSport(h: number): number {
    if (h === this.cH) return this.cSport;
    return this.r[(h >> 1) * REC_WORDS + R_TUPLE + (1 - (h & 1)) * 3 + 2] >>> 16;
  }

  xDport(h: number): number {
    if (h === this.cH) return this.cDport;
    return this.r[(h >> 1) * REC_WORDS + R_TUPLE + (1 - (h & 1)) * 3 + 2] & 0xffff;
  }

  /** The vsw network id of the inside end. */
  net(h: number): number {
    if (h === this.cH) return this.cNet;
    return this.r[(h >> 1) * REC_WORDS + R_NET];
  }

  kind(h: number): number {
    if (h === this.cH) return this.cKind;
    return this.r[(h >> 1) * REC_WORDS + R_KIND];
  }

  /** The published-port rule that created the connection, or -1. */
  mapping(h: number): number {
    if (h === this.cH) return this.cMapping;
    return this.r[(h >> 1) * REC_WORDS + R_MAPPING];
  }

  /**
   * Account one packet in h's direction: tcpFlags = the TCP flags byte (0 for UDP/ICMP), bytes
   * = the IP length. Advances the TCP state machine, marks the connection replied on its first
   * reply-direction packet, counts packets/bytes, and sets the expiry to now + the timeout of
   * the (new) state.
   *
   * TCP: the state machine of conntrack-tcp.ts (in the spirit of Linux's tcp_conntracks).
   */
  seen(h: number, tcpFlags: number, bytes: number, now: number): void {
    this.lock();
    const rec = h >> 1;
    const dir = h & 1;
    const r = this.r;
    const b = rec * REC_WORDS;
    if (r[b + R_USED] === 1 && (h !== this.cH || r[b + R_GEN] === this.cGen)) {
      let fl = r[b + R_FLAGS];
      if (dir === 1) r[b + R_FLAGS] = fl |= F_REPLIED;
      const proto = r[b + R_PROTO];
      let timeout: number;
      if (proto === IPPROTO_TCP) {
        timeout = tcpSeen(r, b + R_STATE, b + R_FLAGS, dir, tcpFlags);
      } else if (proto === IPPROTO_UDP) {
        timeout = (fl & F_REPLIED) !== 0 ? CT_TIMEOUT_UDP_REPLIED : CT_TIMEOUT_UDP;
      } else if (proto === IPPROTO_ICMP) {
        timeout = CT_TIMEOUT_ICMP;
      } else {
        timeout = CT_TIMEOUT_GENERIC;
      }
      const d = this.d;
      const fb = rec * REC_F64;
      d[fb + D_EXPIRES] = now + timeout;
      d[fb + D_PACKETS + dir] += 1;
      d[fb + D_BYTES + dir] += bytes;
    }
    this.unlock();
  }

  // ---- main thread: sweeps, listings, counters ---------------------------------------------

  /** Remove connections whose expiry passed (now >= expiry), telling the hook. Returns how many. */
  expire(now: number): number {
    const d = this.d;
    return this.sweep((rec) => d[rec * REC_F64 + D_EXPIRES] <= now, CT_EV_EXPIRED, C_EXPIRED);
  }

  /** Remove every connection created by published-port rule `mapping`. Returns how many. */
  removeMapping(mapping: number): number {
    if (mapping < 0) return 0;
    const r = this.r;
    return this.sweep((rec) => r[rec * REC_WORDS + R_MAPPING] === mapping, CT_EV_REMOVED, C_REMOVED);
  }

  /** Remove every connection whose inside end is in network `net`. Returns how many. */
  removeNet(net: number): number {
    const r = this.r;
    return this.sweep((rec) => r[rec * REC_WORDS + R_NET] === net, CT_EV_REMOVED, C_REMOVED);
  }

  /** Remove every connection `fn` says yes to (expired ones included). Returns how many. */
  removeWhere(fn: (e: CtEntry) => boolean): number {
    return this.sweep((rec) => fn(this.entryOf(rec)), CT_EV_REMOVED, C_REMOVED);
  }

  /** Every live connection (for `vsw conntrack`). Taken chunk by chunk: not one instant. */
  list(now: number): CtEntry[] {
    const out: CtEntry[] = [];
    const r = this.r;
    const d = this.d;
    for (let start = 0; ; start += SWEEP_CHUNK) {
      this.lock();
      try {
        const hwm = this.h[H_HWM];
        if (start >= hwm) break;
        const stop = Math.min(hwm, start + SWEEP_CHUNK);
        for (let rec = start; rec < stop; rec++) {
          if (r[rec * REC_WORDS + R_USED] === 1 && d[rec * REC_F64 + D_EXPIRES] > now) out.push(this.entryOf(rec));
        }
      } finally {
        this.unlock();
      }
    }
    return out;
  }

  /** The connection of handle h (either direction) as a plain object, or null when the record
   * is free. May be called from the hook. */
  entry(h: number): CtEntry | null {
    const rec = h >> 1;
    if (rec < 0 || rec >= this.cfg.maxEntries) return null;
    const mine = !this.held;
    if (mine) this.lock();
    try {
      return this.r[rec * REC_WORDS + R_USED] === 1 ? this.entryOf(rec) : null;
    } finally {
      if (mine) this.unlock();
    }
  }

  /** Live connections (expired ones not yet swept included). */
  size(): number {
    return Atomics.load(this.h, H_COUNT);
  }

  counters(): ConntrackCounters {
    this.lock();
    try {
      const c = this.c;
      return {
        entries: this.h[H_COUNT], created: c[C_CREATED], expired: c[C_EXPIRED], removed: c[C_REMOVED],
        full: c[C_FULL], noPort: c[C_NO_PORT], sourceLimit: c[C_SOURCE_LIMIT],
        portLimit: c[C_PORT_LIMIT],
      };
    } finally {
      this.unlock();
    }
  }

  /** Connections currently counted for switch port `port` (per-port cap). */
  portCount(port: number): number {
    this.lock();
    try {
      return this.portCounts.count(port);
    } finally {
      this.unlock();
    }
  }

  /** Connections currently counted for original source `src` (per-source cap). */
  sourceCount(src: number): number {
    this.lock();
    try {
      return this.sources.count(src | 0);
    } finally {
      this.unlock();
    }
  }

  // ---- internals (all under the lock) -----------------------------------------------------

  private snapshot(node: number): void {
    const r = this.r;
    const b = (node >> 1) * REC_WORDS;
    const t = b + R_TUPLE + (1 - (node & 1)) * 3; // the other direction's tuple
    this.cH = node;
    this.cGen = r[b + R_GEN];
    this.cSrc = r[t + 1] >>> 0;
    this.cDst = r[t] >>> 0;
    this.cSport = r[t + 2] >>> 16;
    this.cDport = r[t + 2] & 0xffff;
    this.cNet = r[b + R_NET];
    this.cKind = r[b + R_KIND];
    this.cMapping = r[b + R_MAPPING];
  }

  private bucket(proto: number, src: number, dst: number, ports: number): number {
    let x = mix(this.seed ^ proto, src);
    x = mix(x, dst);
    x = mix(x, ports);
    return fmix(x) & this.bmask;
  }

  /** Node (record << 1 | dir) holding this tuple, expired or not, or -1. */
  private lookup(proto: number, src: number, dst: number, ports: number): number {
    const r = this.r;
    let n = this.b[this.bucket(proto, src, dst, ports)] - 1;
    while (n >= 0) {
      const b = (n >> 1) * REC_WORDS;
      const t = b + R_TUPLE + (n & 1) * 3;
      if (r[t] === src && r[t + 1] === dst && r[t + 2] === ports && r[b + R_PROTO] === proto) return n;
      n = r[b + R_NEXT + (n & 1)] - 1;
    }
    return -1;
  }

  private link(node: number, proto: number, src: number, dst: number, ports: number): void {
    const i = this.bucket(proto, src, dst, ports);
    this.r[(node >> 1) * REC_WORDS + R_NEXT + (node & 1)] = this.b[i];
    this.b[i] = node + 1;
  }

  private unlink(node: number): void {
    const r = this.r;
    const b = (node >> 1) * REC_WORDS;
    const t = b + R_TUPLE + (node & 1) * 3;
    const i = this.bucket(r[b + R_PROTO], r[t], r[t + 1], r[t + 2]);
    const next = r[b + R_NEXT + (node & 1)];
    let n = this.b[i] - 1;
    if (n === node) { this.b[i] = next; return; }
    while (n >= 0) {
      const at = (n >> 1) * REC_WORDS + R_NEXT + (n & 1);
      const m = r[at] - 1;
      if (m === node) { r[at] = next; return; }
      n = m;
    }
    throw new Error('conntrack: node missing from its chain'); // a bug, never data-driven
  }

  /** Is (proto, src, dst, ports) unusable as a new reply tuple? Expired holders are reclaimed. */
  private taken(proto: number, src: number, dst: number, ports: number,
    osrc: number, odst: number, oports: number, now: number): boolean {
    if (src === osrc && dst === odst && ports === oports) return true; // would equal its own original
    const n = this.lookup(proto, src, dst, ports);
    if (n < 0) return false;
    if (this.d[(n >> 1) * REC_F64 + D_EXPIRES] > now) return true;
    this.reclaim(n >> 1);
    return false;
  }

  /** A free reply `ports` word, or -1. */
  private freePort(proto: number, icmp: boolean, rsrc: number, rdst: number, rsport: number, rdport: number,
    sport: number, osrc: number, odst: number, oports: number, now: number): number {
    const udp = proto === IPPROTO_UDP;
    if (sport !== rdport && !(udp && isForwarderPort(sport))) {
      const p = icmp ? sport | (sport << 16) : rsport | (sport << 16);
      if (!this.taken(proto, rsrc, rdst, p, osrc, odst, oports, now)) return p;
    }
    const min = this.cfg.portMin;
    const n = this.cfg.portMax - min + 1;
    // Bounded, like Linux's nf_nat_l4proto_unique_tuple: up to PORT_ATTEMPTS ports after the
    // cursor, then rounds of half as many from random offsets. A small range is scanned
    // whole; a large one that is nearly full fails after a few hundred lookups at most
    // (instead of 64K under the lock).
    let attempts = n < PORT_ATTEMPTS ? n : PORT_ATTEMPTS;
    let cur = this.h[H_CURSOR] % n;
    for (;;) {
      for (let i = 0; i < attempts; i++) {
        const port = min + cur;
        cur = cur + 1 === n ? 0 : cur + 1;
        if (port === rdport || port === sport) continue; // tried already
        if (udp && isForwarderPort(port)) continue; // the DNS forwarder's (CT_FORWARDER_PORT_MIN)
        const p = icmp ? port | (port << 16) : rsport | (port << 16);
        if (!this.taken(proto, rsrc, rdst, p, osrc, odst, oports, now)) {
          this.h[H_CURSOR] = cur;
          return p;
        }
      }
      if (attempts >= n || attempts < 2 * PORT_ATTEMPTS_MIN) return -1;
      attempts >>= 1;
      cur = Math.floor(Math.random() * n);
    }
  }

  /** Remove an expired connection found in the way of a new one. */
  private reclaim(rec: number): void {
    this.remove(rec, CT_EV_EXPIRED);
    this.c[C_EXPIRED]++;
  }

  private remove(rec: number, event: number): void {
    const r = this.r;
    const b = rec * REC_WORDS;
    if (this.hook !== null) this.hook(event, rec << 1);
    this.unlink(rec << 1);
    this.unlink((rec << 1) | 1);
    this.sources.del(r[b + R_TUPLE]);
    this.portCounts.del(r[b + R_PORT]);
    r[b + R_PORT] = 0;
    r[b + R_USED] = 0;
    r[b + R_GEN] = (r[b + R_GEN] + 1) | 0;
    r[b + R_NEXT] = this.h[H_FREE];
    r[b + R_NEXT + 1] = 0;
    this.h[H_FREE] = rec + 1;
    this.h[H_COUNT]--;
  }

  private sweep(pred: (rec: number) => boolean, event: number, counter: number): number {
    let removed = 0;
    const r = this.r;
    for (let start = 0; ; start += SWEEP_CHUNK) {
      this.lock();
      try {
        this.cH = -1;
        const hwm = this.h[H_HWM];
        if (start >= hwm) break;
        const stop = Math.min(hwm, start + SWEEP_CHUNK);
        for (let rec = start; rec < stop; rec++) {
          if (r[rec * REC_WORDS + R_USED] === 1 && pred(rec)) {
            this.remove(rec, event);
            this.c[counter]++;
            removed++;
          }
        }
      } finally {
        this.unlock();
      }
    }
    return removed;
  }

  private entryOf(rec: number): CtEntry {
    const r = this.r;
    const d = this.d;
    const b = rec * REC_WORDS;
    const fb = rec * REC_F64;
    const proto = r[b + R_PROTO];
    const t = b + R_TUPLE;
    return {
      proto,
      state: proto === IPPROTO_TCP ? TCP_STATE_NAMES[r[b + R_STATE]]
        : (r[b + R_FLAGS] & F_REPLIED) !== 0 ? 'REPLIED' : 'UNREPLIED',
      orig: { src: r[t] >>> 0, dst: r[t + 1] >>> 0, sport: r[t + 2] & 0xffff, dport: r[t + 2] >>> 16 },
      reply: { src: r[t + 3] >>> 0, dst: r[t + 4] >>> 0, sport: r[t + 5] & 0xffff, dport: r[t + 5] >>> 16 },
      kind: r[b + R_KIND],
      net: r[b + R_NET],
      mapping: r[b + R_MAPPING],
      expires: d[fb + D_EXPIRES],
      packets: [d[fb + D_PACKETS], d[fb + D_PACKETS + 1]],
      bytes: [d[fb + D_BYTES], d[fb + D_BYTES + 1]],
    };
  }

  // The mutex design, and why conntrack's differs from the FDB's: lock.ts.
  private lock(): void {
    mutexLock(this.h, H_LOCK);
    this.held = true;
  }

  private unlock(): void {
    this.held = false;
    mutexUnlock(this.h, H_LOCK);
  }
}
