// What the engine keeps in the state dir (state.json), and the lookups every part of the
// engine makes on it. Fields added after the first release are optional: state written
// before them reads as their defaults (internal false, icc true, dnsOrder 'rotate', vlan 0,
// no trunks).

import type { ContainerMode, DnsOrder, NetworkInfo, PortMapping } from '../types';
import type { VlanRanges } from '../vlan';
import { NotFoundError, VswError } from '../errors';

/** A network as stored: the API's fields, plus its host TAP's name. */
export type NetworkRecord = Pick<NetworkInfo, 'name' | 'id' | 'subnet' | 'gateway' | 'ipRange' | 'mtu' | 'default' | 'created'> & {
  tap: string;
  /** Absent: false. */
  internal?: boolean;
  /** Absent: true. */
  icc?: boolean;
  /** Absent: 'rotate'. */
  dnsOrder?: DnsOrder;
  /** 802.1Q VLAN id; absent or 0 = an untagged network. */
  vlan?: number;
  /** A VXLAN overlay segment (docs/VXLAN.md); absent = a host-local network. */
  vxlan?: { vni: number; port: number; localIp: string; peers: string[]; fdb?: { mac: string; vtep: string }[] };
};

/** An 802.1Q trunk as stored. */
export interface TrunkRecord {
  device: string;
  kind: 'afpacket' | 'tap';
  /** VLAN ids carried; absent = every VLAN network. */
  vlans?: VlanRanges;
  native?: number;
  created: string;
}

export interface EndpointRecord {
  network: string;
  ip: string;
  mac: string;
  hostIf: string;
  innerIf: string;
  aliases?: string[];
}

export interface ContainerRecord {
  name: string;
  id: string;
  mode: ContainerMode;
  netns: string;
  sharedWith?: string;
  endpoints: EndpointRecord[];
  cmd: string[];
  detach: boolean;
  rm: boolean;
  status: 'created' | 'running' | 'exited';
  pid?: number;
  exitCode?: number;
  created: string;
  ports?: PortMapping[];
  links?: { name: string; alias?: string }[];
}

export interface State {
  networks: NetworkRecord[];
  containers: ContainerRecord[];
  /** Absent: no trunk. */
  trunks?: TrunkRecord[];
}

/** The state in memory (replaced as a whole when it is loaded), with its lookups. */
export class Records {
  state: State = { networks: [], containers: [] };

  network(name: string): NetworkRecord {
    const n = this.state.networks.find((x) => x.name === name);
    if (!n) throw new NotFoundError(`network '${name}' not found`);
    return n;
  }

  defaultNetwork(): NetworkRecord {
    const n = this.state.networks.find((x) => x.default);
    if (!n) throw new VswError('no default network');
    return n;
  }

  container(name: string): ContainerRecord {
    const c = this.state.containers.find((x) => x.name === name);
    if (!c) throw new NotFoundError(`container '${name}' not found`);
    return c;
  }

  trunks(): TrunkRecord[] {
    return this.state.trunks ?? [];
  }

  /** Network names by id. */
  netNames(): Map<number, string> {
    return new Map(this.state.networks.map((n) => [n.id, n.name]));
  }
}

/** Run one change at a time, in arrival order. */
export type Serial = <T>(fn: () => Promise<T>) => Promise<T>;

/** Where a change is made durable (state.json). */
export interface Saver {
  save(): void;
}
