// The daemon's brain: networks, containers and their endpoints, kept in the state dir and
// fed to the dataplane. Implements the Engine interface the API serves (control/types.ts).
//
// Every change is serialised (one at a time, in arrival order) and saved before it is
// answered, so a crash loses at most the change in flight. On start the engine re-reads the
// state: networks get their host TAP port back, containers whose namespace still exists are
// re-attached with the same address and MAC, and containers whose namespace is gone are
// forgotten (and their leftovers removed).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import type {
  ContainerCreate, ContainerInfo, ContainerMode, DaemonInfo, DaemonOptions, EndpointInfo, Engine,
  FdbEntryInfo, NetworkCreate, NetworkInfo, PortInfo, PortStatsInfo, TraceResult,
  DnsOrder, PortMapping, NeighEntryInfo, ConntrackEntryInfo, StreamSession, TrunkCreate, TrunkInfo,
} from './types';
import { dryRun, parseHexFrame, resolvePort } from './trace';
import { CaptureHub } from './capture';
import { EventBus, emitConntrack, type VswEvent } from './events';
import { ConflictError, InvalidArgumentError, NotFoundError, VswError } from './errors';
import { StateStore } from './state';
import * as ipam from './ipam';
import * as netns from './netns';
import { DataplaneHost, type PortHandle } from '../workers/host';
import { UPLINK_NET } from '../dataplane/tables/neigh';
import { STAGE_CHOICES, stageIndex } from '../dataplane/stages/names';
import { Router, upstreamsFrom, type RouterView } from './router';
import { removeContainerEtc, writeContainerEtc } from './etc';
import { NO_NET, type PortVlans } from '../dataplane/tables/ports';
import { checkVid, formatVlanSet, inVlanSet, parseVlanSet, type VlanRanges } from './vlan';

const VERSION: string = (() => {
  try {
    for (const p of [path.join(__dirname, '..', 'package.json'), path.join(__dirname, '..', '..', 'package.json')]) {
      if (fs.existsSync(p)) return (JSON.parse(fs.readFileSync(p, 'utf8')) as { version: string }).version;
    }
  } catch { /* fall through */ }
  return '0.0.0';
})();

const RESERVED_NETWORK_NAMES = new Set(['none', 'host', 'uplink', 'trunk']);

/** A network as stored: the API's fields, plus its host TAP's name. */
type NetworkRecord = Pick<NetworkInfo, 'name' | 'id' | 'subnet' | 'gateway' | 'ipRange' | 'mtu' | 'default' | 'created'> & {
  tap: string;
  /** Absent in state written before issue #3: read as false / true / 'rotate'. */
  internal?: boolean;
  icc?: boolean;
  dnsOrder?: DnsOrder;
  /** 802.1Q VLAN id; absent (state before issue #4) or 0 = an untagged network. */
  vlan?: number;
};

/** An 802.1Q trunk as stored. */
interface TrunkRecord {
  device: string;
  kind: 'afpacket' | 'tap';
  /** VLAN ids carried; absent = every VLAN network. */
  vlans?: VlanRanges;
  native?: number;
  created: string;
}

interface EndpointRecord {
  network: string;
  ip: string;
  mac: string;
  hostIf: string;
  innerIf: string;
  aliases?: string[];
}

interface ContainerRecord {
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

interface State {
  networks: NetworkRecord[];
  containers: ContainerRecord[];
  /** Absent in state written before issue #4. */
  trunks?: TrunkRecord[];
}

export class VswEngine implements Engine {
  readonly opts: DaemonOptions;
  readonly host: DataplaneHost;
  private readonly store: StateStore<State>;
  private state: State = { networks: [], containers: [] };
  /** Dataplane port of each network's TAP and each endpoint: key `net` or `net/container`. */
  private readonly portOf = new Map<string, PortHandle>();
  /** Dataplane port of each attached trunk, by device. */
  private readonly trunkPorts = new Map<string, PortHandle>();
  private readonly children = new Map<string, ChildProcess>();
  private queue: Promise<unknown> = Promise.resolve();
  private watchTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly captures: CaptureHub;
  /** What changes, as it happens (vsw events). */
  readonly events = new EventBus();
  private eventsTimer: NodeJS.Timeout | undefined;
  /** The gateway, NAT, published ports and DNS (control/router.ts). */
  readonly router: Router;

  constructor(opts: DaemonOptions, host?: DataplaneHost) {
    this.opts = opts;
    this.store = new StateStore<State>(opts.stateDir);
    this.host = host ?? new DataplaneHost({
      workers: opts.workers,
      fdb: { maxEntries: opts.fdbMax, maxPerPort: opts.fdbMaxPerPort, agingSeconds: opts.fdbAgingSeconds },
      conntrack: opts.conntrackMax ? { maxEntries: opts.conntrackMax } : undefined,
    });
    this.captures = new CaptureHub(this.host, () => this.tapNames());
    this.router = new Router(this.host, {
      uplink: opts.uplink ? {
        device: opts.uplink, ip: opts.uplinkIp ?? '', gateway: opts.uplinkGateway ?? '', vlan: opts.uplinkVlan,
      } : undefined,
      upstreams: upstreamsFrom(opts.dns),
    });
  }

  // ---------------------------------------------------------------- life cycle

  async start(log: (line: string) => void = () => undefined): Promise<void> {
    this.store.lock();
    try {
      this.state = this.store.load() ?? { networks: [], containers: [] };
      fs.mkdirSync(this.logDir(), { recursive: true, mode: 0o700 });
      await this.host.start();
      await this.router.start();
      const up = this.router.uplinkSubnet();
      const clash = up && this.state.networks.find((n) => ipam.cidrOverlaps(n.subnet, up));
      if (clash) throw new ConflictError(`the uplink subnet ${up} overlaps network '${clash.name}' (${clash.subnet})`);
      for (const n of this.state.networks) await this.attachNetwork(n);
      if (!this.state.networks.some((n) => n.default)) {
        const n = await this.newNetwork({ name: this.opts.defaultNetwork, subnet: this.opts.defaultSubnet }, true);
        log(`created default network ${n.name} (${n.subnet})`);
      }
      await this.recoverContainers(log);
      for (const t of this.state.trunks ?? []) await this.attachTrunk(t, log);
      this.save();
      await this.syncRouter();
    } catch (e) {
      await this.router.stop().catch(() => undefined);
      await this.host.stop().catch(() => undefined);
      this.store.unlock();
      throw e;
    }
    // MAC table changes from the workers: drained (so the rings never fill) and announced.
    this.eventsTimer = setInterval(() => this.pumpEvents(), 200);
    this.eventsTimer.unref();
    // Detached commands started before a restart are not our children: poll them.
    this.watchTimer = setInterval(() => void this.serial(() => this.watchOrphans()), 2000);
    this.watchTimer.unref();
  }

  /** Stop the dataplane (TAP ports vanish with it); containers stay for the next start. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (this.eventsTimer) clearInterval(this.eventsTimer);
    await this.queue.catch(() => undefined);
    await this.router.stop().catch(() => undefined);
    await this.host.stop();
    this.store.unlock();
  }

  subscribeEvents(fn: (e: VswEvent) => void): () => void {
    return this.events.subscribe(fn);
  }

  private pumpEvents(): void {
    const { fdb: evs, ct } = this.host.drainEvents();
    if ((evs.length === 0 && ct.length === 0) || !this.events.listening) return;
    const nets = new Map(this.state.networks.map((n) => [n.id, n.name]));
    emitConntrack(this.events, ct, (id) => nets.get(id) ?? `#${id}`);
    const ports = this.portNames();
    this.events.emitFdb(evs, {
      network: (id) => nets.get(id) ?? `#${id}`,
      port: (id) => { const p = ports.get(id); return p ? { port: p.port, container: p.container } : { port: `#${id}` }; },
    });
  }

  /** Run mutations one at a time, in order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private save(): void {
    this.store.save(this.state);
  }

  private logDir(): string {
    return path.join(this.store.dir, 'containers');
  }

  // ---------------------------------------------------------------- networks

  info(): DaemonInfo {
    return {
      pid: process.pid, version: VERSION, socket: this.opts.socket, stateDir: this.store.dir,
      workers: this.opts.workers, defaultNetwork: this.defaultNetwork().name,
      netnsPath: `/proc/${process.pid}/ns/net`,
      uplink: this.router.uplinkInfo(),
    };
  }

  private defaultNetwork(): NetworkRecord {
    const n = this.state.networks.find((x) => x.default);
    if (!n) throw new VswError('no default network');
    return n;
  }

  private network(name: string): NetworkRecord {
    const n = this.state.networks.find((x) => x.name === name);
    if (!n) throw new NotFoundError(`network '${name}' not found`);
    return n;
  }

  listNetworks(): NetworkInfo[] {
    return this.state.networks.map((n) => this.networkInfo(n));
  }

  inspectNetwork(name: string): NetworkInfo {
    return this.networkInfo(this.network(name));
  }

  createNetwork(spec: NetworkCreate): Promise<NetworkInfo> {
    return this.serial(async () => {
      const n = await this.newNetwork(spec, false);
      this.save();
      await this.syncRouter();
      return this.networkInfo(n);
    });
  }

  private async newNetwork(spec: NetworkCreate, isDefault: boolean): Promise<NetworkRecord> {
    ipam.validName(spec.name, 'network name');
    if (RESERVED_NETWORK_NAMES.has(spec.name) || spec.name.startsWith('container:')) {
      throw new InvalidArgumentError(`'${spec.name}' is a reserved network name`);
    }
    if (this.state.networks.some((n) => n.name === spec.name)) {
      throw new ConflictError(`network '${spec.name}' already exists`);
    }
    if (spec.dnsOrder !== undefined && !['rotate', 'random', 'fixed'].includes(spec.dnsOrder)) {
      throw new InvalidArgumentError(`dns order '${spec.dnsOrder}': expected rotate, random or fixed`);
    }
    if (spec.vlan !== undefined) {
      checkVid(spec.vlan);
      const other = this.state.networks.find((n) => n.vlan === spec.vlan);
      if (other) throw new ConflictError(`VLAN ${spec.vlan} is already network '${other.name}' (a VLAN is one network)`);
    }
    const up = this.router.uplinkSubnet();
    const norm = ipam.normalizeNetwork(spec, {
      existingSubnets: [
        ...this.state.networks.map((n) => ({ name: n.name, subnet: n.subnet })),
        ...(up ? [{ name: 'uplink', subnet: up }] : []),
      ],
      usedPrefixes: await this.foreignPrefixes(),
    });
    let id = 0;
    while (this.state.networks.some((n) => n.id === id)) id++;
    if (id >= UPLINK_NET) throw new ConflictError(`at most ${UPLINK_NET} networks`);
    const rec: NetworkRecord = {
      name: spec.name, id, ...norm, default: isDefault, created: new Date().toISOString(), tap: `vsw${id}`,
      internal: !!spec.internal, icc: spec.icc !== false, dnsOrder: spec.dnsOrder ?? 'rotate',
    };
    if (spec.vlan !== undefined) rec.vlan = spec.vlan;
    await this.attachNetwork(rec);
    this.state.networks.push(rec);
    await this.syncTrunks();
    this.events.emit('network-create', { network: rec.name, subnet: rec.subnet, gateway: rec.gateway });
    return rec;
  }

  /** Prefixes used in the daemon's namespace, minus our own TAP subnets. */
  private async foreignPrefixes(): Promise<string[]> {
    const ours = new Set(this.state.networks.map((n) => ipam.parseCidr(n.subnet, 32).text));
    return (await netns.usedPrefixes()).filter((p) => !ours.has(p));
  }

  /** Create the network's host TAP port: fixed MAC, the host address, up. */
  private async attachNetwork(n: NetworkRecord): Promise<void> {
    // Our TAPs vanish with the fd (even on kill -9): an interface by this name is someone
    // else's (another vsw daemon in this namespace?), never ours to delete.
    if (await netns.linkExists(n.tap)) {
      throw new ConflictError(`interface '${n.tap}' for network '${n.name}' already exists in this namespace (another vsw daemon?)`);
    }
    const port = await this.host.addPort({ name: n.tap, kind: 'tap', netId: n.id, vlan: n.vlan ?? 0 });
    try {
      const hostIp = ipam.hostPortIp(n.subnet);
      await netns.disableIpv6(n.tap);
      await netns.setMac(n.tap, ipam.macFromIp(hostIp));
      await netns.setMtu(n.tap, n.mtu);
      await netns.addAddress(n.tap, `${hostIp}/${ipam.parseCidr(n.subnet, 32).prefixLen}`);
      await netns.linkUp(n.tap);
    } catch (e) {
      await this.host.removePort(port.id);
      throw e;
    }
    this.portOf.set(n.name, port);
    this.events.emit('port-up', { port: n.tap, network: n.name, kind: 'tap' });
  }

  removeNetwork(name: string): Promise<void> {
    return this.serial(async () => {
      const n = this.network(name);
      if (n.default) throw new ConflictError(`'${name}' is the default network and cannot be removed`);
      const users = this.state.containers.filter((c) => c.endpoints.some((e) => e.network === name));
      if (users.length > 0) {
        throw new ConflictError(`network '${name}' has active endpoints (${users.map((c) => c.name).join(', ')}): disconnect or remove them first`);
      }
      const port = this.portOf.get(name);
      if (port) await this.host.removePort(port.id);
      this.portOf.delete(name);
      this.host.fdb.flushNet(n.id);
      this.events.emit('port-down', { port: n.tap, network: n.name, kind: 'tap' });
      this.events.emit('network-remove', { network: n.name });
      this.state.networks = this.state.networks.filter((x) => x !== n);
      await this.syncTrunks();
      this.save();
      this.router.dropFlowsOfNet(n.id);
      await this.syncRouter();
    });
  }

  private networkInfo(n: NetworkRecord): NetworkInfo {
    const tap = this.portOf.get(n.name);
    const hostIp = ipam.hostPortIp(n.subnet);
    const endpoints: EndpointInfo[] = [];
    const ports: PortInfo[] = [];
    if (tap) ports.push(this.portInfo(tap, 'host'));
    for (const p of this.trunkPorts.values()) if (this.host.portTable.egressVid(p.id, n.id) >= 0) ports.push(this.portInfo(p, 'trunk'));
    for (const c of this.state.containers) {
      for (const e of c.endpoints) {
        if (e.network !== n.name) continue;
        endpoints.push(this.endpointInfo(c, e));
        const p = this.portOf.get(`${n.name}/${c.name}`);
        if (p) ports.push(this.portInfo(p, 'endpoint', c.name));
      }
    }
    return {
      name: n.name, id: n.id, subnet: n.subnet, gateway: n.gateway, ipRange: n.ipRange, mtu: n.mtu,
      default: n.default, created: n.created,
      internal: n.internal ?? false, icc: n.icc ?? true, dnsOrder: n.dnsOrder ?? 'rotate', vlan: n.vlan ?? 0,
      gatewayMac: ipam.macFromIp(n.gateway),
      hostPort: tap ? { name: n.tap, ip: hostIp, mac: ipam.macFromIp(hostIp) } : null,
      ports, endpoints,
    };
  }

  private portInfo(p: PortHandle, role: PortInfo['role'], container?: string): PortInfo {
    return { id: p.id, name: p.name, kind: p.kind, role, container, vnet: p.vnet, worker: p.worker };
  }

  private endpointInfo(c: ContainerRecord, e: EndpointRecord): EndpointInfo {
    const n = this.network(e.network);
    return {
      container: c.name, network: e.network, ip: e.ip, prefixLen: ipam.parseCidr(n.subnet, 32).prefixLen,
      mac: e.mac, hostIf: e.hostIf, portId: this.portOf.get(`${e.network}/${c.name}`)?.id ?? -1,
      aliases: e.aliases ?? [],
    };
  }

  // ---------------------------------------------------------------- containers

  private container(name: string): ContainerRecord {
    const c = this.state.containers.find((x) => x.name === name);
    if (!c) throw new NotFoundError(`container '${name}' not found`);
    return c;
  }

  listContainers(): ContainerInfo[] {
    return this.state.containers.map((c) => this.containerInfo(c));
  }

  inspectContainer(name: string): ContainerInfo {
    return this.containerInfo(this.container(name));
  }

  private containerInfo(c: ContainerRecord): ContainerInfo {
    return {
      name: c.name, id: c.id, mode: c.mode, netns: c.netns, sharedWith: c.sharedWith,
      networks: c.endpoints.map((e) => this.endpointInfo(c, e)), cmd: c.cmd, detach: c.detach, rm: c.rm,
      status: c.status, pid: c.pid, exitCode: c.exitCode, created: c.created,
      ports: c.ports ?? [], links: c.links ?? [],
    };
  }

  createContainer(spec: ContainerCreate): Promise<ContainerInfo> {
    return this.serial(async () => {
      ipam.validName(spec.name, 'container name');
      if (this.state.containers.some((c) => c.name === spec.name)) {
        throw new ConflictError(`container '${spec.name}' already exists`);
      }
      const cmd = spec.cmd ?? [];
      if (!Array.isArray(cmd) || cmd.some((a) => typeof a !== 'string')) throw new InvalidArgumentError('cmd must be a list of strings');
      if (spec.detach && cmd.length === 0) throw new InvalidArgumentError('run -d needs a command to run (after --)');
      const want = spec.network ?? this.defaultNetwork().name;
      const c: ContainerRecord = {
        name: spec.name, id: crypto.randomBytes(6).toString('hex'), mode: 'bridge', netns: spec.name,
        endpoints: [], cmd, detach: !!spec.detach, rm: !!spec.rm, status: 'created', created: new Date().toISOString(),
      };
      let net: NetworkRecord | undefined;
      if (want === 'host') {
        c.mode = 'host'; c.netns = '';
      } else if (want === 'none') {
        c.mode = 'none';
      } else if (want.startsWith('container:')) {
        const other = this.container(want.slice('container:'.length));
        c.mode = 'container'; c.netns = other.netns; c.sharedWith = other.sharedWith ?? other.name;
      } else {
        net = this.network(want);
      }
      if (spec.ip !== undefined && spec.ip !== '' && !net) {
        throw new InvalidArgumentError(`--ip needs a network to take the address from (not '${want}')`);
      }
      const aliases = validAliases(spec.aliases);
      if (aliases.length > 0 && !net) throw new InvalidArgumentError(`--alias needs a network (not '${want}')`);
      const publish = spec.publish ?? [];
      this.router.checkPublish(c.name, net ? { name: net.name, internal: net.internal ?? false } : undefined, publish);
      c.ports = publish.map((m) => ({ ...m }));
      c.links = (spec.links ?? []).map((l) => {
        if (!l || typeof l.name !== 'string') throw new InvalidArgumentError('--link: expected NAME[:ALIAS]');
        const other = this.container(l.name);
        if (!net || !other.endpoints.some((e) => e.network === net!.name)) {
          throw new InvalidArgumentError(`--link ${l.name}: the container is not on network '${net?.name ?? want}'`);
        }
        if (l.alias !== undefined) ipam.validName(l.alias, 'link alias');
        return l.alias ? { name: l.name, alias: l.alias } : { name: l.name };
      });
      if (c.mode === 'bridge' || c.mode === 'none') {
        if (netns.netnsExists(c.name)) {
          throw new ConflictError(`a network namespace named '${c.name}' already exists (not a vsw container): pick another name`);
        }
        await netns.createNetns(c.name);
        try {
          if (net) {
            const e = await this.attachEndpoint(c, net, spec.ip, true);
            if (aliases.length > 0) e.aliases = aliases;
            c.endpoints.push(e);
          }
          this.writeEtc(c);
        } catch (e) {
          for (const ep of c.endpoints) await this.unplugEndpoint(c, ep).catch(() => undefined);
          await netns.deleteNetns(c.name).catch(() => undefined);
          removeContainerEtc(c.name);
          throw e;
        }
      }
      this.state.containers.push(c);
      if (c.detach) {
        try {
          this.startDetached(c);
        } catch (e) {
          await this.destroy(c, true);
          throw e;
        }
      } else if (cmd.length > 0) {
        c.status = 'running'; // the CLI runs it in the foreground and reports the exit
      }
      this.save();
      await this.syncRouter();
      this.events.emit('container-start', {
        container: c.name, mode: c.mode, network: c.endpoints[0]?.network, ip: c.endpoints[0]?.ip, cmd: c.cmd.join(' ') || undefined,
      });
      return this.containerInfo(c);
    });
  }

  /** Create the veth pair, configure the inner end, and plug the host end into the switch. */
  private async attachEndpoint(c: ContainerRecord, n: NetworkRecord, ip: string | undefined, first: boolean): Promise<EndpointRecord> {
    const used = new Map<string, string>();
    for (const o of this.state.containers) for (const e of o.endpoints) if (e.network === n.name) used.set(e.ip, o.name);
    const addr = ipam.allocateIp(n, used, ip);
    const e: EndpointRecord = {
      network: n.name, ip: addr, mac: ipam.macFromIp(addr),
      hostIf: netns.hostIfName(`${c.id}/${n.id}`), innerIf: await netns.nextInnerIfName(c.netns),
    };
    await netns.createVeth(e.hostIf, c.netns, n.mtu, e.innerIf);
    try {
      await this.plugEndpoint(c, n, e, first);
    } catch (err) {
      await netns.deleteLink(e.hostIf).catch(() => undefined);
      throw err;
    }
    return e;
  }

  private async plugEndpoint(c: ContainerRecord, n: NetworkRecord, e: EndpointRecord, defaultRoute: boolean): Promise<void> {
    await netns.configureEndpoint(c.netns, e.innerIf, {
      mac: e.mac, ip: e.ip, prefixLen: ipam.parseCidr(n.subnet, 32).prefixLen, gateway: n.gateway, mtu: n.mtu, defaultRoute,
    });
    const port = await this.host.addPort({ name: e.hostIf, kind: 'afpacket', netId: n.id, vlan: n.vlan ?? 0 });
    this.portOf.set(`${n.name}/${c.name}`, port);
    this.events.emit('port-up', { port: e.hostIf, network: n.name, container: c.name, kind: 'afpacket', ip: e.ip, mac: e.mac });
  }

  private async unplugEndpoint(c: ContainerRecord, e: EndpointRecord): Promise<void> {
    const key = `${e.network}/${c.name}`;
    const port = this.portOf.get(key);
    if (port) await this.host.removePort(port.id);
    this.portOf.delete(key);
    await netns.deleteLink(e.hostIf);
    this.events.emit('port-down', { port: e.hostIf, network: e.network, container: c.name, kind: 'afpacket' });
  }

  /** The container's /etc/resolv.conf (its first network's gateway) and /etc/hosts. */
  private writeEtc(c: ContainerRecord): void {
    if (c.mode !== 'bridge' && c.mode !== 'none') return;
    const first = c.endpoints[0];
    const gw = first ? this.state.networks.find((n) => n.name === first.network)?.gateway : undefined;
    const links = (c.links ?? []).flatMap((l) => {
      const other = this.state.containers.find((x) => x.name === l.name);
      const shared = other?.endpoints.find((e) => c.endpoints.some((m) => m.network === e.network));
      return shared ? [{ ip: shared.ip, name: l.name, alias: l.alias }] : [];
    });
    writeContainerEtc(c.netns, { nameserver: gw, self: first ? { name: c.name, ip: first.ip } : undefined, links });
  }

  /** Tell the router (DNS names, gateways, published ports) what the networks now hold. */
  private async syncRouter(): Promise<void> {
    const view: RouterView = {
      networks: this.state.networks.map((n) => ({
        name: n.name, id: n.id, subnet: n.subnet, gateway: n.gateway, internal: n.internal ?? false,
        icc: n.icc ?? true, dnsOrder: n.dnsOrder ?? 'rotate', hostPortId: this.portOf.get(n.name)?.id ?? -1,
      })),
      endpoints: this.state.containers.flatMap((c) => c.endpoints.map((e) => ({
        container: c.name, network: e.network, ip: e.ip, portId: this.portOf.get(`${e.network}/${c.name}`)?.id ?? -1,
        aliases: e.aliases ?? [],
      }))),
      published: this.state.containers.filter((c) => (c.ports ?? []).length > 0 && c.endpoints.length > 0).map((c) => ({
        container: c.name, network: c.endpoints[0].network, ip: c.endpoints[0].ip, ports: c.ports ?? [],
      })),
    };
    await this.router.sync(view);
  }

  private netNames(): Map<number, string> {
    return new Map(this.state.networks.map((n) => [n.id, n.name]));
  }

  neigh(network?: string): NeighEntryInfo[] {
    if (network !== undefined && network !== 'uplink') this.network(network);
    return this.router.neigh(this.netNames(), network);
  }

  conntrack(): ConntrackEntryInfo[] {
    return this.router.conntrack(this.netNames());
  }

  /** Frames captures and traces lost (rings full, or a client not reading), for the metrics. */
  captureLost(): number {
    return this.captures.lostTotal();
  }

  /** For the metrics (control/metrics.ts). */
  l3Counters(): ReturnType<Router['counters']> {
    return this.router.counters();
  }

  connect(network: string, container: string, ip?: string): Promise<EndpointInfo> {
    return this.connectWith(network, container, { ip });
  }

  connectWith(network: string, container: string, opts: { ip?: string; aliases?: string[] }): Promise<EndpointInfo> {
    const ip = opts.ip;
    const aliases = validAliases(opts.aliases);
    return this.serial(async () => {
      const n = this.network(network);
      const c = this.container(container);
      if (c.mode !== 'bridge' && c.mode !== 'none') {
        throw new ConflictError(`container '${container}' uses ${c.mode === 'host' ? 'the host network' : `the network namespace of '${c.sharedWith}'`} and cannot be connected to a network`);
      }
      if (c.endpoints.some((e) => e.network === network)) {
        throw new ConflictError(`container '${container}' is already connected to network '${network}'`);
      }
      const e = await this.attachEndpoint(c, n, ip, c.endpoints.length === 0);
      if (aliases.length > 0) e.aliases = aliases;
      c.endpoints.push(e);
      if (c.mode === 'none') c.mode = 'bridge';
      this.writeEtc(c);
      this.save();
      await this.syncRouter();
      return this.endpointInfo(c, e);
    });
  }

  disconnect(network: string, container: string): Promise<void> {
    return this.serial(async () => {
      this.network(network);
      const c = this.container(container);
      const e = c.endpoints.find((x) => x.network === network);
      if (!e) throw new NotFoundError(`container '${container}' is not connected to network '${network}'`);
      await this.unplugEndpoint(c, e);
      c.endpoints = c.endpoints.filter((x) => x !== e);
      this.writeEtc(c);
      this.save();
      await this.syncRouter();
    });
  }

  containerExited(name: string, code: number): Promise<void> {
    return this.serial(async () => {
      const c = this.container(name);
      c.status = 'exited';
      c.exitCode = code;
      c.pid = undefined;
      this.save();
      this.events.emit('container-exit', { container: name, code });
    });
  }

  removeContainer(name: string, force: boolean): Promise<void> {
    return this.serial(async () => {
      const c = this.container(name);
      const sharers = this.state.containers.filter((x) => x.sharedWith === name);
      if (sharers.length > 0) {
        throw new ConflictError(`containers ${sharers.map((x) => x.name).join(', ')} share the network namespace of '${name}': remove them first`);
      }
      if (!force) {
        const pids = c.pid !== undefined && netns.pidAlive(c.pid) ? [c.pid]
          : (c.mode === 'bridge' || c.mode === 'none') && netns.netnsExists(c.netns) ? await netns.netnsPids(c.netns).catch(() => []) : [];
        if (pids.length > 0) {
          throw new ConflictError(`container '${name}' is running (pid ${pids.join(', ')}): stop it, or use rm -f`);
        }
      }
      await this.destroy(c, true);
      this.save();
      await this.syncRouter();
    });
  }

  /** Kill what runs in the container, unplug it, delete its namespace, forget it. */
  private async destroy(c: ContainerRecord, killAll: boolean): Promise<void> {
    if (c.pid !== undefined && netns.pidAlive(c.pid)) {
      try { process.kill(-c.pid, 'SIGKILL'); } catch { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    this.children.delete(c.name);
    if (killAll && (c.mode === 'bridge' || c.mode === 'none') && netns.netnsExists(c.netns)) {
      for (const pid of await netns.netnsPids(c.netns).catch(() => [])) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    for (const e of c.endpoints) await this.unplugEndpoint(c, e);
    if (c.mode === 'bridge' || c.mode === 'none') {
      await netns.deleteNetns(c.netns);
      removeContainerEtc(c.netns);
    }
    fs.rmSync(path.join(this.logDir(), `${c.name}.log`), { force: true });
    this.state.containers = this.state.containers.filter((x) => x !== c);
    this.events.emit('container-remove', { container: c.name });
  }

  private startDetached(c: ContainerRecord): void {
    const log = path.join(this.logDir(), `${c.name}.log`);
    const { pid, child } = netns.spawnInNetns(c.mode === 'host' ? null : c.netns, c.cmd, log);
    c.pid = pid;
    c.status = 'running';
    this.children.set(c.name, child);
    child.on('exit', (code, signal) => {
      void this.serial(async () => {
        if (this.children.get(c.name) !== child) return;
        this.children.delete(c.name);
        c.status = 'exited';
        c.exitCode = code ?? 128 + (signal ? (signalNumber(signal) ?? 0) : 0);
        c.pid = undefined;
        this.events.emit('container-exit', { container: c.name, code: c.exitCode });
        if (c.rm && this.state.containers.includes(c)) await this.destroy(c, true);
        if (!this.stopping) this.save();
      });
    });
  }

  /** Detached commands from before a restart: mark them exited when their pid is gone. */
  private async watchOrphans(): Promise<void> {
    let changed = false;
    for (const c of this.state.containers) {
      if (c.status !== 'running' || !c.detach || c.pid === undefined || this.children.has(c.name)) continue;
      if (!netns.pidAlive(c.pid)) {
        c.status = 'exited'; c.pid = undefined; changed = true;
        if (c.rm) await this.destroy(c, true);
      }
    }
    if (changed && !this.stopping) this.save();
  }

  /** After a restart: re-attach containers whose namespace exists, forget the others. */
  private async recoverContainers(log: (line: string) => void): Promise<void> {
    const keep: ContainerRecord[] = [];
    const byName = new Map(this.state.containers.map((c) => [c.name, c]));
    for (const c of this.state.containers) {
      const owner = c.mode === 'container' ? byName.get(c.sharedWith ?? '') : c;
      const alive = c.mode === 'host' || (owner !== undefined && (owner.mode === 'host' || netns.netnsExists(owner.netns)));
      if (!alive) {
        log(`container ${c.name}: its network namespace is gone; removing it`);
        for (const e of c.endpoints) await netns.deleteLink(e.hostIf).catch(() => undefined);
        continue;
      }
      for (const e of c.endpoints) {
        const n = this.state.networks.find((x) => x.name === e.network);
        if (!n) continue;
        if (!(await netns.linkExists(e.hostIf))) {
          // The pair is gone (someone deleted it): make a new one with the same address and MAC.
          await netns.deleteLink(e.innerIf, c.netns).catch(() => undefined);
          await netns.createVeth(e.hostIf, c.netns, n.mtu, e.innerIf);
        }
        await this.plugEndpoint(c, n, e, e === c.endpoints[0]);
      }
      if (c.status === 'running' && c.pid !== undefined && !netns.pidAlive(c.pid)) { c.status = 'exited'; c.pid = undefined; }
      if (c.status === 'running' && !c.detach) { c.status = 'exited'; } // its CLI went with the old daemon's answer
      keep.push(c);
      log(`container ${c.name}: re-attached`);
    }
    this.state.containers = keep.filter((c) => c.mode !== 'container' || keep.some((o) => o.name === c.sharedWith));
  }

  // ---------------------------------------------------------------- 802.1Q trunks

  listTrunks(): TrunkInfo[] {
    return (this.state.trunks ?? []).map((t) => this.trunkInfo(t));
  }

  addTrunk(spec: TrunkCreate): Promise<TrunkInfo> {
    return this.serial(async () => {
      const dev = spec.device;
      if (typeof dev !== 'string' || dev === '' || dev === '.' || dev === '..' || Buffer.byteLength(dev) > 15 || /[/:\s]/.test(dev)) {
        throw new InvalidArgumentError(`invalid interface name '${String(dev)}': 1 to 15 characters, without '/', ':' or spaces`);
      }
      if ((this.state.trunks ?? []).some((t) => t.device === dev)) throw new ConflictError(`${dev} is already a trunk`);
      if (this.host.ports().some((p) => p.name === dev)) {
        throw new ConflictError(`${dev} is already a port of the switch (a network's TAP, a container's veth or the uplink)`);
      }
      const native = spec.native === undefined ? undefined : checkVid(spec.native, 'native VLAN');
      const vlans = spec.vlans === undefined ? undefined : parseVlanSet(spec.vlans);
      const kind: TrunkRecord['kind'] = spec.tap ? 'tap' : 'afpacket';
      const exists = await netns.linkExists(dev);
      if (kind === 'afpacket' && !exists) {
        throw new NotFoundError(`no interface '${dev}' in the daemon's namespace (with --tap, vsw creates a TAP by that name)`);
      }
      if (kind === 'tap' && exists) throw new ConflictError(`an interface '${dev}' already exists: without --tap, vsw attaches it as it is`);
      const t: TrunkRecord = { device: dev, kind, created: new Date().toISOString() };
      if (vlans !== undefined) t.vlans = vlans;
      if (native !== undefined) t.native = native;
      await this.openTrunk(t);
      (this.state.trunks ??= []).push(t);
      this.save();
      return this.trunkInfo(t);
    });
  }

  removeTrunk(device: string): Promise<void> {
    return this.serial(async () => {
      const t = (this.state.trunks ?? []).find((x) => x.device === device);
      if (!t) throw new NotFoundError(`no trunk '${device}' (see vsw trunk ls)`);
      const port = this.trunkPorts.get(device);
      if (port) {
        await this.host.removePort(port.id);
        this.trunkPorts.delete(device);
        this.events.emit('port-down', { port: device, network: 'trunk', kind: t.kind });
      }
      this.state.trunks = (this.state.trunks ?? []).filter((x) => x !== t);
      this.save();
    });
  }

  /**
   * What a trunk carries now: the network of its native VLAN untagged, the other VLAN
   * networks in its set tagged (a network created later joins at once).
   */
  private trunkVlans(t: TrunkRecord): PortVlans {
    const native = t.native === undefined ? undefined : this.state.networks.find((n) => n.vlan === t.native);
    const tagged = this.state.networks
      .filter((n) => n.vlan !== undefined && n.vlan > 0 && n.vlan !== t.native && (t.vlans === undefined || inVlanSet(t.vlans, n.vlan)))
      .map((n) => ({ vid: n.vlan as number, net: n.id }))
      .sort((a, b) => a.vid - b.vid);
    return native ? { untagged: native.id, pvid: native.vlan as number, tagged } : { untagged: NO_NET, pvid: 0, tagged };
  }

  private trunkInfo(t: TrunkRecord): TrunkInfo {
    const port = this.trunkPorts.get(t.device);
    const v = this.trunkVlans(t);
    const name = (id: number): string => this.state.networks.find((n) => n.id === id)?.name ?? `#${id}`;
    const networks = [
      ...(v.untagged === NO_NET ? [] : [{ name: name(v.untagged), vlan: v.pvid, tagged: false }]),
      ...v.tagged.map((x) => ({ name: name(x.net), vlan: x.vid, tagged: true })),
    ].sort((a, b) => a.vlan - b.vlan);
    return {
      device: t.device, kind: t.kind, vlans: t.vlans ? formatVlanSet(t.vlans) : 'all', native: t.native ?? null,
      portId: port?.id ?? -1, status: port ? 'up' : 'missing', networks, created: t.created,
    };
  }

  /** Open a trunk's port (an AF_PACKET socket on the interface, or a new TAP) and bring it up. */
  private async openTrunk(t: TrunkRecord): Promise<void> {
    const port = await this.host.addPort({ name: t.device, kind: t.kind, netId: NO_NET, vlans: this.trunkVlans(t) });
    try {
      // A TAP of ours: no IPv6 chatter (router solicitations) from the host into the trunk.
      if (t.kind === 'tap') await netns.disableIpv6(t.device);
      await netns.linkUp(t.device);
    } catch (e) {
      await this.host.removePort(port.id);
      throw e;
    }
    this.trunkPorts.set(t.device, port);
    this.events.emit('port-up', {
      port: t.device, network: 'trunk', kind: t.kind, vlans: t.vlans ? formatVlanSet(t.vlans) : 'all', native: t.native,
    });
  }

  /** At start: re-open a trunk from the state; one that cannot be is kept, as missing. */
  private async attachTrunk(t: TrunkRecord, log: (line: string) => void): Promise<void> {
    const exists = await netns.linkExists(t.device);
    if (t.kind === 'afpacket' && !exists) {
      log(`trunk ${t.device}: no such interface; kept, not attached (vsw trunk rm ${t.device} forgets it)`);
      return;
    }
    if (t.kind === 'tap' && exists) {
      log(`trunk ${t.device}: an interface by that name already exists; the TAP is not created`);
      return;
    }
    try {
      await this.openTrunk(t);
      log(`trunk ${t.device}: attached (${this.trunkInfo(t).networks.map((n) => `${n.vlan}${n.tagged ? '' : ' untagged'}`).join(', ') || 'no VLAN network yet'})`);
    } catch (e) {
      log(`trunk ${t.device}: ${(e as Error).message}; kept, not attached`);
    }
  }

  /** Trunks follow the networks: after a VLAN network is created or removed. */
  private async syncTrunks(): Promise<void> {
    for (const t of this.state.trunks ?? []) {
      const port = this.trunkPorts.get(t.device);
      if (!port) continue;
      const v = this.trunkVlans(t);
      if (JSON.stringify(v) !== JSON.stringify(port.vlans)) await this.host.setPortVlans(port.id, v);
    }
  }

  // ---------------------------------------------------------------- observation

  private portNames(): Map<number, { port: string; network: string; container?: string }> {
    const m = new Map<number, { port: string; network: string; container?: string }>();
    for (const [key, p] of this.portOf) {
      const [network, container] = key.split('/');
      m.set(p.id, { port: p.name, network, container });
    }
    for (const p of this.trunkPorts.values()) m.set(p.id, { port: p.name, network: 'trunk' });
    return m;
  }

  fdb(network?: string): FdbEntryInfo[] {
    const nets = new Map(this.state.networks.map((n) => [n.id, n.name]));
    if (network !== undefined) this.network(network);
    const names = this.portNames();
    const now = this.host.now();
    return this.host.fdbEntries()
      .filter((e) => network === undefined || nets.get(e.net) === network)
      .map((e) => ({
        network: nets.get(e.net) ?? `#${e.net}`, mac: e.mac, vlan: e.vlan,
        port: names.get(e.port)?.port ?? `#${e.port}`, portId: e.port, container: names.get(e.port)?.container,
        ageSeconds: Math.max(0, now - e.lastSeen),
      }))
      .sort((a, b) => a.network.localeCompare(b.network) || a.port.localeCompare(b.port) || a.mac.localeCompare(b.mac));
  }

  async startCapture(port: string, onFrame: (frame: Uint8Array, timeMs: number) => void,
    opts: { stage?: string; filter?: string } = {}): Promise<StreamSession & { port: string }> {
    const id = this.resolvePortId(port);
    const stage = opts.stage === undefined || opts.stage === '' ? -1 : stageIndex(opts.stage);
    if (opts.stage && stage < 0) throw new InvalidArgumentError(`no stage '${opts.stage}': one of ${STAGE_CHOICES.join(', ')}`);
    const session = await this.captures.openCapture(id, { stage, filter: opts.filter ?? '' }, onFrame);
    return { port: this.host.port(id)?.name ?? port, stop: () => session.stop(), lost: () => session.lost(), skipped: (n) => this.captures.readerSkipped(n) };
  }

  /** Live trace: every frame that matches (port or network, and filter), through every stage. */
  async startTrace(opts: { port?: string; network?: string; filter?: string; count?: number },
    onTrace: (r: TraceResult) => void): Promise<StreamSession> {
    const port = opts.port ? this.resolvePortId(opts.port) : -1;
    const net = opts.network ? (opts.network === 'uplink' ? UPLINK_NET : this.network(opts.network).id) : -1;
    const s = await this.captures.openTrace({ port, net, filter: opts.filter ?? '', count: opts.count ?? 0 }, onTrace);
    return { stop: () => s.stop(), lost: () => s.lost(), skipped: (n) => this.captures.readerSkipped(n) };
  }

  /** Port labels and network names for live traces (the workers know only numbers). */
  private tapNames(): { ports: [number, string][]; nets: [number, string][] } {
    const ports: [number, string][] = [];
    for (const [id, n] of this.portNames()) ports.push([id, n.container ? `${n.port} (${n.container})` : n.port]);
    const nets: [number, string][] = this.state.networks.map((n) => [n.id, n.name]);
    return { ports, nets };
  }

  /** A port id from a port name, a container name (its first network) or CONTAINER:NETWORK. */
  resolvePortId(spec: string): number {
    return resolvePort(spec, this.stats(), (c) => this.state.containers.find((x) => x.name === c)?.endpoints[0]?.network);
  }

  traceDryRun(port: string, frames: string[]): TraceResult[] {
    if (frames.length === 0) throw new InvalidArgumentError('no frame to trace');
    return dryRun(this, port, frames.map(parseHexFrame));
  }

  stats(): PortStatsInfo[] {
    const names = this.portNames();
    return this.host.ports().map((p) => {
      const n = names.get(p.id);
      const c = this.host.portCounters(p.id);
      const network = n?.network ?? (p.netId === UPLINK_NET ? 'uplink' : '');
      return { id: p.id, name: p.name, network, container: n?.container, ...c };
    }).sort((a, b) => a.id - b.id);
  }
}

/** --alias values: DNS-name-like, no duplicates. */
function validAliases(aliases: unknown): string[] {
  if (aliases === undefined) return [];
  if (!Array.isArray(aliases) || aliases.some((a) => typeof a !== 'string')) throw new InvalidArgumentError('aliases must be a list of names');
  for (const a of aliases as string[]) {
    if (!/^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$/.test(a) || a.length > 253) {
      throw new InvalidArgumentError(`invalid alias '${a}': letters, digits, '-', '_' and '.' between labels of 1-63 characters`);
    }
  }
  return [...new Set(aliases as string[])];
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  const n = (require('node:os') as typeof import('node:os')).constants.signals[sig];
  return typeof n === 'number' ? n : undefined;
}
