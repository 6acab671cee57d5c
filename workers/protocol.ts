// Every message between the main thread and a worker, typed in one place.
// Main -> worker messages are read synchronously by the worker (receiveMessageOnPort)
// after the main thread signals the worker's eventfd; the worker answers each with an ack
// carrying the same seq.

import type { FdbConfig } from '../dataplane/tables/fdb';
import type { L3Snapshot } from '../dataplane/tables/l3';
import type { TapNames, TapSpec } from './taps';
import type { NeighConfig } from '../dataplane/tables/neigh';
import type { ConntrackConfig } from '../dataplane/tables/conntrack';
import type { PortGuard, PortVlans } from '../dataplane/tables/ports';
import type { VxlanSpec } from '../dataplane/vxlan/port';
import type { ImpairSpec } from '../dataplane/impair/spec';

export interface WorkerInit {
  index: number;
  /** eventfd the main thread signals after posting a message. */
  eventfd: number;
  ctrl: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  fdb: SharedArrayBuffer;
  fdbConfig: FdbConfig;
  maxPorts: number;
  /** Ring of captured frames (workers/capture-ring.ts). */
  capture: SharedArrayBuffer;
  /** Ring of MAC table events (same format; see workers/host.ts drainEvents). */
  events: SharedArrayBuffer;
  /** The router's neighbour and connection tables, and the ring of DNS queries for the main thread. */
  neigh: SharedArrayBuffer;
  neighConfig: NeighConfig;
  ct: SharedArrayBuffer;
  ctConfig: ConntrackConfig;
  punt: SharedArrayBuffer;
}

export interface AddPortMsg {
  type: 'addPort';
  seq: number;
  id: number;
  name: string;
  fd: number;
  /** 0 = AF_PACKET, 1 = TAP (workers/io.ts KIND_*). */
  kind: number;
  vnet: boolean;
  netId: number;
  /** VLAN id of netId's network for an access port (0 or absent: an untagged network). */
  vlan?: number;
  /** The whole 802.1Q membership (trunks, a tagged uplink); overrides netId/vlan. */
  vlans?: PortVlans;
  /** True on the one worker that receives from this port. */
  rx: boolean;
  /** Port security: what a container port may send as its source (absent: not checked). */
  guard?: PortGuard;
  /** An overlay port (kind KIND_UDP, fd the raw sending socket): its VXLAN segment (docs/VXLAN.md). */
  vxlan?: VxlanSpec;
}

/** An overlay port's peers changed (vsw network peer add|rm). */
export interface VxlanPeersMsg {
  type: 'vxlanPeers';
  seq: number;
  id: number;
  peers: { addr: number; slot: number }[];
}

/** What a port carries changed (a trunk, when networks come and go). */
export interface VlansMsg {
  type: 'vlans';
  seq: number;
  id: number;
  vlans: PortVlans;
}

/** A port's link impairment (vsw impair), each direction replaced as a whole; absent = none. */
export interface ImpairMsg {
  type: 'impair';
  seq: number;
  id: number;
  in?: ImpairSpec;
  out?: ImpairSpec;
}

export interface RemovePortMsg {
  type: 'removePort';
  seq: number;
  id: number;
}

/** Every capture and live-trace session (replaces the previous set; workers/taps.ts). */
export interface TapsMsg {
  type: 'taps';
  seq: number;
  sessions: TapSpec[];
  names: TapNames;
}

/** The router's configuration: a full snapshot, replacing the previous one. */
export interface L3Msg {
  type: 'l3';
  seq: number;
  snapshot: L3Snapshot;
}

/**
 * Frames to handle as if port `id` had received them (vsw inject), sent to the worker that
 * receives from the port: `frames` holds them back to back (Ethernet, no virtio-net header),
 * `lens` their lengths; at most MAX_BATCH (workers/io.ts). The ack carries the tally.
 */
export interface InjectMsg {
  type: 'inject';
  seq: number;
  id: number;
  frames: Uint8Array;
  lens: number[];
}

/** What the pipeline decided for injected frames: sent on (unicast or flood), taken by the switch, dropped by reason index. */
export interface InjectTally {
  forwarded: number;
  local: number;
  /** Held by the port's `in` impairment (decided when released, not tallied here). */
  impaired: number;
  /** Per reason index of dataplane/drops.ts; absent reasons are 0. */
  drops: number[];
}

export type ToWorker = AddPortMsg | RemovePortMsg | TapsMsg | L3Msg | VlansMsg | VxlanPeersMsg | ImpairMsg | InjectMsg;

export interface ReadyMsg { type: 'ready'; worker: number }
export interface AckMsg { type: 'ack'; worker: number; seq: number; error?: string; tally?: InjectTally }
export interface StoppedMsg { type: 'stopped'; worker: number }
export interface FatalMsg { type: 'fatal'; worker: number; message: string }

export type FromWorker = ReadyMsg | AckMsg | StoppedMsg | FatalMsg;
