// `vsw trace --dry-run`: run frames through the pipeline as if they had arrived on a port,
// with no side effects, and say what each stage decided (dataplane/trace.ts). The port is
// named as `vsw stats` shows it, or by container: NAME (its port on its first network) or
// NAME:NET. The router's tables are the daemon's live ones (neighbours, connections: read
// only) and the last L3 configuration sent to the workers.

import type { VswEngine } from './engine';
import { InvalidArgumentError, NotFoundError } from './errors';
import { traceDryRun, type TraceNames, type TraceResult } from '../dataplane/trace';
import { L3Table } from '../dataplane/tables/l3';
import { UPLINK_NET } from '../dataplane/tables/neigh';
import type { Emitter, L3Context } from '../dataplane/stages/stage';
import type { DataplaneHost } from '../workers/host';

export interface PortRef {
  id: number;
  name: string;
  network: string;
  container?: string;
}

/** A port id from a port name, a container name, or CONTAINER:NETWORK. */
export function resolvePort(spec: string, ports: PortRef[], firstNetworkOf: (container: string) => string | undefined): number {
  const byName = ports.find((p) => p.name === spec);
  if (byName) return byName.id;
  const colon = spec.lastIndexOf(':');
  const container = colon > 0 ? spec.slice(0, colon) : spec;
  const network = colon > 0 ? spec.slice(colon + 1) : firstNetworkOf(container);
  const hit = ports.find((p) => p.container === container && p.network === network);
  if (hit) return hit.id;
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

/** Trace frames through the engine's live tables (read only). */
export function dryRun(engine: VswEngine, portSpec: string, frames: Uint8Array[]): TraceResult[] {
  const inPort = engine.resolvePortId(portSpec);
  const stats = engine.stats();
  // The workers' port table as the host mirrors it (VLAN membership included).
  const ports = engine.host.portTable;
  const netName = new Map<number, string>(engine.listNetworks().map((n) => [n.id, n.name]));
  netName.set(UPLINK_NET, 'uplink');
  const label = new Map(stats.map((p) => [p.id,
    p.container ? `${p.name} (${p.container})` : p.network === 'uplink' || p.network === 'trunk' ? `${p.name} (${p.network})` : `${p.name} (host)`]));
  const names: TraceNames = {
    port: (id) => label.get(id) ?? `#${id}`,
    network: (id) => netName.get(id) ?? `#${id}`,
  };
  const tables = { fdb: engine.host.fdb, ports, now: engine.host.now(), l3: liveL3(engine.host) };
  return frames.map((f) => traceDryRun(f, inPort, tables, names));
}
