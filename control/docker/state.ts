// What the Docker plugin remembers, kept in STATE-DIR/docker/state.json (the crash-safe
// store of control/state.ts): Docker does not resend CreateNetwork after a plugin restart,
// and hands out endpoints before it joins them, so the plugin keeps, by Docker's ids, its
// IPAM pools and addresses, its networks (the vsw network each became, once made) and the
// endpoints it was told of. Every change is saved before it is answered.

import * as path from 'node:path';
import type { DnsOrder } from '../types';
import { StateStore } from '../state';

export interface PoolRecord {
  id: string;
  pool: string;
  /** SubPool: where container addresses come from (default the pool). */
  range?: string;
  gateway?: string;
  /** Addresses handed out (not the gateway). */
  addresses: string[];
}

export interface DockerNetworkRecord {
  /** Docker's NetworkID. */
  id: string;
  /** The vsw network it is, once made (made after CreateNetwork is answered, named then). */
  vsw?: string;
  /** Its name in Docker, when dockerd's API told it. */
  dockerName?: string;
  subnet: string;
  gateway: string;
  mtu?: number;
  vlan?: number;
  internal: boolean;
  icc: boolean;
  dnsOrder?: DnsOrder;
}

export interface DockerEndpointRecord {
  network: string;
  endpoint: string;
  ip: string;
  mac: string;
}

export interface DockerState {
  pools: PoolRecord[];
  networks: DockerNetworkRecord[];
  endpoints: DockerEndpointRecord[];
}

function check(v: unknown): string | undefined {
  const s = v as Partial<DockerState> | null;
  if (!s || typeof s !== 'object') return 'expected an object';
  for (const k of ['pools', 'networks', 'endpoints'] as const) if (!Array.isArray(s[k])) return `${k}: expected an array`;
  return undefined;
}

/** The plugin's state in memory, loaded from and saved to STATE-DIR/docker. */
export class DockerStore {
  state: DockerState = { pools: [], networks: [], endpoints: [] };
  private readonly store: StateStore<DockerState>;

  constructor(stateDir: string) {
    this.store = new StateStore<DockerState>(path.join(stateDir, 'docker'), check);
    this.state = this.store.load() ?? this.state;
  }

  save(): void {
    this.store.save(this.state);
  }

  network(id: string): DockerNetworkRecord | undefined {
    return this.state.networks.find((n) => n.id === id);
  }

  endpoint(id: string): DockerEndpointRecord | undefined {
    return this.state.endpoints.find((e) => e.endpoint === id);
  }

  pool(id: string): PoolRecord | undefined {
    return this.state.pools.find((p) => p.id === id);
  }
}
