// `vsw trace --dry-run`: run frames through the pipeline as if they had arrived on a port,
// with no side effects, and say what each stage decided (dataplane/trace.ts). The port is
// named as `vsw stats` shows it, or by container: NAME (its port on its first network) or
// NAME:NET. The router's tables are the daemon's live ones (neighbours, connections: read
// only) and the last L3 configuration sent to the workers.

import { InvalidArgumentError, NotFoundError } from './errors';
import { traceDryRun, type TraceNames, type TraceResult } from '../dataplane/trace';
import { L3Table } from '../dataplane/tables/l3';
import type { Emitter, L3Context } from '../dataplane/stages/stage';
import type { DataplaneHost } from '../workers/host';

/** A switch port as the API names it: `vsw stats` rows without their counters. */
export interface PortRef {
  id: number;
  name: string;
  /** A network name, 'uplink', 'trunk', or '' (a port of no network). */
  network: string;
  container?: string;
}

/**
 * How traces print a port: `NAME (CONTAINER)` for an endpoint, `NAME (uplink)`,
 * `NAME (trunk)`, else `NAME (host)` (a network's TAP).
 */
export function portLabel(p: PortRef): string {
  if (p.container) return `${p.name} (${p.container})`;
  return p.network === 'uplink' || p.network === 'trunk' ? `${p.name} (${p.network})` : `${p.name} (host)`;
}

/** Where resolvePort looks a port up: by interface name, or as a container's port on a network. */
export interface PortFinder {
  byName(name: string): number | undefined;
  endpoint(container: string, network: string): number | undefined;
}

/** A port id from a port name, a container name, or CONTAINER:NETWORK. */
export function resolvePort(spec: string, ports: PortFinder, firstNetworkOf: (container: string) => string | undefined): number {
  const byName = ports.byName(spec);
  if (byName !== undefined) return byName;
  const colon = spec.lastIndexOf(':');
  const container = colon > 0 ? spec.slice(0, colon) : spec;
  const network = colon > 0 ? spec.slice(colon + 1) : firstNetworkOf(container);
  const hit = network === undefined ? undefined : ports.endpoint(container, network);
  if (hit !== undefined) return hit;
  if (network === undefined) throw new NotFoundError(`no port or container named '${spec}' (see vsw stats, vsw ps)`);
  throw new NotFoundError(`container '${container}' has no port on network '${network}'`);
}

/** Parse a frame given as hex (spaces, colons and a 0x prefix allowed). */
export function parseHexFrame(text: string): Uint8Array {
  const hex = text.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new InvalidArgumentError('--frame must be an even number of hex digits (an Ethernet frame, from the destination MAC on)');
  }
  if (hex.length > 2 * 65535) throw new InvalidArgumentError('--frame is longer than 65535 bytes');
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** A dry run sends nothing: an Emitter with no room that punts nothing (the gateway does not
 * call it in a dry run; this is the guard). */
const NO_EMIT: Emitter = { buf: new Uint8Array(0), alloc: () => -1, send: () => undefined, punt: () => false };

/**
 * The router's tables for a dry run: the live neighbour and connection tables (the dry run
 * only reads them) and an L3 table built from the last snapshot sent to the workers. null
 * before the router sent one (the gateway then passes every frame, as in a pure L2 switch).
 */
export function liveL3(host: Pick<DataplaneHost, 'lastL3' | 'neigh' | 'ct'>): L3Context | null {
  const snap = host.lastL3;
  if (snap === null) return null;
  return { table: new L3Table(snap), neigh: host.neigh, ct: host.ct, emit: NO_EMIT, dns: null };
}

/** What a dry run reads: the MAC table, the port table (VLAN membership included), the
 *  clock and the router's tables, all as the host mirrors the workers'. */
export type DryRunTables = Pick<DataplaneHost, 'fdb' | 'portTable' | 'now' | 'lastL3' | 'neigh' | 'ct'>;

/** Trace frames received on `inPort` through the live tables (read only). */
export function dryRun(host: DryRunTables, inPort: number, names: TraceNames, frames: Uint8Array[]): TraceResult[] {
  const tables = { fdb: host.fdb, ports: host.portTable, now: host.now(), l3: liveL3(host) };
  return frames.map((f) => traceDryRun(f, inPort, tables, names));
}
