// What the engine keeps in the state dir (state.json), and the lookups every part of the
// engine makes on it. Fields added after the first release are optional: state written
// before them reads as their defaults (internal false, icc true, dnsOrder 'rotate', vlan 0,
// no trunks). checkState is the file's shape, checked field by field when it is loaded.

import type { ContainerMode, DnsOrder, NetworkInfo, PortMapping } from '../types';
import type { VlanRanges } from '../vlan';
import { NotFoundError, VswError } from '../errors';
import { checkSpec, type ImpairSpec } from '../../dataplane/impair/spec';

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

/** A port's link impairment as stored (vsw impair set): by interface name, which survives a restart. */
export interface ImpairRecord {
  port: string;
  direction: 'in' | 'out' | 'both';
  spec: ImpairSpec;
}

export interface State {
  networks: NetworkRecord[];
  containers: ContainerRecord[];
  /** Absent: no trunk. */
  trunks?: TrunkRecord[];
  /** Absent: no impaired port. */
  impairs?: ImpairRecord[];
}

// ---- the shape of state.json ---------------------------------------------------------

/**
 * What a field may hold: a JSON type, an enum, a list or an object of fields. A '?' after a
 * field name makes it optional (absent or null is fine).
 */
type Shape = 'string' | 'boolean' | 'number' | 'integer' | readonly string[] | { list: Shape } | { [field: string]: Shape };

const ENDPOINT: Shape = {
  network: 'string', ip: 'string', mac: 'string', hostIf: 'string', innerIf: 'string', 'aliases?': { list: 'string' },
};
const NETWORK: Shape = {
  name: 'string', id: 'integer', subnet: 'string', gateway: 'string', ipRange: 'string', mtu: 'integer',
  default: 'boolean', created: 'string', tap: 'string', 'internal?': 'boolean', 'icc?': 'boolean',
  'dnsOrder?': ['rotate', 'random', 'fixed'], 'vlan?': 'integer',
};
const CONTAINER: Shape = {
  name: 'string', id: 'string', mode: ['bridge', 'none', 'host', 'container'], netns: 'string', 'sharedWith?': 'string',
  endpoints: { list: ENDPOINT }, cmd: { list: 'string' }, detach: 'boolean', rm: 'boolean',
  status: ['creating', 'created', 'running', 'exited'], 'pid?': 'integer', 'exitCode?': 'number', created: 'string',
  'ports?': { list: { hostIp: 'string', hostPort: 'integer', containerPort: 'integer', proto: ['tcp', 'udp'] } },
  'links?': { list: { name: 'string', 'alias?': 'string' } },
};
const TRUNK: Shape = {
  device: 'string', kind: ['afpacket', 'tap'], 'vlans?': { list: { list: 'integer' } }, 'native?': 'integer', created: 'string',
};
const IMPAIR_SPEC: Shape = {
  delay: 'number', jitter: 'number', distribution: ['uniform', 'normal', 'pareto'], loss: 'number', duplicate: 'number',
  corrupt: 'number', reorder: 'number', gap: 'integer', rate: 'number', burst: 'integer', limit: 'integer',
  limitBytes: 'integer', seed: 'integer',
  'lossModel?': {
    kind: ['gilbert', 'state'], 'p?': 'number', 'r?': 'number', 'lossBad?': 'number', 'lossGood?': 'number',
    'p13?': 'number', 'p31?': 'number', 'p32?': 'number', 'p23?': 'number', 'p14?': 'number',
  },
};
const IMPAIR: Shape = { port: 'string', direction: ['in', 'out', 'both'], spec: IMPAIR_SPEC };
const STATE: Shape = {
  networks: { list: NETWORK }, containers: { list: CONTAINER }, 'trunks?': { list: TRUNK }, 'impairs?': { list: IMPAIR },
};

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
  const badImpair = (s.impairs ?? []).map((r, i) => {
    const why = checkSpec(r.spec);
    return why === undefined ? undefined : `impairs[${i}].spec.${why}`;
  }).find((x) => x !== undefined);
  return dup(s.networks, 'networks') ?? dup(s.containers, 'containers') ?? badImpair;
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
