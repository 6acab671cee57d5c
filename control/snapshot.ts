// `vsw snapshot -w FILE`: everything that decides where a frame goes, as one versioned JSON
// document, so `vsw replay` (control/replay/) can rebuild the switch offline and run
// captures through it. docs/EXPERIMENTS.md describes the format; bump SNAPSHOT_VERSION on
// any change a reader of the old format would get wrong.
//
// What it holds:
// - the ports as the workers have them (id, interface name, kind, virtio-net header, 802.1Q
//   membership, port security) and how the API names them (network, container), the
//   networks (id, name) and each container's networks in order (so replay resolves PORT as
//   every other command does: control/trace.ts resolvePort);
// - the router's configuration as last sent to the workers (dataplane/tables/l3.ts: the
//   gateways, the uplink, published ports, the DNS names);
// - the MAC, neighbour and connection tables: each table's shared memory, byte for byte
//   (gzip, base64) with its configuration -- entries, their ages and the NAT port cursor
//   exactly as the workers see them. The copy is taken while the workers run: an entry
//   written in that instant may be caught half-made (take the snapshot when it is quiet);
// - `impairment`: each impaired port's settings as the workers got them (ImpairMsg: the
//   `in` and `out` ImpairSpec, seeds included; dataplane/impair/spec.ts). What the
//   impairments hold at that moment (queued frames, token buckets, generator positions) is
//   not kept: replay starts them afresh from their seeds.
//
// Times in the tables are the daemon's clock, seconds since the epoch: the same clock a
// capture's timestamps are in, which is what lets replay age them with its virtual clock.
// VXLAN overlay ports are listed (kind 'vxlan'/'vtep') but replay cannot run them.

import * as zlib from 'zlib';
import { fdbBytes, type FdbConfig } from '../dataplane/tables/fdb';
import { neighBytes, type NeighConfig } from '../dataplane/tables/neigh';
import { conntrackBytes, type ConntrackConfig } from '../dataplane/tables/conntrack';
import type { L3Snapshot } from '../dataplane/tables/l3';
import type { PortGuard, PortTable, PortVlans } from '../dataplane/tables/ports';
import type { DataplaneHost, PortHandle } from '../workers/host';
import { checkSpec, type ImpairSpec } from '../dataplane/impair/spec';
import { InvalidArgumentError } from './errors';
import type { PortRef } from './trace';

export const SNAPSHOT_FORMAT = 'vsw-snapshot';
export const SNAPSHOT_VERSION = 1;

export interface SnapshotPort extends PortRef {
  kind: PortHandle['kind'];
  vnet: boolean;
  netId: number;
  vlans: PortVlans;
  guard: PortGuard | null;
}

/** One table's shared memory: gzip, then base64. */
export interface SnapshotTable<C> {
  config: C;
  bytes: number;
  data: string;
}

export interface Snapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  /** The daemon's clock when taken: seconds since the epoch. */
  takenAt: number;
  networks: { id: number; name: string }[];
  /** Each container's networks, first first (a bare container name is its port there). */
  containers: { name: string; networks: string[] }[];
  ports: SnapshotPort[];
  /** The router's configuration (null: no router configured yet). */
  l3: L3Snapshot | null;
  tables: {
    fdb: SnapshotTable<FdbConfig>;
    neigh: SnapshotTable<NeighConfig>;
    conntrack: SnapshotTable<ConntrackConfig>;
  };
  /** Link impairment per port (vsw impair): what each direction's Impairment was made from. */
  impairment: SnapshotImpairment[];
}

export interface SnapshotImpairment {
  /** The port's id and interface name. */
  id: number;
  name: string;
  in?: ImpairSpec;
  out?: ImpairSpec;
}

/** What a snapshot reads of the switch. */
export interface SnapshotSource {
  host: Pick<DataplaneHost, 'ports' | 'portTable' | 'lastL3' | 'fdb' | 'neigh' | 'ct' | 'now'>;
  refs: PortRef[];
  networks: { id: number; name: string }[];
  containers: { name: string; networks: string[] }[];
  impairments: SnapshotImpairment[];
}

function packTable<C>(config: C, sab: SharedArrayBuffer): SnapshotTable<C> {
  const bytes = new Uint8Array(sab).slice();
  return { config, bytes: bytes.length, data: zlib.gzipSync(bytes, { level: 6 }).toString('base64') };
}

/** A table's shared memory back from a snapshot (checked against its configuration's size). */
export function unpackTable<C>(t: SnapshotTable<C>, size: (c: C) => number, what: string): SharedArrayBuffer {
  let raw: Buffer;
  try {
    raw = zlib.gunzipSync(Buffer.from(t.data, 'base64'));
  } catch (e) {
    throw new InvalidArgumentError(`snapshot: the ${what} table does not decode (${(e as Error).message})`);
  }
  if (raw.length !== t.bytes || raw.length !== size(t.config)) {
    throw new InvalidArgumentError(`snapshot: the ${what} table has ${raw.length} bytes, its configuration says ${size(t.config)}`);
  }
  const sab = new SharedArrayBuffer(raw.length);
  new Uint8Array(sab).set(raw);
  return sab;
}

function guardOf(t: PortTable, id: number): PortGuard | null {
  if (t.guarded[id] !== 1) return null;
  return { macHi: t.guardMacHi[id], macLo: t.guardMacLo[id] >>> 0, ips: [...(t.guardIps[id] ?? [])].map((x) => x >>> 0) };
}

export function takeSnapshot(src: SnapshotSource): Snapshot {
  const { host } = src;
  const refs = new Map(src.refs.map((r) => [r.id, r]));
  const ports = host.ports().slice().sort((a, b) => a.id - b.id).map((p): SnapshotPort => {
    const r = refs.get(p.id);
    return {
      id: p.id, name: p.name, network: r?.network ?? '', ...(r?.container ? { container: r.container } : {}),
      kind: p.kind, vnet: p.vnet, netId: p.netId, vlans: p.vlans, guard: guardOf(host.portTable, p.id),
    };
  });
  return {
    format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, takenAt: host.now(),
    networks: src.networks.map((n) => ({ id: n.id, name: n.name })),
    containers: src.containers,
    ports,
    l3: host.lastL3,
    tables: {
      fdb: packTable(host.fdb.cfg, host.fdb.sab),
      neigh: packTable(host.neigh.cfg, host.neigh.sab),
      conntrack: packTable(host.ct.cfg, host.ct.sab),
    },
    impairment: src.impairments,
  };
}

/** A snapshot file's text, checked: a clear error on anything that is not a snapshot this version reads. */
export function parseSnapshot(text: string, name = 'snapshot'): Snapshot {
  let s: Partial<Snapshot>;
  try {
    s = JSON.parse(text) as Partial<Snapshot>;
  } catch (e) {
    throw new InvalidArgumentError(`${name}: not JSON (${(e as Error).message})`);
  }
  if (s === null || typeof s !== 'object' || s.format !== SNAPSHOT_FORMAT) throw new InvalidArgumentError(`${name}: not a vsw snapshot (no "format": "${SNAPSHOT_FORMAT}")`);
  if (s.version !== SNAPSHOT_VERSION) throw new InvalidArgumentError(`${name}: snapshot version ${String(s.version)}; this vsw reads version ${SNAPSHOT_VERSION}`);
  const bad = (what: string): never => { throw new InvalidArgumentError(`${name}: ${what} is missing or malformed`); };
  if (typeof s.takenAt !== 'number') bad('takenAt');
  if (!Array.isArray(s.networks)) bad('networks');
  if (!Array.isArray(s.containers)) bad('containers');
  if (!Array.isArray(s.ports) || !s.ports.every((p) => p && Number.isInteger(p.id) && typeof p.name === 'string' && p.vlans && Array.isArray(p.vlans.tagged))) bad('ports');
  if (!Array.isArray(s.impairment)) bad('impairment');
  for (const m of s.impairment!) {
    if (!m || !Number.isInteger(m.id) || !s.ports!.some((p) => p.id === m.id)) bad('impairment (a port that is not in ports)');
    for (const spec of [m.in, m.out]) {
      const why = spec === undefined ? undefined : checkSpec(spec);
      if (why !== undefined) throw new InvalidArgumentError(`${name}: impairment of port ${m.name}: ${why}`);
    }
  }
  const t = s.tables;
  for (const k of ['fdb', 'neigh', 'conntrack'] as const) {
    if (!t || !t[k] || typeof t[k].data !== 'string' || typeof t[k].config !== 'object') bad(`tables.${k}`);
  }
  return s as Snapshot;
}

/** The three tables' memory, unpacked. */
export function snapshotTables(s: Snapshot): { fdb: SharedArrayBuffer; neigh: SharedArrayBuffer; ct: SharedArrayBuffer } {
  return {
    fdb: unpackTable(s.tables.fdb, fdbBytes, 'MAC'),
    neigh: unpackTable(s.tables.neigh, neighBytes, 'neighbour'),
    ct: unpackTable(s.tables.conntrack, conntrackBytes, 'connection'),
  };
}
