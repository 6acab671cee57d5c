// Looking at the switch without changing it: the MAC tables, per-port counters, the
// router's tables, MAC and connection events, captures, live traces and dry runs. Every
// port and network is named here from the numbers the workers know.

import { ipText } from '../../dataplane/vxlan/header';
import type {
  CaptureDirection, ConntrackEntryInfo, FdbEntryInfo, NeighEntryInfo, PortStatsInfo, StreamSession, TraceResult,
} from '../types';
import type { CaptureHub } from '../capture';
import { emitConntrack, type EventBus } from '../events';
import { InvalidArgumentError } from '../errors';
import type { Router } from '../router';
import { dryRun, parseHexFrame, portLabel, resolvePort, type DryRunTables, type PortRef } from '../trace';
import type { DataplaneHost } from '../../workers/host';
import type { TapNames } from '../../workers/taps';
import { DIR_RX, DIR_TX } from '../../workers/capture-ring';
import type { TraceNames } from '../../dataplane/trace';
import { UPLINK_NET } from '../../dataplane/tables/neigh';
import { STAGE_CHOICES, stageIndex } from '../../dataplane/stages/names';
import type { Records } from './records';
import { portRefs, type PortBook } from './ports';
import { takeSnapshot, type Snapshot } from '../snapshot';
import { directions } from './impair';

/** What observation reads from the dataplane host. */
export type ObservedHost = DryRunTables & Pick<DataplaneHost, 'ports' | 'port' | 'portCounters' | 'fdbEntries' | 'drainEvents'>;

export interface ObserveDeps {
  records: Records;
  ports: PortBook;
  host: ObservedHost;
  captures: Pick<CaptureHub, 'openCapture' | 'openTrace' | 'readerSkipped' | 'lostTotal'>;
  router: Pick<Router, 'neigh' | 'conntrack' | 'counters'>;
  events: Pick<EventBus, 'listening' | 'emitFdb' | 'emit'>;
}

export class Observer {
  constructor(private readonly d: ObserveDeps) {}

  /** Every port of the switch, named (the uplink included). */
  private refs(): PortRef[] {
    return portRefs(this.d.host.ports(), this.d.ports.places(), UPLINK_NET);
  }

  /** MAC table changes from the workers: drained (so the rings never fill) and announced. */
  pumpEvents(): void {
    const { fdb: evs, ct } = this.d.host.drainEvents();
    if ((evs.length === 0 && ct.length === 0) || !this.d.events.listening) return;
    const nets = this.d.records.netNames();
    emitConntrack(this.d.events, ct, (id) => nets.get(id) ?? `#${id}`);
    const ports = this.d.ports.places();
    this.d.events.emitFdb(evs, {
      network: (id) => nets.get(id) ?? `#${id}`,
      port: (id) => { const p = ports.get(id); return p ? { port: p.port, container: p.container } : { port: `#${id}` }; },
    });
  }

  fdb(network?: string): FdbEntryInfo[] {
    const nets = this.d.records.netNames();
    if (network !== undefined) this.d.records.network(network);
    const names = this.d.ports.places();
    const now = this.d.host.now();
    return this.d.host.fdbEntries()
      .filter((e) => network === undefined || nets.get(e.net) === network)
      .map((e) => ({
        network: nets.get(e.net) ?? `#${e.net}`, mac: e.mac, vlan: e.vlan,
        port: names.get(e.port)?.port ?? `#${e.port}`, portId: e.port, container: names.get(e.port)?.container,
        ageSeconds: e.static ? 0 : Math.max(0, now - e.lastSeen),
        ...(e.vtep ? { vtep: ipText(e.vtep) } : {}),
        ...(e.static ? { static: true } : {}),
      }))
      .sort((a, b) => a.network.localeCompare(b.network) || a.port.localeCompare(b.port) || a.mac.localeCompare(b.mac));
  }

  stats(): PortStatsInfo[] {
    return this.refs().map((r) => ({ ...r, ...this.d.host.portCounters(r.id) })).sort((a, b) => a.id - b.id);
  }

  neigh(network?: string): NeighEntryInfo[] {
    if (network !== undefined && network !== 'uplink') this.d.records.network(network);
    return this.d.router.neigh(this.d.records.netNames(), network);
  }

  conntrack(): ConntrackEntryInfo[] {
    return this.d.router.conntrack(this.d.records.netNames());
  }

  /** Frames captures and traces lost (rings full, or a client not reading), for the metrics. */
  captureLost(): number {
    return this.d.captures.lostTotal();
  }

  /** For the metrics (control/metrics.ts). */
  l3Counters(): ReturnType<Router['counters']> {
    return this.d.router.counters();
  }

  /** A port id from a port name, a container name (its first network) or CONTAINER:NETWORK. */
  resolvePortId(spec: string): number {
    const { host, ports, records } = this.d;
    return resolvePort(spec, {
      byName: (name) => host.ports().find((p) => p.name === name)?.id,
      endpoint: (container, network) => ports.endpoint(network, container)?.id,
    }, (c) => records.state.containers.find((x) => x.name === c)?.endpoints[0]?.network);
  }

  async startCapture(port: string, onFrame: (frame: Uint8Array, timeMs: number) => void,
    opts: { stage?: string; filter?: string; direction?: CaptureDirection } = {}): Promise<StreamSession & { port: string }> {
    const id = this.resolvePortId(port);
    const stage = opts.stage === undefined || opts.stage === '' ? -1 : stageIndex(opts.stage);
    if (opts.stage && stage < 0) throw new InvalidArgumentError(`no stage '${opts.stage}': one of ${STAGE_CHOICES.join(', ')}`);
    const dir = opts.direction ?? 'both';
    if (dir !== 'both' && stage >= 0) throw new InvalidArgumentError('direction goes with a capture on the wire (a --stage capture sees received frames only)');
    const want = dir === 'in' ? DIR_RX : dir === 'out' ? DIR_TX : -1;
    const session = await this.d.captures.openCapture(id, { stage, filter: opts.filter ?? '' },
      (frame, timeMs, _port, d) => { if (want < 0 || d === want) onFrame(frame, timeMs); });
    return {
      port: this.d.host.port(id)?.name ?? port, stop: () => session.stop(), lost: () => session.lost(),
      skipped: (n) => this.d.captures.readerSkipped(n),
    };
  }

  /** Every port's frames on the wire, each with its port's name and direction (capture --all-ports). */
  async startCaptureAll(onFrame: (frame: Uint8Array, timeMs: number, port: string, dir: 'in' | 'out') => void,
    opts: { filter?: string } = {}): Promise<StreamSession> {
    const session = await this.d.captures.openCapture(-1, { stage: -1, filter: opts.filter ?? '' }, (frame, timeMs, port, d) => {
      const name = this.d.host.port(port)?.name ?? `#${port}`;
      onFrame(frame, timeMs, name, d === DIR_TX ? 'out' : 'in');
    });
    return { stop: () => session.stop(), lost: () => session.lost(), skipped: (n) => this.d.captures.readerSkipped(n) };
  }

  /** Live trace: every frame that matches (port or network, and filter), through every stage. */
  async startTrace(opts: { port?: string; network?: string; filter?: string; count?: number },
    onTrace: (r: TraceResult) => void): Promise<StreamSession> {
    const port = opts.port ? this.resolvePortId(opts.port) : -1;
    const net = opts.network ? (opts.network === 'uplink' ? UPLINK_NET : this.d.records.network(opts.network).id) : -1;
    const s = await this.d.captures.openTrace({ port, net, filter: opts.filter ?? '', count: opts.count ?? 0 }, onTrace);
    return { stop: () => s.stop(), lost: () => s.lost(), skipped: (n) => this.d.captures.readerSkipped(n) };
  }

  /** Port labels and network names for live traces (the workers know only numbers). */
  tapNames(): TapNames {
    return {
      ports: this.refs().map((r): [number, string] => [r.id, portLabel(r)]),
      nets: this.d.records.state.networks.map((n): [number, string] => [n.id, n.name]),
    };
  }

  /** The same names for a dry run, which runs here rather than in a worker. */
  private traceNames(): TraceNames {
    const label = new Map(this.refs().map((r) => [r.id, portLabel(r)]));
    const netName = this.d.records.netNames();
    netName.set(UPLINK_NET, 'uplink');
    return {
      port: (id) => label.get(id) ?? `#${id}`,
      network: (id) => netName.get(id) ?? `#${id}`,
    };
  }

  /** What decides forwarding, for vsw replay (control/snapshot.ts). */
  snapshot(): Snapshot {
    const { host, records } = this.d;
    return takeSnapshot({
      host, refs: this.refs(),
      networks: records.state.networks.map((n) => ({ id: n.id, name: n.name })),
      containers: records.state.containers.map((c) => ({ name: c.name, networks: c.endpoints.map((e) => e.network) })),
      impairments: (records.state.impairs ?? []).flatMap((r) => {
        const h = host.ports().find((p) => p.name === r.port);
        return h === undefined ? [] : [{ id: h.id, name: r.port, ...directions(r) }];
      }).sort((a, b) => a.id - b.id),
    });
  }

  traceDryRun(port: string, frames: string[]): TraceResult[] {
    if (frames.length === 0) throw new InvalidArgumentError('no frame to trace');
    const parsed = frames.map(parseHexFrame);
    const inPort = this.resolvePortId(port);
    return dryRun(this.d.host, inPort, this.traceNames(), parsed);
  }
}
