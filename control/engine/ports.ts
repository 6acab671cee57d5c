// The dataplane ports the engine opened, by what they are for: a network's host TAP (key
// NETWORK), a container's endpoint (key NETWORK/CONTAINER) and a trunk (by device). The
// workers know ports only by number; this book gives them their names back.

import type { PortHandle } from '../../workers/host';
import type { PortRef } from '../trace';

/** A port's place in the switch, as `vsw stats`, fdb and traces name it. */
export interface PortPlace {
  port: string;
  network: string;
  container?: string;
}

export class PortBook {
  /** Each network's TAP and each endpoint: key `net` or `net/container`. */
  private readonly byKey = new Map<string, PortHandle>();
  /** Each attached trunk, by device. */
  private readonly byTrunk = new Map<string, PortHandle>();

  tap(network: string): PortHandle | undefined {
    return this.byKey.get(network);
  }

  setTap(network: string, port: PortHandle): void {
    this.byKey.set(network, port);
  }

  deleteTap(network: string): void {
    this.byKey.delete(network);
  }

  endpoint(network: string, container: string): PortHandle | undefined {
    return this.byKey.get(`${network}/${container}`);
  }

  setEndpoint(network: string, container: string, port: PortHandle): void {
    this.byKey.set(`${network}/${container}`, port);
  }

  deleteEndpoint(network: string, container: string): void {
    this.byKey.delete(`${network}/${container}`);
  }

  trunk(device: string): PortHandle | undefined {
    return this.byTrunk.get(device);
  }

  setTrunk(device: string, port: PortHandle): void {
    this.byTrunk.set(device, port);
  }

  deleteTrunk(device: string): void {
    this.byTrunk.delete(device);
  }

  // VXLAN: each VXLAN network's overlay port (docs/VXLAN.md).
  private readonly byOverlay = new Map<string, PortHandle>();

  overlay(network: string): PortHandle | undefined {
    return this.byOverlay.get(network);
  }

  setOverlay(network: string, port: PortHandle): void {
    this.byOverlay.set(network, port);
  }

  deleteOverlay(network: string): void {
    this.byOverlay.delete(network);
  }

  trunkPorts(): IterableIterator<PortHandle> {
    return this.byTrunk.values();
  }

  /** Every port of the book by id: its name, network ('trunk' for a trunk) and container. */
  places(): Map<number, PortPlace> {
    const m = new Map<number, PortPlace>();
    for (const [key, p] of this.byKey) {
      const [network, container] = key.split('/');
      m.set(p.id, { port: p.name, network, container });
    }
    for (const p of this.byTrunk.values()) m.set(p.id, { port: p.name, network: 'trunk' });
    for (const [network, p] of this.byOverlay) m.set(p.id, { port: p.name, network });
    return m;
  }
}

/** The switch's ports as the API names them (the uplink's network is 'uplink'). */
export function portRefs(ports: readonly { id: number; name: string; netId: number }[], places: Map<number, PortPlace>,
  uplinkNet: number): PortRef[] {
  return ports.map((p) => {
    const n = places.get(p.id);
    return { id: p.id, name: p.name, network: n?.network ?? (p.netId === uplinkNet ? 'uplink' : ''), container: n?.container };
  });
}
