// Conntrack's per-port counts (PortCounts, below) and per-source counts (connections per original source IPv4 address, for the
// per-source cap): an open-addressing table (linear probing) of [ip, count] Int32 pairs in
// the conntrack buffer, count 0 = empty, twice as many slots as it can hold, so a probe is
// short and ends at an empty slot. Deletion shifts back (probe.ts), no tombstones. Used only
// under the conntrack lock: no sequence words.

import { deleteShift } from './probe';

const S_IP = 0;
const S_COUNT = 1;
const S_WORDS = 2;

export class SourceCounts {
  /** s: slots * S_WORDS words; mask = slots - 1; home(ip) = its home slot (seeded hash). */
  constructor(private readonly s: Int32Array, private readonly mask: number,
    private readonly home: (ip: number) => number) {}

  private readonly homeOf = (b: number): number => this.home(this.s[b + S_IP]);

  /** Slot of ip, or -1. */
  slot(ip: number): number {
    const s = this.s;
    let i = this.home(ip);
    for (;;) {
      if (s[i * S_WORDS + S_COUNT] === 0) return -1;
      if (s[i * S_WORDS + S_IP] === ip) return i;
      i = (i + 1) & this.mask;
    }
  }

  /** Connections counted for ip. */
  count(ip: number): number {
    const slot = this.slot(ip);
    return slot < 0 ? 0 : this.s[slot * S_WORDS + S_COUNT];
  }

  add(ip: number): void {
    const s = this.s;
    let i = this.home(ip);
    while (s[i * S_WORDS + S_COUNT] !== 0) {
      if (s[i * S_WORDS + S_IP] === ip) { s[i * S_WORDS + S_COUNT]++; return; }
      i = (i + 1) & this.mask;
    }
    s[i * S_WORDS + S_IP] = ip;
    s[i * S_WORDS + S_COUNT] = 1;
  }

  del(ip: number): void {
    const slot = this.slot(ip);
    if (slot < 0) throw new Error('conntrack: source missing'); // a bug, never data-driven
    if (--this.s[slot * S_WORDS + S_COUNT] > 0) return;
    deleteShift(this.s, slot, this.mask, S_WORDS, this.homeOf, false);
  }
}

/** Switch ports whose connections are counted (workers/shared.ts MAX_PORTS). */
export const CT_PORTS = 1024;

/**
 * Connections per ingress switch port, for the per-port cap: one Int32 per port id. A record
 * keeps its port + 1 (0 = not counted: the uplink, an id out of range). Under the lock.
 */
export class PortCounts {
  constructor(private readonly n: Int32Array) {}

  /** Connections counted for port (0 for one not counted). */
  count(port: number): number {
    return port >= 0 && port < this.n.length ? this.n[port] : 0;
  }

  /** Count one more for port; returns what the record keeps (port + 1, or 0). */
  add(port: number): number {
    if (port < 0 || port >= this.n.length) return 0;
    this.n[port]++;
    return port + 1;
  }

  /** Uncount a record that kept `kept` (from add()). */
  del(kept: number): void {
    if (kept > 0 && this.n[kept - 1] > 0) this.n[kept - 1]--;
  }
}
