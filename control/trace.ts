// `vsw trace --dry-run`: run frames through the pipeline as if they had arrived on a port,
// with no side effects, and say what each stage decided (dataplane/trace.ts). The port is
// named as `vsw stats` shows it, or by container: NAME (its port on its first network) or
// NAME:NET.

import type { VswEngine } from './engine';
import { InvalidArgumentError, NotFoundError } from './errors';
import { PortTable } from '../dataplane/tables/ports';
import { traceDryRun, type TraceNames, type TraceResult } from '../dataplane/trace';
import { MAX_PORTS } from '../workers/shared';

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

/** Trace frames through the engine's live tables (read only). */
export function dryRun(engine: VswEngine, portSpec: string, frames: Uint8Array[]): TraceResult[] {
  const inPort = engine.resolvePortId(portSpec);
  const stats = engine.stats();
  const ports = new PortTable(MAX_PORTS);
  for (const h of engine.host.ports()) ports.add(h.id, h.name, h.netId);
  const netName = new Map(engine.listNetworks().map((n) => [n.id, n.name]));
  const label = new Map(stats.map((p) => [p.id, p.container ? `${p.name} (${p.container})` : `${p.name} (host)`]));
  const names: TraceNames = {
    port: (id) => label.get(id) ?? `#${id}`,
    network: (id) => netName.get(id) ?? `#${id}`,
  };
  const tables = { fdb: engine.host.fdb, ports, now: engine.host.now() };
  return frames.map((f) => traceDryRun(f, inPort, tables, names));
}
