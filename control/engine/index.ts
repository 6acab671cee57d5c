// The daemon's brain: networks, containers and their endpoints, kept in the state dir and
// fed to the dataplane. Implements the Engine interface the API serves (control/types.ts)
// as a facade over one module per concern:
//
//   records.ts    the state as stored, and its lookups
//   ports.ts      the dataplane ports the engine opened, and their names
//   networks.ts   networks and their host TAPs; what the router is told
//   endpoints.ts  a container's veth pairs and /etc/netns files
//   containers.ts create, connect, disconnect, remove
//   attachments.ts endpoints of sandboxes another runtime made (Docker, CNI)
//   supervise.ts  detached commands
//   names.ts      DNS name collisions between containers
//   recovery.ts   re-attaching containers after a restart
//   trunks.ts     802.1Q trunks
//   observe.ts    tables, counters, events, captures and traces
//   impair.ts     link impairment of ports (vsw impair)
//
// Every change is serialised (one at a time, in arrival order) and saved before it is
// answered, so a crash loses at most the change in flight. On start the engine re-reads the
// state: networks get their host TAP port back, containers whose namespace still exists are
// re-attached with the same address and MAC, containers whose namespace is gone are
// forgotten (and their leftovers removed), creations a crash interrupted are undone, and a
// container that cannot be re-attached is reported and skipped (recovery.ts).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type {
  AttachmentCreate, AttachmentInfo, PortMapping, ContainerCreate, ContainerInfo, DaemonInfo, DaemonOptions, EndpointInfo, Engine, FdbEntryInfo, NetworkCreate,
  NetworkInfo, PortStatsInfo, TraceResult, NeighEntryInfo, ConntrackEntryInfo, StreamSession, TrunkCreate, TrunkInfo, CaptureDirection,
  ImpairInfo,
} from '../types';
import { CaptureHub } from '../capture';
import { EventBus, type VswEvent } from '../events';
import { ConflictError, InvalidArgumentError } from '../errors';
import { runInject, type InjectProgress, type InjectSpec, type InjectSummary } from '../inject';
import type { Snapshot } from '../snapshot';
import { StateStore } from '../state';
import * as ipam from '../ipam';
import { Router, upstreamsFrom } from '../router';
import { DataplaneHost } from '../../workers/host';
import { checkState, Records, type State } from './records';
import { PortBook } from './ports';
import { Networks, routerView } from './networks';
import { Endpoints } from './endpoints';
import { Containers, validAliases } from './containers';
import { Attachments } from './attachments';
import { Supervisor } from './supervise';
import { recoverContainers } from './recovery';
import { Trunks } from './trunks';
import { Observer } from './observe';
import { Impairs } from './impair';
import type { ImpairRequest } from '../impair';

const VERSION: string = (() => {
  try {
    for (const p of [path.join(__dirname, '..', '..', 'package.json'), path.join(__dirname, '..', '..', '..', 'package.json')]) {
      if (fs.existsSync(p)) return (JSON.parse(fs.readFileSync(p, 'utf8')) as { version: string }).version;
    }
  } catch { /* fall through */ }
  return '0.0.0';
})();

export class VswEngine implements Engine {
  readonly opts: DaemonOptions;
  readonly host: DataplaneHost;
  /** What changes, as it happens (vsw events). */
  readonly events = new EventBus();
  /** The gateway, NAT, published ports and DNS (control/router.ts). */
  readonly router: Router;
  private readonly store: StateStore<State>;
  private readonly records = new Records();
  private readonly ports = new PortBook();
  private readonly networks: Networks;
  private readonly containers: Containers;
  private readonly attachments: Attachments;
  private readonly supervisor: Supervisor;
  private readonly endpoints: Endpoints;
  private readonly trunks: Trunks;
  private readonly observer: Observer;
  private readonly impairs: Impairs;
  private queue: Promise<unknown> = Promise.resolve();
  private watchTimer: NodeJS.Timeout | undefined;
  private eventsTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(opts: DaemonOptions, host?: DataplaneHost) {
    this.opts = opts;
    this.store = new StateStore<State>(opts.stateDir, checkState);
    this.host = host ?? new DataplaneHost({
      workers: opts.workers,
      busyPollUs: opts.busyPollUs ?? 0,
      ...(opts.rxRingFrames ? { rxRingFrames: opts.rxRingFrames } : {}),
      fdb: { maxEntries: opts.fdbMax, maxPerPort: opts.fdbMaxPerPort, agingSeconds: opts.fdbAgingSeconds },
      conntrack: opts.conntrackMax ? { maxEntries: opts.conntrackMax } : undefined,
    });
    this.router = new Router(this.host, {
      uplink: opts.uplink ? {
        device: opts.uplink, ip: opts.uplinkIp ?? '', gateway: opts.uplinkGateway ?? '', vlan: opts.uplinkVlan,
      } : undefined,
      upstreams: upstreamsFrom(opts.dns),
    });
    const { records, ports, events, router } = this;
    const dataplane = this.host;
    const saver = { save: () => this.save() };
    const logDir = this.logDir();
    const captures = new CaptureHub(dataplane, () => this.observer.tapNames());
    this.observer = new Observer({ records, ports, host: dataplane, captures, router, events });
    this.trunks = new Trunks({ records, ports, host: dataplane, events, store: saver });
    this.impairs = new Impairs({
      records, ports, host: dataplane, store: saver, resolve: (p) => this.observer.resolvePortId(p), uplink: opts.uplink,
    });
    this.networks = new Networks({ records, ports, host: dataplane, events, router, trunks: this.trunks });
    this.endpoints = new Endpoints({ records, ports, host: dataplane, events });
    this.supervisor = new Supervisor({
      records, events, store: saver, serial: (fn) => this.serial(fn), logDir,
      destroy: (c, killAll) => this.containers.destroy(c, killAll), stopping: () => this.stopping,
    });
    this.containers = new Containers({
      records, ports, endpoints: this.endpoints, events, router, store: saver, logDir,
      syncRouter: () => this.syncRouter(), processes: this.supervisor,
    });
    this.attachments = new Attachments({
      records, ports, endpoints: this.endpoints, events, router, store: saver, syncRouter: () => this.syncRouter(),
    });
  }

  // ---------------------------------------------------------------- life cycle

  async start(log: (line: string) => void = () => undefined): Promise<void> {
    this.store.lock();
    try {
      this.records.state = this.store.load() ?? { networks: [], containers: [] };
      const { state } = this.records;
      fs.mkdirSync(this.logDir(), { recursive: true, mode: 0o700 });
      await this.host.start();
      await this.router.start();
      const up = this.router.uplinkSubnet();
      const clash = up && state.networks.find((n) => ipam.cidrOverlaps(n.subnet, up));
      if (clash) throw new ConflictError(`the uplink subnet ${up} overlaps network '${clash.name}' (${clash.subnet})`);
      for (const n of state.networks) await this.networks.attach(n, log);
      if (!state.networks.some((n) => n.default)) {
        const n = await this.networks.create({ name: this.opts.defaultNetwork, subnet: this.opts.defaultSubnet }, true);
        log(`created default network ${n.name} (${n.subnet})`);
      }
      await recoverContainers({ records: this.records, endpoints: this.endpoints, logDir: this.logDir() }, log);
      await this.trunks.attachAll(log);
      await this.impairs.restore(log);
      this.save();
      await this.syncRouter();
    } catch (e) {
      await this.router.stop().catch(() => undefined);
      await this.host.stop().catch(() => undefined);
      this.store.unlock();
      throw e;
    }
    // MAC table changes from the workers: drained (so the rings never fill) and announced.
    this.eventsTimer = setInterval(() => this.observer.pumpEvents(), 200);
    this.eventsTimer.unref();
    // Detached commands started before a restart are not our children: poll them.
    this.watchTimer = setInterval(() => void this.serial(() => this.supervisor.watchOrphans()), 2000);
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

  /** Run mutations one at a time, in order; a port a change removed takes its impairment with it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      try {
        return await fn();
      } finally {
        if (this.impairs.prune()) this.save();
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private save(): void {
    this.store.save(this.records.state);
  }

  private logDir(): string {
    return path.join(this.store.dir, 'containers');
  }

  /** Tell the router (DNS names, gateways, published ports) what the networks now hold. */
  private async syncRouter(): Promise<void> {
    await this.router.sync(routerView(this.records, this.ports));
  }

  info(): DaemonInfo {
    return {
      pid: process.pid, version: VERSION, socket: this.opts.socket, stateDir: this.store.dir,
      workers: this.opts.workers, busyPollUs: this.opts.busyPollUs ?? 0, defaultNetwork: this.records.defaultNetwork().name,
      netnsPath: `/proc/${process.pid}/ns/net`,
      uplink: this.router.uplinkInfo(),
    };
  }

  // ---------------------------------------------------------------- networks

  listNetworks(): NetworkInfo[] {
    return this.networks.list();
  }

  inspectNetwork(name: string): NetworkInfo {
    return this.networks.inspect(name);
  }

  createNetwork(spec: NetworkCreate): Promise<NetworkInfo> {
    return this.serial(async () => {
      const n = await this.networks.create(spec, false);
      this.save();
      await this.syncRouter();
      return this.networks.info(n);
    });
  }

  removeNetwork(name: string): Promise<void> {
    return this.serial(async () => {
      const id = await this.networks.remove(name);
      this.save();
      this.router.dropFlowsOfNet(id);
      await this.syncRouter();
    });
  }

  // ---------------------------------------------------------------- containers

  listContainers(): ContainerInfo[] {
    return this.containers.list();
  }

  inspectContainer(name: string): ContainerInfo {
    return this.containers.inspect(name);
  }

  createContainer(spec: ContainerCreate): Promise<ContainerInfo> {
    return this.serial(() => this.containers.create(spec));
  }

  connect(network: string, container: string, ip?: string): Promise<EndpointInfo> {
    return this.connectWith(network, container, { ip });
  }

  connectWith(network: string, container: string, opts: { ip?: string; aliases?: string[] }): Promise<EndpointInfo> {
    const ip = opts.ip;
    const aliases = validAliases(opts.aliases);
    return this.serial(() => this.containers.connect(network, container, ip, aliases));
  }

  disconnect(network: string, container: string): Promise<void> {
    return this.serial(() => this.containers.disconnect(network, container));
  }

  containerExited(name: string, code: number): Promise<void> {
    return this.serial(() => this.containers.exited(name, code));
  }

  removeContainer(name: string, force: boolean): Promise<void> {
    return this.serial(() => this.containers.remove(name, force));
  }

  // ---------------------------------------------------------------- attachments

  listAttachments(): AttachmentInfo[] {
    return this.attachments.list();
  }

  inspectAttachment(endpoint: string): AttachmentInfo {
    return this.attachments.inspect(endpoint);
  }

  createAttachment(spec: AttachmentCreate): Promise<{ attachment: AttachmentInfo; created: boolean }> {
    return this.serial(() => this.attachments.create(spec));
  }

  removeAttachment(endpoint: string): Promise<void> {
    return this.serial(() => this.attachments.remove(endpoint));
  }

  publishAttachment(endpoint: string, publish: PortMapping[]): Promise<AttachmentInfo> {
    return this.serial(() => this.attachments.publish(endpoint, publish));
  }

  renameSandbox(owner: AttachmentCreate['owner'], sandbox: string, name: string): Promise<void> {
    return this.serial(() => this.attachments.rename(owner, sandbox, name));
  }

  // ---------------------------------------------------------------- 802.1Q trunks

  listTrunks(): TrunkInfo[] {
    return this.trunks.list();
  }

  // VXLAN (docs/VXLAN.md)
  /** For the metrics (control/metrics.ts). */
  vxlanCounters(): { network: string; vni: number; remoteMacs: number; peers: { peer: string; rxPackets: number; rxBytes: number; txPackets: number; txBytes: number }[] }[] {
    const fdb = this.observer.fdb();
    return this.networks.list().filter((n) => n.vxlan !== undefined).map((n) => ({
      network: n.name, vni: n.vxlan?.vni ?? 0, peers: n.vxlan?.counters ?? [],
      remoteMacs: fdb.filter((e) => e.network === n.name && e.vtep !== undefined).length,
    }));
  }

  vxlanPeer(network: string, op: 'add' | 'rm', ip: string): Promise<NetworkInfo> {
    return this.serial(async () => {
      const n = await this.networks.peer(network, op, ip);
      this.save();
      return this.networks.info(n);
    });
  }

  fdbAdd(network: string, mac: string, vtep: string, ip?: string): Promise<FdbEntryInfo> {
    return this.serial(async () => {
      const n = this.networks.fdbAdd(network, mac, vtep, ip);
      this.save();
      const m = n.vxlan?.fdb?.[n.vxlan.fdb.length - 1].mac;
      const e = this.observer.fdb(network).find((x) => x.mac === m);
      if (!e) throw new ConflictError(`the FDB of '${network}' could not take ${mac} (full?)`);
      return e;
    });
  }

  fdbRemove(network: string, mac: string): Promise<void> {
    return this.serial(async () => {
      this.networks.fdbRemove(network, mac);
      this.save();
    });
  }

  addTrunk(spec: TrunkCreate): Promise<TrunkInfo> {
    return this.serial(() => this.trunks.add(spec));
  }

  removeTrunk(device: string): Promise<void> {
    return this.serial(() => this.trunks.remove(device));
  }

  // ---------------------------------------------------------------- link impairment

  impairSet(req: ImpairRequest): Promise<ImpairInfo> {
    return this.serial(() => this.impairs.set(req));
  }

  impairRemove(port: string): Promise<void> {
    return this.serial(() => this.impairs.remove(port));
  }

  impairList(): ImpairInfo[] {
    return this.impairs.list();
  }

  // ---------------------------------------------------------------- observation

  subscribeEvents(fn: (e: VswEvent) => void): () => void {
    return this.events.subscribe(fn);
  }

  fdb(network?: string): FdbEntryInfo[] {
    return this.observer.fdb(network);
  }

  stats(): PortStatsInfo[] {
    return this.observer.stats();
  }

  neigh(network?: string): NeighEntryInfo[] {
    return this.observer.neigh(network);
  }

  conntrack(): ConntrackEntryInfo[] {
    return this.observer.conntrack();
  }

  /** Frames captures and traces lost (rings full, or a client not reading), for the metrics. */
  captureLost(): number {
    return this.observer.captureLost();
  }

  /** For the metrics (control/metrics.ts). */
  l3Counters(): ReturnType<Router['counters']> {
    return this.observer.l3Counters();
  }

  /** A port id from a port name, a container name (its first network) or CONTAINER:NETWORK. */
  resolvePortId(spec: string): number {
    return this.observer.resolvePortId(spec);
  }

  startCapture(port: string, onFrame: (frame: Uint8Array, timeMs: number) => void,
    opts: { stage?: string; filter?: string; direction?: CaptureDirection } = {}): Promise<StreamSession & { port: string }> {
    return this.observer.startCapture(port, onFrame, opts);
  }

  startCaptureAll(onFrame: (frame: Uint8Array, timeMs: number, port: string, dir: 'in' | 'out') => void,
    opts: { filter?: string } = {}): Promise<StreamSession> {
    return this.observer.startCaptureAll(onFrame, opts);
  }

  startTrace(opts: { port?: string; network?: string; filter?: string; count?: number },
    onTrace: (r: TraceResult) => void): Promise<StreamSession> {
    return this.observer.startTrace(opts, onTrace);
  }

  traceDryRun(port: string, frames: string[]): TraceResult[] {
    return this.observer.traceDryRun(port, frames);
  }

  snapshot(): Snapshot {
    return this.observer.snapshot();
  }

  /** vsw inject: the capture's frames go to the worker that receives from the port (control/inject.ts). */
  inject(spec: InjectSpec, progress: (p: InjectProgress) => void, stopped: () => boolean): Promise<InjectSummary> {
    const id = this.resolvePortId(spec.port);
    const port = this.host.port(id);
    if (port === undefined || port.kind === 'vxlan' || port.kind === 'vtep') throw new InvalidArgumentError(`port ${spec.port}: frames can be injected on container, host, trunk and uplink ports only`);
    return runInject(spec, port.name, (frames, lens) => this.host.inject(id, frames, lens), progress, stopped);
  }
}
