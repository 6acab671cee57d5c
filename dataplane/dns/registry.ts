// Who is called what, per network: the local half of the embedded DNS server.
//
// A container attached to network NET at IP answers, for clients attached to NET, to its
// own name, to each of its aliases, and to NAME.NET / ALIAS.NET. Names are compared in
// lower case. Visibility follows attachment, as in Docker: a client only sees the names
// of the networks it is attached to, so isolation between networks extends to DNS.
//
// The engine keeps this up to date as containers come and go; the server reads it for
// every query, so lookups go through per-network indexes (name -> endpoints, IP -> endpoint)
// instead of scanning the containers.

import { parseIp } from '../wire/ip';

/** Order of the addresses in an answer (the same union as control/types.ts DnsOrder). */
export type DnsOrder = 'rotate' | 'random' | 'fixed';
import { encodeName, normalizeName } from './message';


interface Endpoint {
  container: string;
  ip: string;
  /** Normalised DNS names this endpoint answers to in its network. */
  names: string[];
  /** Registration order across the registry (kept when an endpoint is re-added). */
  seq: number;
}

interface Network {
  order: DnsOrder;
  endpoints: Map<string, Endpoint>;
  /** name -> endpoints answering to it, in registration order. */
  byName: Map<string, Endpoint[]>;
  byIp: Map<string, Endpoint>;
}

/** Rotation counters kept at most (one per name and network scope actually queried). */
const MAX_ROTATION_KEYS = 65536;

export interface DnsRegistryOptions {
  /** Random source in [0, 1) for the 'random' order (tests make it deterministic). */
  random?: () => number;
}

export class DnsRegistry {
  private readonly nets = new Map<string, Network>();
  /** 'rotate': how many answers each (scope, name) has had, to start the next one further. */
  private readonly rotation = new Map<string, number>();
  private seq = 0;
  private readonly random: () => number;

  constructor(opts: DnsRegistryOptions = {}) {
    this.random = opts.random ?? Math.random;
  }

  /** Add a network or change its order policy. */
  setNetwork(net: string, order: DnsOrder): void {
    const nw = this.nets.get(net);
    if (nw) nw.order = order;
    else this.nets.set(net, newNetwork(order));
  }

  removeNetwork(net: string): void {
    const nw = this.nets.get(net);
    if (!nw) return;
    this.nets.delete(net);
    for (const ep of nw.endpoints.values()) this.forgetRotation(ep.names);
  }

  /**
   * A container attached to `net` at `ip`: it answers to its own name, each alias, and
   * NAME.NET / ALIAS.NET. Re-adding replaces (and keeps its place in registration order).
   * A network not yet set is created with the 'rotate' policy. Names that cannot be DNS
   * names (an empty label as in 'a..b', longer than 255 bytes) are skipped: valid vsw
   * names need not be valid DNS names. Throws on a malformed IP.
   */
  addEndpoint(net: string, container: string, ip: string, aliases: string[]): void {
    parseIp(ip);
    let nw = this.nets.get(net);
    if (!nw) {
      nw = newNetwork('rotate');
      this.nets.set(net, nw);
    }
    const old = nw.endpoints.get(container);
    if (old) this.unindex(nw, old);

    const names = new Set<string>();
    for (const base of [container, ...aliases]) {
      for (const n of [base, `${base}.${net}`]) {
        const norm = normalizeName(n);
        if (norm !== '' && !/[\\\s]/.test(norm) && encodeName(norm) !== null) names.add(norm);
      }
    }
    const ep: Endpoint = { container, ip, names: [...names], seq: old ? old.seq : ++this.seq };
    nw.endpoints.set(container, ep);
    for (const n of ep.names) {
      const list = nw.byName.get(n);
      if (list) {
        list.push(ep);
        list.sort((a, b) => a.seq - b.seq);
      } else {
        nw.byName.set(n, [ep]);
      }
    }
    nw.byIp.set(ip, ep);
  }

  removeEndpoint(net: string, container: string): void {
    const nw = this.nets.get(net);
    const ep = nw?.endpoints.get(container);
    if (!nw || !ep) return;
    this.unindex(nw, ep);
    nw.endpoints.delete(container);
  }

  /**
   * Addresses of `name` visible to a client attached to `clientNets`, ordered by policy.
   * A name in several of the client's networks answers the addresses of all of them, in
   * registration order before the policy is applied; the policy is that of the first of
   * `clientNets` holding the name. [] for a name that exists without addresses (a network
   * name itself: the parent of NAME.NET); null for a name that is not local.
   */
  resolveA(name: string, clientNets: string[]): string[] | null {
    const n = normalizeName(name);
    let found: Endpoint[] = [];
    let order: DnsOrder | null = null;
    const scope: string[] = [];
    for (const net of unique(clientNets)) {
      const nw = this.nets.get(net);
      const list = nw?.byName.get(n);
      if (!nw || !list || list.length === 0) continue;
      order ??= nw.order;
      scope.push(net);
      found = found.concat(list);
    }
    if (order === null) return this.isNetworkName(n, clientNets) ? [] : null;
    if (scope.length > 1) found.sort((a, b) => a.seq - b.seq);
    const addrs = unique(found.map((e) => e.ip));
    return this.applyOrder(order, `${scope.join('\0')}\0\0${n}`, addrs);
  }

  /**
   * 'name' when `name` is a local name for this client (then types other than A get an
   * empty NOERROR rather than being forwarded); 'net-domain' when it is under the domain
   * of one of the client's networks but unknown (answered NXDOMAIN here rather than leaked
   * upstream); false otherwise.
   */
  isLocal(name: string, clientNets: string[]): 'name' | 'net-domain' | false {
    const n = normalizeName(name);
    for (const net of clientNets) {
      if (this.nets.get(net)?.byName.get(n)?.length) return 'name';
    }
    if (this.isNetworkName(n, clientNets)) return 'name';
    for (const net of clientNets) {
      if (n.endsWith(`.${net.toLowerCase()}`)) return 'net-domain';
    }
    return false;
  }

  /** PTR: an address of a container in one of clientNets -> 'container.network'. */
  resolvePtr(ip: string, clientNets: string[]): string | null {
    for (const net of clientNets) {
      const ep = this.nets.get(net)?.byIp.get(ip);
      if (ep) return `${ep.container}.${net}`;
    }
    return null;
  }

  /** Containers registered in `net`, in registration order (for status output and tests). */
  endpoints(net: string): { container: string; ip: string; names: string[] }[] {
    const nw = this.nets.get(net);
    if (!nw) return [];
    return [...nw.endpoints.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((e) => ({ container: e.container, ip: e.ip, names: [...e.names] }));
  }

  // ---- internals ----------------------------------------------------------------------

  private isNetworkName(n: string, clientNets: string[]): boolean {
    return clientNets.some((net) => net.toLowerCase() === n);
  }

  private applyOrder(order: DnsOrder, key: string, addrs: string[]): string[] {
    if (addrs.length < 2 || order === 'fixed') return addrs;
    if (order === 'random') {
      // Fisher-Yates: every permutation equally likely.
      for (let i = addrs.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [addrs[i], addrs[j]] = [addrs[j], addrs[i]];
      }
      return addrs;
    }
    // 'rotate': the k-th answer starts at address k mod n.
    const k = this.rotation.get(key) ?? 0;
    if (!this.rotation.has(key) && this.rotation.size >= MAX_ROTATION_KEYS) this.rotation.clear();
    this.rotation.set(key, (k + 1) % 0x40000000);
    const start = k % addrs.length;
    return addrs.slice(start).concat(addrs.slice(0, start));
  }

  private unindex(nw: Network, ep: Endpoint): void {
    for (const n of ep.names) {
      const list = nw.byName.get(n);
      if (!list) continue;
      const rest = list.filter((e) => e !== ep);
      if (rest.length > 0) nw.byName.set(n, rest);
      else nw.byName.delete(n);
    }
    if (nw.byIp.get(ep.ip) === ep) nw.byIp.delete(ep.ip);
    this.forgetRotation(ep.names);
  }

  /** Drop the rotation counters of names whose set of addresses just changed. */
  private forgetRotation(names: string[]): void {
    if (this.rotation.size === 0) return;
    const gone = new Set(names);
    for (const key of this.rotation.keys()) {
      if (gone.has(key.slice(key.lastIndexOf('\0') + 1))) this.rotation.delete(key);
    }
  }
}

function newNetwork(order: DnsOrder): Network {
  return { order, endpoints: new Map(), byName: new Map(), byIp: new Map() };
}

function unique<T>(xs: T[]): T[] {
  return xs.length < 2 ? xs.slice() : [...new Set(xs)];
}
