// The gateway's neighbour (ARP) table, shared by every worker thread and the main thread.
//
// Key: (network, IPv4). `net` is a vsw network id (0..4094) or UPLINK_NET (4095) for the
// uplink; the same IP in two networks is two entries.
// Value: the MAC (hi 16 bits / lo 32 bits, as in fdb.ts), a state, and times (whole seconds
// from an injected clock, as in fdb.ts).
//
// States (a reduced Linux NUD machine; there is no DELAY/PROBE timer, see "stale" below):
//   REACHABLE   confirmed (learn()) less than `reachableSeconds` ago (base_reachable_time, 30 s).
//   STALE       confirmed longer ago. Still used, like Linux. Removed once it has been stale
//               for `staleSeconds` (gc_stale_time, 60 s) without a new confirmation.
//   INCOMPLETE  a miss asked for resolution (solicit()): an ARP request is out, no MAC yet.
//               At most one request per `retrySeconds` (1 s); after `maxProbes` (3)
//               unanswered requests the entry becomes
//   FAILED      for `retrySeconds * 3`: solicit() says "don't ask" and the frames are dropped,
//               so a dead address does not cost an ARP broadcast per packet. Then it is removed
//               (or, when asked again, starts over as INCOMPLETE).
// lookup() only returns an entry with a MAC (REACHABLE or STALE).
//
// Stale entries: without probe timers, "stale for staleSeconds" is counted from the last
// confirmation (an entry is dropped `reachableSeconds + staleSeconds` after it), not from its
// last use, so a neighbour that went away is not used for ever. A caller that wants Linux's
// behaviour for an address in use (re-confirm it before it goes) sees `state === NEIGH_STALE`
// after a lookup() hit and may call solicit(): on a STALE entry it allows one (rate-limited)
// ARP request while the entry stays usable; the answer makes it REACHABLE again.
//
// Storage and concurrency: as in fdb.ts. One open-addressing hash table (linear probing,
// slots = twice the entry cap rounded up to a power of two) in a SharedArrayBuffer. lookup()
// takes no lock: each slot has a sequence word that a writer makes odd while it rewrites the
// slot, and a reader that sees it odd or changed reads again. A refresh (learn() of the same
// MAC on a REACHABLE entry) writes only the timestamp, without the lock; a solicit() that has
// nothing to change takes no lock either. Everything else (new entries, state and MAC changes,
// deletion with backward shift, aging) takes one spin lock.
//
// Bounds: at most `maxEntries`. A new entry in a full table evicts the oldest STALE entry,
// else the oldest INCOMPLETE/FAILED one (oldest = least recently confirmed/created); when
// every entry is REACHABLE, the new one is refused (counter `failed`). Finding the oldest is
// one pass over the slots; it happens only when the table is full.
//
// One file of about 540 lines, 40 of them this header: the state machine, the storage and
// the lock-free reads are one design (each state change is a rewrite under the sequence
// word), as in fdb.ts; what it shares with the FDB is in probe.ts and lock.ts.

import { lockWord, unlockWord } from './lock';
import { deleteShift } from './probe';

/** The network id of the uplink's neighbours. */
export const UPLINK_NET = 4095;

export const NEIGH_REACHABLE = 1;
export const NEIGH_STALE = 2;
export const NEIGH_INCOMPLETE = 3;
export const NEIGH_FAILED = 4;

/** learn() results */
export const NEIGH_LEARN_REFRESHED = 0;
export const NEIGH_LEARN_NEW = 1;
export const NEIGH_LEARN_CHANGED = 2;
export const NEIGH_LEARN_FAILED = 3;
/** Refused: not a station's MAC (multicast, broadcast, all-zero) or not a neighbour's address (router/arp.ts). */
export const NEIGH_LEARN_REFUSED = 4;

export interface NeighConfig {
  /** total cap (default 4096) */
  maxEntries: number;
  /** REACHABLE for this long after a confirmation (default 30, Linux base_reachable_time) */
  reachableSeconds: number;
  /** a STALE entry not confirmed for this long is removed (default 60, Linux gc_stale_time) */
  staleSeconds: number;
  /** at most one ARP request per address per this many seconds (default 1) */
  retrySeconds: number;
  /** after this many unanswered requests the entry is FAILED for retrySeconds * 3 (default 3) */
  maxProbes: number;
}

export const NEIGH_DEFAULTS: Readonly<NeighConfig> = Object.freeze({
  maxEntries: 4096, reachableSeconds: 30, staleSeconds: 60, retrySeconds: 1, maxProbes: 3,
});

export interface NeighEntry {
  net: number;
  ip: number;
  macHi: number;
  macLo: number;
  state: number;
  /** seconds since the last confirmation (INCOMPLETE: since created; FAILED: since it failed) */
  ageSeconds: number;
}

export interface NeighCounters {
  entries: number;
  /** entries that got their first MAC (new, or an INCOMPLETE/FAILED one resolved) */
  learned: number;
  /** confirmations with a different MAC */
  changed: number;
  /** ARP requests allowed by solicit() */
  solicited: number;
  /** learn()/solicit() refused: table full of REACHABLE entries */
  failed: number;
  /** entries removed to make room */
  evicted: number;
  /** resolutions that failed (entries that became FAILED) */
  unresolved: number;
  /** learn() refused: a multicast, broadcast or all-zero MAC, or an address that is no
   * neighbour's (a subnet's network or broadcast address, the switch's own: router/arp.ts) */
  refused?: number;
}

const W_SEQ = 0;        // sequence: odd while being written
const W_STATE = 1;      // state (low 8 bits; 0 = empty) | requests sent << 8
const W_NET = 2;
const W_IP = 3;
const W_MAC_HI = 4;
const W_MAC_LO = 5;
const W_UPDATED = 6;    // last confirmation (INCOMPLETE: created; FAILED: failed)
const W_SOLICITED = 7;  // last ARP request allowed
const ENTRY_WORDS = 8;

const H_LOCK = 0;
const H_COUNT = 1;
const H_LEARNED = 2;
const H_CHANGED = 3;
const H_SOLICITED = 4;
const H_FAILED = 5;
const H_EVICTED = 6;
const H_UNRESOLVED = 7;
const H_REFUSED = 8;
const HEADER_WORDS = 16;

const EMPTY = 0;
const STATE_MASK = 0xff;
const PROBE_SHIFT = 8;
/** FAILED lasts retrySeconds * this */
const FAILED_RETRIES = 3;

/** Bytes a SharedArrayBuffer needs for a neighbour table with this config. */
export function neighBytes(cfg: NeighConfig): number {
  return (HEADER_WORDS + slotCount(cfg) * ENTRY_WORDS) * 4;
}

function slotCount(cfg: NeighConfig): number {
  let n = 16;
  while (n < cfg.maxEntries * 2) n *= 2;
  return n;
}

export class Neigh {
  readonly cfg: NeighConfig;
  readonly sab: SharedArrayBuffer;
  /** The MAC of the last lookup() hit. */
  hi = 0;
  lo = 0;
  /** The state of the last lookup() hit: NEIGH_REACHABLE, or NEIGH_STALE once it is due. */
  state = 0;
  private readonly h: Int32Array;
  private readonly e: Int32Array;
  private readonly mask: number;
  private readonly slots: number;

  /** Attach to `sab` (from another thread) or allocate a new table. */
  constructor(cfg: NeighConfig, sab?: SharedArrayBuffer) {
    if (!(cfg.maxEntries >= 1)) throw new RangeError('neighbour table cap must be >= 1');
    this.cfg = cfg;
    this.sab = sab ?? new SharedArrayBuffer(neighBytes(cfg));
    if (this.sab.byteLength < neighBytes(cfg)) throw new RangeError('neighbour table buffer too small');
    this.slots = slotCount(cfg);
    this.mask = this.slots - 1;
    this.h = new Int32Array(this.sab, 0, HEADER_WORDS);
    this.e = new Int32Array(this.sab, HEADER_WORDS * 4, this.slots * ENTRY_WORDS);
  }

  /** Home slot of the entry whose words start at b (for deleteShift). */
  private readonly homeOfEntry = (b: number): number => this.home(this.e[b + W_NET], this.e[b + W_IP]);

  private home(net: number, ip: number): number {
    // Multiplicative mixing of the key words (Murmur3 finalizer constants).
    let x = Math.imul(ip ^ Math.imul(net, 0x85ebca6b), 0xcc9e2d51);
    x ^= x >>> 15;
    x = Math.imul(x, 0x1b873593);
    x ^= x >>> 13;
    return x & this.mask;
  }

  /** Slot index of the key, or -1. Lock-free; safe to call from any thread. */
  private find(net: number, ip: number): number {
    const e = this.e;
    let i = this.home(net, ip);
    for (let probes = 0; probes < this.slots; probes++) {
      const b = i * ENTRY_WORDS;
      const seq = Atomics.load(e, b + W_SEQ);
      if ((seq & 1) === 0) {
        if (e[b + W_STATE] === EMPTY) {
          if (Atomics.load(e, b + W_SEQ) === seq) return -1;
          continue; // rewritten under us: read this slot again
        }
        const hit = e[b + W_IP] === ip && e[b + W_NET] === net;
        if (Atomics.load(e, b + W_SEQ) !== seq) continue;
        if (hit) return i;
        i = (i + 1) & this.mask;
      }
      // odd sequence: a writer is in this slot; spin on it
    }
    return -1;
  }

  /**
   * Found with a MAC (REACHABLE or STALE; a stale entry is still used, like Linux): true, and
   * the MAC is in this.hi / this.lo (this.state says which). Otherwise false. Lock-free.
   */
  lookup(net: number, ip: number, now: number): boolean {
    ip |= 0;
    const e = this.e;
    for (;;) {
      const i = this.find(net, ip);
      if (i < 0) return false;
      const b = i * ENTRY_WORDS;
      const seq = Atomics.load(e, b + W_SEQ);
      const st = e[b + W_STATE] & STATE_MASK;
      const hi = e[b + W_MAC_HI];
      const lo = e[b + W_MAC_LO];
      const updated = e[b + W_UPDATED];
      const same = e[b + W_IP] === ip && e[b + W_NET] === net;
      if ((seq & 1) !== 0 || Atomics.load(e, b + W_SEQ) !== seq || !same) continue;
      if (st !== NEIGH_REACHABLE && st !== NEIGH_STALE) return false;
      this.hi = hi;
      this.lo = lo >>> 0;
      this.state = st === NEIGH_REACHABLE && now - updated > this.cfg.reachableSeconds ? NEIGH_STALE : st;
      return true;
    }
  }

  /**
   * Learn/confirm ip -> mac (from an ARP request/reply/gratuitous ARP, or an IP packet's
   * source). Returns NEIGH_LEARN_REFRESHED (0), _NEW (1: no entry, or an INCOMPLETE/FAILED
   * one resolved), _CHANGED (2: the MAC changed), _FAILED (3: table full even after evicting)
   * or _REFUSED (4: a multicast/broadcast or all-zero MAC is no station's, counted `refused`).
   */
  learn(net: number, ip: number, macHi: number, macLo: number, now: number): number {
    ip |= 0;
    macLo |= 0;
    if ((macHi & 0x0100) !== 0 || (macHi === 0 && macLo === 0)) return this.refuse();
    const e = this.e;
    const i = this.find(net, ip);
    if (i >= 0) {
      const b = i * ENTRY_WORDS;
      if ((e[b + W_STATE] & STATE_MASK) === NEIGH_REACHABLE && e[b + W_MAC_LO] === macLo && e[b + W_MAC_HI] === macHi) {
        // Known, same MAC: refresh only (no lock; a racing aging pass at worst marks it
        // STALE and the next packet confirms it again).
        if (e[b + W_UPDATED] !== now) e[b + W_UPDATED] = now;
        return NEIGH_LEARN_REFRESHED;
      }
    }
    this.lock();
    try {
      return this.learnLocked(net, ip, macHi, macLo, now);
    } finally {
      this.unlock();
    }
  }

  private learnLocked(net: number, ip: number, macHi: number, macLo: number, now: number): number {
    const e = this.e;
    const h = this.h;
    const i = this.find(net, ip);
    if (i >= 0) {
      const b = i * ENTRY_WORDS;
      const st = e[b + W_STATE] & STATE_MASK;
      const hasMac = st === NEIGH_REACHABLE || st === NEIGH_STALE;
      const sameMac = hasMac && e[b + W_MAC_LO] === macLo && e[b + W_MAC_HI] === macHi;
      Atomics.add(e, b + W_SEQ, 1);
      e[b + W_MAC_HI] = macHi;
      e[b + W_MAC_LO] = macLo;
      e[b + W_UPDATED] = now;
      e[b + W_STATE] = NEIGH_REACHABLE;
      Atomics.add(e, b + W_SEQ, 1);
      if (sameMac) return NEIGH_LEARN_REFRESHED;
      if (hasMac) { h[H_CHANGED]++; return NEIGH_LEARN_CHANGED; }
      h[H_LEARNED]++;
      return NEIGH_LEARN_NEW;
    }
    if (!this.insertLocked(net, ip, macHi, macLo, NEIGH_REACHABLE, now, 0)) return NEIGH_LEARN_FAILED;
    h[H_LEARNED]++;
    return NEIGH_LEARN_NEW;
  }

  /**
   * Called on a miss: should an ARP request be sent now? Creates an INCOMPLETE entry if absent;
   * returns true at most once per retrySeconds per address, and false once maxProbes requests
   * went unanswered (the entry is then FAILED for retrySeconds * 3; asked after that, it
   * starts over). On a STALE entry (see the file header) it allows one request per
   * retrySeconds and leaves the entry as it is. False when the table is full of REACHABLE
   * entries (counted as failed).
   */
  solicit(net: number, ip: number, now: number): boolean {
    ip |= 0;
    // Lock-free early answers for the common "nothing to do" cases (a dead address being
    // hammered must not serialise the workers on the lock).
    const e = this.e;
    const i = this.find(net, ip);
    if (i >= 0) {
      const b = i * ENTRY_WORDS;
      const st = e[b + W_STATE] & STATE_MASK;
      if (st === NEIGH_REACHABLE && now - e[b + W_UPDATED] <= this.cfg.reachableSeconds) return false;
      if ((st === NEIGH_INCOMPLETE || st === NEIGH_STALE || st === NEIGH_REACHABLE)
        && now - e[b + W_SOLICITED] < this.cfg.retrySeconds) return false;
      if (st === NEIGH_FAILED && now - e[b + W_UPDATED] < this.cfg.retrySeconds * FAILED_RETRIES) return false;
    }
    this.lock();
    try {
      return this.solicitLocked(net, ip, now);
    } finally {
      this.unlock();
    }
  }

  private solicitLocked(net: number, ip: number, now: number): boolean {
    const e = this.e;
    const h = this.h;
    const cfg = this.cfg;
    const i = this.find(net, ip);
    if (i < 0) {
      if (!this.insertLocked(net, ip, 0, 0, NEIGH_INCOMPLETE, now, 1)) return false;
      h[H_SOLICITED]++;
      return true;
    }
    const b = i * ENTRY_WORDS;
    const word = e[b + W_STATE];
    const st = word & STATE_MASK;
    const sent = word >>> PROBE_SHIFT;
    if (st === NEIGH_REACHABLE || st === NEIGH_STALE) {
      // Re-confirm an entry in use (REACHABLE only once it is due to go stale).
      if (st === NEIGH_REACHABLE && now - e[b + W_UPDATED] <= cfg.reachableSeconds) return false;
      if (now - e[b + W_SOLICITED] < cfg.retrySeconds) return false;
      e[b + W_SOLICITED] = now; // not part of what lookup() reads: no sequence bump
      h[H_SOLICITED]++;
      return true;
    }
    if (st === NEIGH_FAILED) {
      if (now - e[b + W_UPDATED] < cfg.retrySeconds * FAILED_RETRIES) return false;
      this.setState(b, NEIGH_INCOMPLETE | (1 << PROBE_SHIFT), now);
      e[b + W_SOLICITED] = now;
      h[H_SOLICITED]++;
      return true;
    }
    // INCOMPLETE
    if (now - e[b + W_SOLICITED] < cfg.retrySeconds) return false;
    if (sent >= cfg.maxProbes) {
      this.setState(b, NEIGH_FAILED, now);
      h[H_UNRESOLVED]++;
      return false;
    }
    e[b + W_STATE] = NEIGH_INCOMPLETE | ((sent + 1) << PROBE_SHIFT); // same state for readers
    e[b + W_SOLICITED] = now;
    h[H_SOLICITED]++;
    return true;
  }

  /** Rewrite the state word and the timestamp of slot base b under the sequence. Locked. */
  private setState(b: number, word: number, now: number): void {
    const e = this.e;
    Atomics.add(e, b + W_SEQ, 1);
    e[b + W_STATE] = word;
    e[b + W_UPDATED] = now;
    Atomics.add(e, b + W_SEQ, 1);
  }

  /** Insert a key known to be absent, evicting if full. false: no room. Locked. */
  private insertLocked(net: number, ip: number, macHi: number, macLo: number, state: number, now: number, sent: number): boolean {
    const e = this.e;
    const h = this.h;
    if (h[H_COUNT] >= this.cfg.maxEntries) {
      const victim = this.victim(now);
      if (victim < 0) { h[H_FAILED]++; return false; }
      this.deleteLocked(victim);
      h[H_EVICTED]++;
    }
    // Deleting may have shifted entries: probe afresh for the first empty slot.
    let i = this.home(net, ip);
    while (e[i * ENTRY_WORDS + W_STATE] !== EMPTY) i = (i + 1) & this.mask;
    const b = i * ENTRY_WORDS;
    Atomics.add(e, b + W_SEQ, 1);
    e[b + W_NET] = net;
    e[b + W_IP] = ip;
    e[b + W_MAC_HI] = macHi;
    e[b + W_MAC_LO] = macLo;
    e[b + W_UPDATED] = now;
    e[b + W_SOLICITED] = now;
    e[b + W_STATE] = state | (sent << PROBE_SHIFT);
    Atomics.add(e, b + W_SEQ, 1);
    h[H_COUNT]++;
    return true;
  }

  /**
   * The slot to evict: the oldest STALE entry (REACHABLE ones past their time count as STALE
   * even before age() marks them), else the oldest INCOMPLETE/FAILED; -1 if none. Locked.
   */
  private victim(now: number): number {
    const e = this.e;
    let stale = -1;
    let staleT = 0;
    let other = -1;
    let otherT = 0;
    for (let i = 0; i < this.slots; i++) {
      const b = i * ENTRY_WORDS;
      const st = e[b + W_STATE] & STATE_MASK;
      if (st === EMPTY) continue;
      const t = e[b + W_UPDATED];
      if (st === NEIGH_STALE || (st === NEIGH_REACHABLE && now - t > this.cfg.reachableSeconds)) {
        if (stale < 0 || t < staleT) { stale = i; staleT = t; }
      } else if (st !== NEIGH_REACHABLE) {
        if (other < 0 || t < otherT) { other = i; otherT = t; }
      }
    }
    return stale >= 0 ? stale : other;
  }

  /** Remove slot i and shift the rest of its probe run back (no tombstones). Locked. */
  private deleteLocked(i: number): void {
    this.h[H_COUNT]--;
    deleteShift(this.e, i, this.mask, ENTRY_WORDS, this.homeOfEntry, true);
  }

  /**
   * Main thread, every second: REACHABLE older than reachableSeconds -> STALE; STALE
   * unconfirmed for staleSeconds more -> removed; INCOMPLETE whose last of maxProbes requests
   * went unanswered -> FAILED; INCOMPLETE not asked about for retrySeconds * maxProbes ->
   * removed; FAILED for retrySeconds * 3 -> removed. Returns the removed count.
   */
  age(now: number): number {
    const e = this.e;
    const cfg = this.cfg;
    let removed = 0;
    this.lock();
    try {
      for (let i = 0; i < this.slots; i++) {
        const b = i * ENTRY_WORDS;
        // A deletion can shift an entry into the slot just examined: look at it again.
        for (;;) {
          const word = e[b + W_STATE];
          const st = word & STATE_MASK;
          if (st === EMPTY) break;
          const since = now - e[b + W_UPDATED];
          let drop = false;
          if (st === NEIGH_REACHABLE) {
            if (since > cfg.reachableSeconds) this.setState(b, NEIGH_STALE, e[b + W_UPDATED]);
          } else if (st === NEIGH_STALE) {
            drop = since > cfg.reachableSeconds + cfg.staleSeconds;
          } else if (st === NEIGH_INCOMPLETE) {
            const quiet = now - e[b + W_SOLICITED];
            if ((word >>> PROBE_SHIFT) >= cfg.maxProbes && quiet >= cfg.retrySeconds) {
              this.setState(b, NEIGH_FAILED, now);
              this.h[H_UNRESOLVED]++;
            } else {
              drop = quiet > cfg.retrySeconds * cfg.maxProbes;
            }
          } else {
            drop = since >= cfg.retrySeconds * FAILED_RETRIES;
          }
          if (!drop) break;
          this.deleteLocked(i);
          removed++;
        }
      }
    } finally {
      this.unlock();
    }
    return removed;
  }

  /** Remove the entry of (net, ip). */
  remove(net: number, ip: number): boolean {
    ip |= 0;
    this.lock();
    try {
      const i = this.find(net, ip);
      if (i < 0) return false;
      this.deleteLocked(i);
      return true;
    } finally {
      this.unlock();
    }
  }

  /** Remove every entry of network `net`. Returns how many. */
  flushNet(net: number): number {
    const e = this.e;
    let removed = 0;
    this.lock();
    try {
      for (let i = 0; i < this.slots; i++) {
        const b = i * ENTRY_WORDS;
        while (e[b + W_STATE] !== EMPTY && e[b + W_NET] === net) {
          this.deleteLocked(i);
          removed++;
        }
      }
    } finally {
      this.unlock();
    }
    return removed;
  }

  /** A snapshot of every entry (for `vsw neigh` / the API). REACHABLE entries past their time show as STALE. */
  list(now: number): NeighEntry[] {
    const out: NeighEntry[] = [];
    const e = this.e;
    for (let i = 0; i < this.slots; i++) {
      const b = i * ENTRY_WORDS;
      let st = e[b + W_STATE] & STATE_MASK;
      if (st === EMPTY) continue;
      const ageSeconds = now - e[b + W_UPDATED];
      if (st === NEIGH_REACHABLE && ageSeconds > this.cfg.reachableSeconds) st = NEIGH_STALE;
      const hasMac = st === NEIGH_REACHABLE || st === NEIGH_STALE;
      out.push({
        net: e[b + W_NET], ip: e[b + W_IP] >>> 0,
        macHi: hasMac ? e[b + W_MAC_HI] : 0, macLo: hasMac ? e[b + W_MAC_LO] >>> 0 : 0,
        state: st, ageSeconds,
      });
    }
    return out;
  }

  /** Count a refused learn() (also for the router's address checks): NEIGH_LEARN_REFUSED. */
  refuse(): number {
    Atomics.add(this.h, H_REFUSED, 1);
    return NEIGH_LEARN_REFUSED;
  }

  counters(): NeighCounters {
    const h = this.h;
    return {
      entries: h[H_COUNT], learned: h[H_LEARNED], changed: h[H_CHANGED], solicited: h[H_SOLICITED],
      failed: h[H_FAILED], evicted: h[H_EVICTED], unresolved: h[H_UNRESOLVED],
      refused: Atomics.load(h, H_REFUSED),
    };
  }

  private lock(): void {
    lockWord(this.h, H_LOCK);
  }

  private unlock(): void {
    unlockWord(this.h, H_LOCK);
  }
}

/** The state's name, as `ip neigh` prints it. */
export function neighStateName(state: number): string {
  switch (state) {
    case NEIGH_REACHABLE: return 'REACHABLE';
    case NEIGH_STALE: return 'STALE';
    case NEIGH_INCOMPLETE: return 'INCOMPLETE';
    case NEIGH_FAILED: return 'FAILED';
    default: return 'NONE';
  }
}
