// What a stage is. A stage makes one decision about one frame: it records what it found on
// the Packet and returns true to pass the frame on, or sets a final verdict (an egress port,
// flood, or a drop reason) and returns false. Stages never send, never allocate per frame,
// and read the clock only through the context.

import type { Fdb } from '../tables/fdb';
import type { PortTable } from '../tables/ports';
import type { Packet } from '../packet';
import type { L3Table } from '../tables/l3';
import type { Neigh } from '../tables/neigh';
import type { Conntrack } from '../tables/conntrack';
import type { WorkerDns } from '../l3/dns';
import type { ArpProxy } from '../vxlan/arp-proxy';

/**
 * Frames the router makes (ARP requests, ICMP errors) and frames it hands to the main thread.
 * What it sends leaves through dataplane/egress.ts like any verdict: in each port's form
 * (tagged for a trunk, behind an all-zero virtio-net header or none).
 */
export interface Emitter {
  /** Where the made frames are written. */
  readonly buf: Uint8Array;
  /**
   * Offset in buf of room for one frame (Ethernet header first, up to 2 KiB less the 14
   * bytes kept before it for a virtio-net header and a VLAN tag), or -1 when none is left
   * this batch.
   */
  alloc(): number;
  /**
   * Send the frame written at off (from alloc()) in network `net`: to `port`, or to every
   * port of `net` when port is OUT_FLOOD. Nothing when the port is gone or does not carry `net`.
   */
  send(off: number, len: number, port: number, net: number): void;
  /** Hand the frame to the main thread (DNS). false when the ring is full. */
  punt(p: Packet): boolean;
}

/** The router's tables (docs/L3.md). */
export interface L3Context {
  table: L3Table;
  neigh: Neigh;
  ct: Conntrack;
  emit: Emitter;
  /** Answers DNS queries for local names in place; null = every query goes to the main thread. */
  dns: WorkerDns | null;
}

export interface StageContext {
  fdb: Fdb;
  ports: PortTable;
  /** Whole seconds, from the injected clock; set once per batch. */
  now: number;
  /** When true, nothing may change state (no learning): a dry-run trace. */
  dryRun: boolean;
  /** The router's tables; null = a pure L2 switch (no gateway). */
  l3: L3Context | null;
  /** ARP proxies of VXLAN networks with --arp-proxy, by network id (dataplane/vxlan/arp-proxy.ts); absent = none. */
  arpProxy?: (ArpProxy | undefined)[];
}

export interface Stage {
  readonly name: string;
  process(p: Packet, ctx: StageContext): boolean;
}
