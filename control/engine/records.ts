// What the engine keeps in the state dir (state.json), and the lookups every part of the
// engine makes on it. Fields added after the first release are optional: state written
// before them reads as their defaults (internal false, icc true, dnsOrder 'rotate', vlan 0,
// no trunks). checkState is the file's shape, checked field by field when it is loaded.

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
  /** Port security on its container ports; absent: true. */
  portSecurity?: boolean;
  /** A VXLAN overlay segment (docs/VXLAN.md); absent = a host-local network. */
  vxlan?: { vni: number; port: number; localIp: string; peers: string[]; fdb?: { mac: string; vtep: string; ip?: string }[]; arpProxy?: boolean };
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
  /** Present on an endpoint of a docker or cni container (attachments.ts). */
  attachment?: AttachmentRecord;
}

/** What an attachment adds to its endpoint record (the API's AttachmentCreate, as made). */
export interface AttachmentRecord {
  /** Its key (Docker's EndpointID, CNI's CONTAINERID/IFNAME). */
  endpoint: string;
  /**
   * 'creating': the intent, saved before the veth is made; a daemon killed half-way
   * deletes the veth at the next start and forgets the endpoint (recovery.ts).
   */
  status: 'creating' | 'created';
  mtu: number;
  /** Absent: the inner end was left in the daemon's namespace for the runtime to move. */
  netns?: string;
  defaultRoute: boolean;
  publish?: PortMapping[];
}

export interface ContainerRecord {
  name: string;
  id: string;
  mode: ContainerMode;
  netns: string;
  sharedWith?: string;
  /** Modes docker and cni: the runtime's sandbox key (attachments.ts). */
  sandbox?: string;
  endpoints: EndpointRecord[];
  cmd: string[];
  detach: boolean;
  rm: boolean;
  /**
   * 'creating': the intent record, saved before the namespace or any veth is made, so that
   * a daemon killed half-way finds it at the next start and undoes what was made
   * (recovery.ts). Never shown by the API (the creation is answered once it is 'created').
   */
  status: 'creating' | 'created' | 'running' | 'exited';
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

// ---- the shape of state.json ---------------------------------------------------------

/**
 * What a field may hold: a JSON type, an enum, a list or an object of fields. A '?' after a
 * field name makes it optional (absent or null is fine).
 */
type Shape = 'string' | 'boolean' | 'number' | 'integer' | readonly string[] | { list: Shape } | { [field: string]: Shape };

const MAPPING: Shape = { hostIp: 'string', hostPort: 'integer', containerPort: 'integer', proto: ['tcp', 'udp'] };
const ATTACHMENT: Shape = {
  endpoint: 'string', status: ['creating', 'created'], mtu: 'integer', 'netns?': 'string', defaultRoute: 'boolean',
  'publish?': { list: MAPPING },
};
const ENDPOINT: Shape = {
  network: 'string', ip: 'string', mac: 'string', hostIf: 'string', innerIf: 'string', 'aliases?': { list: 'string' },
  'attachment?': ATTACHMENT,
};
const NETWORK: Shape = {
  name: 'string', id: 'integer', subnet: 'string', gateway: 'string', ipRange: 'string', mtu: 'integer',
  default: 'boolean', created: 'string', tap: 'string', 'internal?': 'boolean', 'icc?': 'boolean',
  'dnsOrder?': ['rotate', 'random', 'fixed'], 'vlan?': 'integer',
};
const CONTAINER: Shape = {
  name: 'string', id: 'string', mode: ['bridge', 'none', 'host', 'container', 'docker', 'cni'], netns: 'string', 'sharedWith?': 'string',
  'sandbox?': 'string',
  endpoints: { list: ENDPOINT }, cmd: { list: 'string' }, detach: 'boolean', rm: 'boolean',
  status: ['creating', 'created', 'running', 'exited'], 'pid?': 'integer', 'exitCode?': 'number', created: 'string',
  'ports?': { list: MAPPING },
  'links?': { list: { name: 'string', 'alias?': 'string' } },
};
const TRUNK: Shape = {
  device: 'string', kind: ['afpacket', 'tap'], 'vlans?': { list: { list: 'integer' } }, 'native?': 'integer', created: 'string',
};
const STATE: Shape = { networks: { list: NETWORK }, containers: { list: CONTAINER }, 'trunks?': { list: TRUNK } };

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v;
}

/** The first place where `v` does not have `shape`: 'PATH: expected X, got Y', or undefined. */
function mismatch(v: unknown, shape: Shape, at: string): string | undefined {
  const where = at === '' ? 'state' : at;
  const got = (): string => `${typeName(v)}${typeof v === 'string' ? ` '${v.length > 40 ? `${v.slice(0, 40)}...` : v}'` : ''}`;
  if (shape === 'string' || shape === 'boolean' || shape === 'number') {
    return typeof v === shape && (shape !== 'number' || Number.isFinite(v)) ? undefined : `${where}: expected a ${shape}, got ${got()}`;
  }
  if (shape === 'integer') {
    return Number.isSafeInteger(v) ? undefined : `${where}: expected an integer, got ${typeof v === 'number' ? v : got()}`;
  }
  if (Array.isArray(shape)) {
    return typeof v === 'string' && shape.includes(v) ? undefined : `${where}: expected one of ${shape.join(', ')}, got ${got()}`;
  }
  if ('list' in shape) {
    const item = shape.list as Shape;
    if (!Array.isArray(v)) return `${where}: expected an array, got ${got()}`;
    for (let i = 0; i < v.length; i++) {
      const m = mismatch(v[i], item, `${at}[${i}]`);
      if (m) return m;
    }
    return undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return `${where}: expected an object, got ${got()}`;
  const obj = v as Record<string, unknown>;
  for (const [key, sub] of Object.entries(shape as Record<string, Shape>)) {
    const optional = key.endsWith('?');
    const name = optional ? key.slice(0, -1) : key;
    const path = at === '' ? name : `${at}.${name}`;
    if (obj[name] === undefined || obj[name] === null) {
      if (optional) continue;
      return `${path}: missing`;
    }
    const m = mismatch(obj[name], sub, path);
    if (m) return m;
  }
  return undefined;
}

/**
 * Check a loaded state.json's content field by field (StateStore's check): the first wrong
 * field as "networks: expected an array, got string 'x'", or undefined when it is a State.
 * Names are also checked to be unique, since every lookup takes the first match.
 */
export function checkState(v: unknown): string | undefined {
  const m = mismatch(v, STATE, '');
  if (m) return m;
  const s = v as State;
  const dup = (list: { name: string }[], what: string): string | undefined => {
    const seen = new Set<string>();
    for (let i = 0; i < list.length; i++) {
      if (seen.has(list[i].name)) return `${what}[${i}].name: '${list[i].name}' appears twice`;
      seen.add(list[i].name);
    }
    return undefined;
  };
  const keys = s.containers.flatMap((c) => c.endpoints.flatMap((e) => (e.attachment ? [{ name: e.attachment.endpoint }] : [])));
  return dup(s.networks, 'networks') ?? dup(s.containers, 'containers') ?? dup(keys, 'attachment endpoints');
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

  /** The container and endpoint of an attachment, by its key; undefined when unknown. */
  attachment(endpoint: string): { c: ContainerRecord; e: EndpointRecord & { attachment: AttachmentRecord } } | undefined {
    for (const c of this.state.containers) {
      for (const e of c.endpoints) if (e.attachment?.endpoint === endpoint) return { c, e: e as EndpointRecord & { attachment: AttachmentRecord } };
    }
    return undefined;
  }

  trunks(): TrunkRecord[] {
    return this.state.trunks ?? [];
  }

  /** Network names by id. */
  netNames(): Map<number, string> {
    return new Map(this.state.networks.map((n) => [n.id, n.name]));
  }
}

/** Who owns a container of mode docker/cni, for refusals: "Docker", "the CNI runtime". */
export function runtimeName(mode: ContainerMode): string {
  return mode === 'docker' ? 'Docker' : 'the CNI runtime';
}

/** A container another runtime made (attachments.ts). */
export function isAttached(c: Pick<ContainerRecord, 'mode'>): boolean {
  return c.mode === 'docker' || c.mode === 'cni';
}

/** Run one change at a time, in arrival order. */
export type Serial = <T>(fn: () => Promise<T>) => Promise<T>;

/** Where a change is made durable (state.json). */
export interface Saver {
  save(): void;
}
