// The forwarding database (MAC table), shared by every worker thread.
//
// Key: (network, VLAN, MAC). The same MAC in two networks or two VLANs is two entries, so
// networks are isolated even when containers reuse addresses.
// Value: the port the MAC was last seen on, and when (whole seconds from an injected clock).
//
// Storage: one open-addressing hash table (linear probing) in a SharedArrayBuffer, so a MAC
// learned by one worker is found by all the others with no message passing. Slots are twice
// the entry cap, so a probe sequence is short and always ends at an empty slot.
//
// Concurrency: lookups take no lock. Each slot has a sequence word that a writer makes odd
// while it rewrites the slot; a reader that sees an odd or changed sequence reads again, so
// it never returns a torn entry. Inserts, moves and deletions take one spin lock (they are
// rare next to lookups: learning a new MAC, a MAC that moved, aging). A refresh of a known
// MAC on its known port writes only the timestamp, without the lock. Deletion shifts later
// entries of the probe run back (no tombstones); a reader racing with it may miss an entry
// once — the frame is then flooded, which is always safe for a switch.
//
// Aging: entries not seen for `agingSeconds` (default 300, like the Linux bridge and OVS)
// are removed by age(), which the main thread calls every second.
//
// Bounds and eviction (how a MAC flood is kept from taking the switch down): at most
// `maxEntries` in total and `maxPerPort` per port. Learning a new MAC on a port at its cap
// evicts one of that port's own entries; learning when the table is full evicts an entry of
// the port with the most entries (Open vSwitch's policy: the flooding port pays, not its
// neighbours). The victim is the next entry of that port found by a rotating cursor, so the
// cost is a short scan, not a sort. Counters: learned, moved, evicted, aged, failed.
//
// VXLAN (docs/VXLAN.md): an entry on an overlay port also holds the remote VTEP (IPv4) the
// MAC lives behind (word W_VTEP, 0 for a local port), set by learnVtep() from decapsulated
// frames and read by egress with lookupVtep(). Static entries (`vsw fdb add`, addStatic())
// have lastSeen FDB_STATIC: learning refreshes never overwrite it and aging never removes
// them; a frame of the MAC seen on another port still moves it (the MAC really went there).

import { macToStringHiLo } from '../wire/mac';
import { lockWord, unlockWord } from './lock';
import { deleteShift } from './probe';

const W_SEQ = 0;       // sequence: odd while being written
const W_STATE = 1;     // 0 empty, 1 used
const W_MAC_LO = 2;    // last 4 bytes of the MAC
const W_HI_VLAN = 3;   // first 2 bytes of the MAC | VLAN << 16
const W_NET = 4;       // network id
const W_PORT = 5;      // port id
const W_SEEN = 6;      // last seen, whole seconds
const W_VTEP = 7;      // remote VTEP of an overlay entry (IPv4), 0 = local
const ENTRY_WORDS = 8;

const H_LOCK = 0;
const H_COUNT = 1;
const H_CURSOR = 2;
const H_LEARNED = 3;
const H_MOVED = 4;
const H_EVICTED = 5;
const H_AGED = 6;
const H_FAILED = 7;
const HEADER_WORDS = 16;

const EMPTY = 0;
const USED = 1;

export const LEARN_REFRESHED = 0;
export const LEARN_NEW = 1;
export const LEARN_MOVED = 2;
export const LEARN_FAILED = 3;

/** lastSeen of a static entry: never aged, never refreshed. */
export const FDB_STATIC = 0x7fffffff;

export interface FdbConfig {
  maxEntries: number;      // total cap
  maxPerPort: number;      // per-port cap
  maxPorts: number;        // port ids are < maxPorts
  agingSeconds: number;
}

export interface FdbEntry {
  net: number;
  vlan: number;
  macHi: number;
  macLo: number;
  mac: string;
  port: number;
  lastSeen: number;
  /** Remote VTEP (IPv4 as a signed 32-bit number) of an overlay entry; 0 = a local port. */
  vtep?: number;
  /** Added by hand (vsw fdb add): never aged. */
  static?: boolean;
}

/** What changed in the table (for `vsw events`). */
export const FDB_EV_LEARNED = 1;
export const FDB_EV_MOVED = 2;
export const FDB_EV_AGED = 3;
export const FDB_EV_EVICTED = 4;
export const FDB_EV_FULL = 5;   // could not learn even after eviction

/**
 * Told of every change, by the thread that made it (each thread has its own Fdb view and
 * its own hook). Called under the table lock: it must be quick and must not call back.
 */
export type FdbHook = (event: number, net: number, vlan: number, macHi: number, macLo: number, port: number, oldPort: number) => void;

export interface FdbCounters {
  entries: number;
  learned: number;
  moved: number;
  evicted: number;
  aged: number;
  failed: number;
}

/** Bytes a SharedArrayBuffer needs for an FDB with this config. */
export function fdbBytes(cfg: FdbConfig): number {
  return (HEADER_WORDS + cfg.maxPorts + slotCount(cfg) * ENTRY_WORDS) * 4;
}

function slotCount(cfg: FdbConfig): number {
  let n = 16;
  while (n < cfg.maxEntries * 2) n *= 2;
  return n;
}

export class Fdb {
  readonly cfg: FdbConfig;
  readonly sab: SharedArrayBuffer;
  private readonly h: Int32Array;        // header
  private readonly perPort: Int32Array;  // entries per port
  private readonly e: Int32Array;        // entries
  private readonly mask: number;
  private readonly slots: number;
  /** Change notifications (vsw events); null costs one check per change. */
  hook: FdbHook | null = null;

  /** Attach to `sab` (from another thread) or allocate a new table. */
  constructor(cfg: FdbConfig, sab?: SharedArrayBuffer) {
    if (cfg.maxEntries < 1 || cfg.maxPerPort < 1) throw new RangeError('FDB caps must be >= 1');
    this.cfg = cfg;
    this.sab = sab ?? new SharedArrayBuffer(fdbBytes(cfg));
    if (this.sab.byteLength < fdbBytes(cfg)) throw new RangeError('FDB buffer too small');
    this.slots = slotCount(cfg);
    this.mask = this.slots - 1;
    this.h = new Int32Array(this.sab, 0, HEADER_WORDS);
    this.perPort = new Int32Array(this.sab, HEADER_WORDS * 4, cfg.maxPorts);
    this.e = new Int32Array(this.sab, (HEADER_WORDS + cfg.maxPorts) * 4, this.slots * ENTRY_WORDS);
  }

  /** Home slot of the entry whose words start at b (for deleteShift). */
  private readonly homeOfEntry = (b: number): number => this.home(this.e[b + W_NET], this.e[b + W_HI_VLAN], this.e[b + W_MAC_LO]);

  private home(net: number, hiVlan: number, lo: number): number {
    // Multiplicative mixing of the key words (Murmur3 finalizer constants).
    let x = Math.imul(lo ^ Math.imul(hiVlan, 0x9e3779b1) ^ Math.imul(net, 0x85ebca6b), 0xcc9e2d51);
    x ^= x >>> 15;
    x = Math.imul(x, 0x1b873593);
    x ^= x >>> 13;
    return x & this.mask;
  }

  /** Slot index of the key, or -1. Lock-free; safe to call from any thread. */
  private find(net: number, hiVlan: number, lo: number): number {
    const e = this.e;
    let i = this.home(net, hiVlan, lo);
    for (let probes = 0; probes < this.slots; probes++) {
      const b = i * ENTRY_WORDS;
      const seq = Atomics.load(e, b + W_SEQ);
      if ((seq & 1) === 0) {
        if (e[b + W_STATE] === EMPTY) {
          if (Atomics.load(e, b + W_SEQ) === seq) return -1;
          continue; // rewritten under us: read this slot again
        }
        const hit = e[b + W_MAC_LO] === lo && e[b + W_HI_VLAN] === hiVlan && e[b + W_NET] === net;
        if (Atomics.load(e, b + W_SEQ) !== seq) continue;
        if (hit) return i;
        i = (i + 1) & this.mask;
      }
      // odd sequence: a writer is in this slot; spin on it
    }
    return -1;
  }

  /** Port of (net, vlan, mac), or -1 when unknown. */
  lookup(net: number, vlan: number, macHi: number, macLo: number): number {
    const hiVlan = macHi | (vlan << 16);
    const lo = macLo | 0;
    for (;;) {
      const i = this.find(net, hiVlan, lo);
      if (i < 0) return -1;
      const b = i * ENTRY_WORDS;
      const seq = Atomics.load(this.e, b + W_SEQ);
      const port = this.e[b + W_PORT];
      const same = this.e[b + W_MAC_LO] === lo && this.e[b + W_HI_VLAN] === hiVlan && this.e[b + W_NET] === net;
      if ((seq & 1) === 0 && Atomics.load(this.e, b + W_SEQ) === seq && same) return port;
    }
  }

  /**
   * Record that (net, vlan, mac) was seen on `port` at `now`. Returns LEARN_REFRESHED,
   * LEARN_NEW, LEARN_MOVED or LEARN_FAILED (no room even after eviction).
   */
  learn(net: number, vlan: number, macHi: number, macLo: number, port: number, now: number): number {
    const hiVlan = macHi | (vlan << 16);
    const lo = macLo | 0;
    const e = this.e;
    const i = this.find(net, hiVlan, lo);
    if (i >= 0) {
      const b = i * ENTRY_WORDS;
      if (e[b + W_PORT] === port) {
        // Known on this port: refresh only (no lock; a racing aging pass at worst deletes
        // it and the next frame learns it again).
        const seen = e[b + W_SEEN];
        if (seen !== now && seen !== FDB_STATIC) e[b + W_SEEN] = now;
        return LEARN_REFRESHED;
      }
    }
    this.lock();
    try {
      return this.learnLocked(net, hiVlan, lo, port, now);
    } finally {
      this.unlock();
    }
  }

  private learnLocked(net: number, hiVlan: number, lo: number, port: number, now: number): number {
    const e = this.e;
    const h = this.h;
    let found = this.find(net, hiVlan, lo);
    if (found >= 0) {
      let b = found * ENTRY_WORDS;
      const old = e[b + W_PORT];
      if (old === port) {
        if (e[b + W_SEEN] !== FDB_STATIC || now === FDB_STATIC) e[b + W_SEEN] = now;
        return LEARN_REFRESHED;
      }
      if (this.perPort[port] >= this.cfg.maxPerPort) {
        if (!this.evictFromPort(port, found)) { this.failed(net, hiVlan, lo, port); return LEARN_FAILED; }
        found = this.find(net, hiVlan, lo); // the eviction may have shifted our entry
        b = found * ENTRY_WORDS;
      }
      Atomics.add(e, b + W_SEQ, 1);
      e[b + W_PORT] = port;
      e[b + W_SEEN] = now;
      e[b + W_VTEP] = 0;
      Atomics.add(e, b + W_SEQ, 1);
      this.perPort[old]--;
      this.perPort[port]++;
      h[H_MOVED]++;
      if (this.hook) this.hook(FDB_EV_MOVED, net, hiVlan >>> 16, hiVlan & 0xffff, lo >>> 0, port, old);
      return LEARN_MOVED;
    }
    if (this.perPort[port] >= this.cfg.maxPerPort) {
      if (!this.evictFromPort(port, -1)) { this.failed(net, hiVlan, lo, port); return LEARN_FAILED; }
    } else if (h[H_COUNT] >= this.cfg.maxEntries) {
      if (!this.evictFromPort(this.busiestPort(), -1)) { this.failed(net, hiVlan, lo, port); return LEARN_FAILED; }
    }
    // Deleting may have shifted entries: probe afresh for the first empty slot.
    let i = this.home(net, hiVlan, lo);
    while (e[i * ENTRY_WORDS + W_STATE] !== EMPTY) i = (i + 1) & this.mask;
    const b = i * ENTRY_WORDS;
    Atomics.add(e, b + W_SEQ, 1);
    e[b + W_MAC_LO] = lo;
    e[b + W_HI_VLAN] = hiVlan;
    e[b + W_NET] = net;
    e[b + W_PORT] = port;
    e[b + W_SEEN] = now;
    e[b + W_VTEP] = 0;
    e[b + W_STATE] = USED;
    Atomics.add(e, b + W_SEQ, 1);
    this.perPort[port]++;
    h[H_COUNT]++;
    h[H_LEARNED]++;
    if (this.hook) this.hook(FDB_EV_LEARNED, net, hiVlan >>> 16, hiVlan & 0xffff, lo >>> 0, port, -1);
    return LEARN_NEW;
  }

  private failed(net: number, hiVlan: number, lo: number, port: number): void {
    this.h[H_FAILED]++;
    if (this.hook) this.hook(FDB_EV_FULL, net, hiVlan >>> 16, hiVlan & 0xffff, lo >>> 0, port, -1);
  }

  private busiestPort(): number {
    let best = 0;
    for (let p = 1; p < this.cfg.maxPorts; p++) if (this.perPort[p] > this.perPort[best]) best = p;
    return best;
  }

  /** Evict one entry of `port` (not slot `keep`), found by the rotating cursor. Locked. */
  private evictFromPort(port: number, keep: number): boolean {
    const e = this.e;
    let i = this.h[H_CURSOR] & this.mask;
    for (let n = 0; n < this.slots; n++, i = (i + 1) & this.mask) {
      const b = i * ENTRY_WORDS;
      if (i !== keep && e[b + W_STATE] === USED && e[b + W_PORT] === port) {
        this.h[H_CURSOR] = (i + 1) & this.mask;
        this.notifyRemoval(FDB_EV_EVICTED, b);
        this.deleteLocked(i);
        this.h[H_EVICTED]++;
        return true;
      }
    }
    return false;
  }

  /** Remove slot i and shift the rest of its probe run back (no tombstones). Locked. */
  private deleteLocked(i: number): void {
    const e = this.e;
    this.perPort[e[i * ENTRY_WORDS + W_PORT]]--;
    this.h[H_COUNT]--;
    deleteShift(e, i, this.mask, ENTRY_WORDS, this.homeOfEntry, true);
  }

  /** Remove entries older than the aging time. Returns how many were removed. */
  age(now: number): number {
    return this.removeWhere((b) => now - this.e[b + W_SEEN] > this.cfg.agingSeconds, H_AGED, FDB_EV_AGED);
  }

  /** Remove every entry learned on `port` (the port is going away). */
  flushPort(port: number): number {
    return this.removeWhere((b) => this.e[b + W_PORT] === port, -1);
  }

  /** Remove every entry of network `net`. */
  flushNet(net: number): number {
    return this.removeWhere((b) => this.e[b + W_NET] === net, -1);
  }

  private removeWhere(pred: (base: number) => boolean, counter: number, event = 0): number {
    let removed = 0;
    this.lock();
    try {
      // A deletion can shift an entry into the slot just examined: re-examine that slot.
      for (let i = 0; i < this.slots; i++) {
        const b = i * ENTRY_WORDS;
        while (this.e[b + W_STATE] === USED && pred(b)) {
          if (event) this.notifyRemoval(event, b);
          this.deleteLocked(i);
          removed++;
        }
      }
      if (counter >= 0) this.h[counter] += removed;
    } finally {
      this.unlock();
    }
    return removed;
  }

  private notifyRemoval(event: number, b: number): void {
    if (!this.hook) return;
    const hv = this.e[b + W_HI_VLAN];
    this.hook(event, this.e[b + W_NET], hv >>> 16, hv & 0xffff, this.e[b + W_MAC_LO] >>> 0, this.e[b + W_PORT], -1);
  }

  /** A snapshot of every entry (for `vsw fdb`). */
  entries(): FdbEntry[] {
    const out: FdbEntry[] = [];
    const e = this.e;
    for (let i = 0; i < this.slots; i++) {
      const b = i * ENTRY_WORDS;
      if (e[b + W_STATE] !== USED) continue;
      const hiVlan = e[b + W_HI_VLAN];
      const macHi = hiVlan & 0xffff;
      const macLo = e[b + W_MAC_LO] >>> 0;
      out.push({
        net: e[b + W_NET], vlan: hiVlan >>> 16, macHi, macLo, mac: macToStringHiLo(macHi, macLo),
        port: e[b + W_PORT], lastSeen: e[b + W_SEEN],
        ...(e[b + W_VTEP] !== 0 ? { vtep: e[b + W_VTEP] } : {}),
        ...(e[b + W_SEEN] === FDB_STATIC ? { static: true } : {}),
      });
    }
    return out;
  }

  /** Entries currently held for `port`. */
  portEntries(port: number): number {
    return this.perPort[port];
  }

  // --- VXLAN: entries behind a remote VTEP (docs/VXLAN.md) ---

  /**
   * learn() for a frame decapsulated from `vtep` on overlay port `port`, and remember the
   * VTEP (a static entry keeps its own). Returns what learn() returned.
   */
  learnVtep(net: number, vlan: number, macHi: number, macLo: number, port: number, vtep: number, now: number): number {
    const r = this.learn(net, vlan, macHi, macLo, port, now);
    if (r === LEARN_FAILED) return r;
    const i = this.find(net, macHi | (vlan << 16), macLo | 0);
    if (i < 0) return r;
    const b = i * ENTRY_WORDS;
    const e = this.e;
    if (e[b + W_VTEP] === (vtep | 0) || e[b + W_PORT] !== port || e[b + W_SEEN] === FDB_STATIC) return r;
    this.lock();
    try {
      const j = this.find(net, macHi | (vlan << 16), macLo | 0);
      if (j >= 0) {
        const c = j * ENTRY_WORDS;
        Atomics.add(e, c + W_SEQ, 1);
        e[c + W_VTEP] = vtep | 0;
        Atomics.add(e, c + W_SEQ, 1);
      }
    } finally {
      this.unlock();
    }
    return r;
  }

  /** Remove the learned (not static) entries of overlay port `port` behind `vtep` (a peer removed). */
  flushVtep(port: number, vtep: number): number {
    return this.removeWhere((b) => this.e[b + W_PORT] === port && this.e[b + W_VTEP] === (vtep | 0) && this.e[b + W_SEEN] !== FDB_STATIC, -1);
  }

  /** The remote VTEP of (net, vlan, mac), or 0 when unknown or local. Lock-free. */
  lookupVtep(net: number, vlan: number, macHi: number, macLo: number): number {
    const hiVlan = macHi | (vlan << 16);
    const lo = macLo | 0;
    for (;;) {
      const i = this.find(net, hiVlan, lo);
      if (i < 0) return 0;
      const b = i * ENTRY_WORDS;
      const seq = Atomics.load(this.e, b + W_SEQ);
      const vtep = this.e[b + W_VTEP];
      const same = this.e[b + W_MAC_LO] === lo && this.e[b + W_HI_VLAN] === hiVlan && this.e[b + W_NET] === net;
      if ((seq & 1) === 0 && Atomics.load(this.e, b + W_SEQ) === seq && same) return vtep;
    }
  }

  /** A static entry: (net, vlan, mac) on `port` (behind `vtep` when not 0), never aged. */
  addStatic(net: number, vlan: number, macHi: number, macLo: number, port: number, vtep: number): number {
    const hiVlan = macHi | (vlan << 16);
    const lo = macLo | 0;
    this.lock();
    try {
      const r = this.learnLocked(net, hiVlan, lo, port, FDB_STATIC);
      const i = this.find(net, hiVlan, lo);
      if (i >= 0) {
        const b = i * ENTRY_WORDS;
        Atomics.add(this.e, b + W_SEQ, 1);
        this.e[b + W_SEEN] = FDB_STATIC;
        this.e[b + W_VTEP] = vtep | 0;
        Atomics.add(this.e, b + W_SEQ, 1);
      }
      return r;
    } finally {
      this.unlock();
    }
  }

  /** Remove (net, vlan, mac), static or learned. true when it was there. */
  remove(net: number, vlan: number, macHi: number, macLo: number): boolean {
    const hiVlan = macHi | (vlan << 16);
    const lo = macLo | 0;
    this.lock();
    try {
      const i = this.find(net, hiVlan, lo);
      if (i < 0) return false;
      this.deleteLocked(i);
      return true;
    } finally {
      this.unlock();
    }
  }

  counters(): FdbCounters {
    const h = this.h;
    return {
      entries: h[H_COUNT], learned: h[H_LEARNED], moved: h[H_MOVED],
      evicted: h[H_EVICTED], aged: h[H_AGED], failed: h[H_FAILED],
    };
  }

  private lock(): void {
    lockWord(this.h, H_LOCK);
  }

  private unlock(): void {
    unlockWord(this.h, H_LOCK);
  }
}
