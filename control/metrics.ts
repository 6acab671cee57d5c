// `vsw daemon --metrics ADDR`: the daemon's counters in the Prometheus text format
// (version 0.0.4), served over HTTP at GET /metrics inside the daemon's network namespace.
//
// The dataplane already counts everything (per-port counters, per-stage verdicts, FDB and
// per-worker counters, all in shared memory). Nothing here is on the hot path: prom-client
// runs only in the main thread, and only at scrape time, where custom collectors read the
// current values through the same accessors `vsw stats` uses. Workers never call it.
//
// prom-client is loaded lazily (by buildMetricsRegistry), so the CLI can import
// parseMetricsAddr without paying for it on every command.

import * as http from 'node:http';
import * as net from 'node:net';
import type * as Prom from 'prom-client';
import { DROP_REASONS } from '../dataplane/drops';
import type { FdbCounters } from '../dataplane/tables/fdb';
import type { NeighCounters } from '../dataplane/tables/neigh';
import type { ConntrackCounters } from '../dataplane/tables/conntrack';
import type { PortStatsInfo } from './types';
import { streamSkipped } from './api/stream';

/** What the metrics read from the dataplane host (workers/host.ts DataplaneHost). */
export interface MetricsHost {
  ports(): { id: number; kind: 'afpacket' | 'tap' | 'vxlan' | 'vtep' }[];
  fdbCounters(): FdbCounters;
  stageCounters(): { stage: string; ended: number }[];
  workerCounters(): { worker: number; ports: number; iterations: number; batches: number; frames: number; busyMs: number; spinMs: number }[];
}

/** What the metrics read from the engine (control/engine/index.ts VswEngine). */
export interface MetricsEngine {
  readonly host: MetricsHost;
  stats(): PortStatsInfo[];
  listNetworks(): unknown[];
  listContainers(): unknown[];
  /** The router's counters (absent in engines without one). */
  l3Counters?(): L3Counters;
  /** Frames captures and live traces lost (rings full, or a client not reading). */
  captureLost?(): number;
  /** VXLAN networks: per-peer counters and remote MACs (absent in engines without them). */
  vxlanCounters?(): VxlanCounters[];
}

/** One VXLAN network's overlay, as the metrics read it (docs/VXLAN.md). */
export interface VxlanCounters {
  network: string;
  vni: number;
  /** MACs the FDB holds behind remote VTEPs. */
  remoteMacs: number;
  peers: { peer: string; rxPackets: number; rxBytes: number; txPackets: number; txBytes: number }[];
}

/** The router's tables and the embedded DNS (control/router.ts). */
export interface L3Counters {
  neigh: NeighCounters;
  conntrack: ConntrackCounters;
  /** DNS queries by result (local, nxdomain, forwarded, servfail, formerr, ...). */
  dns: Record<string, number>;
  /** DNS queries the workers could not hand to the main thread (ring full). */
  puntLost: number;
  /** The DNS forwarder's UDP tries, by path: out of the uplink, or the host's own stack. */
  dnsUpstream?: Record<string, { sent: number; matched: number; unmatched: number; failed: number; refused: number }>;
}

/** One consistent reading of every value a scrape reports. */
interface Snapshot {
  ports: (PortStatsInfo & { kind: string })[];
  fdb: FdbCounters;
  stages: { stage: string; ended: number }[];
  workers: ReturnType<MetricsHost['workerCounters']>;
  networks: number;
  containers: number;
  l3: L3Counters | null;
  captureLost: number;
  vxlan: VxlanCounters[];
}

function takeSnapshot(source: MetricsEngine | (() => MetricsEngine)): Snapshot {
  const engine = typeof source === 'function' ? source() : source;
  const kinds = new Map(engine.host.ports().map((p) => [p.id, p.kind]));
  return {
    ports: engine.stats().map((p) => ({ ...p, kind: kinds.get(p.id) ?? '' })),
    fdb: engine.host.fdbCounters(),
    stages: engine.host.stageCounters(),
    workers: engine.host.workerCounters(),
    networks: engine.listNetworks().length,
    containers: engine.listContainers().length,
    l3: engine.l3Counters ? engine.l3Counters() : null,
    captureLost: engine.captureLost ? engine.captureLost() : 0,
    vxlan: engine.vxlanCounters ? engine.vxlanCounters() : [],
  };
}

export interface MetricsRegistry {
  /** A registry of its own (never prom-client's global default register). */
  registry: Prom.Registry;
  /** The exposition text: one snapshot of the engine, then every collector reads it. */
  scrape(): Promise<string>;
  /** The Content-Type of scrape()'s text: text/plain; version=0.0.4; charset=utf-8. */
  contentType: string;
}

export interface RegistryOptions {
  /** prom-client's default process/Node.js metrics (prefix vsw_); default true. */
  defaultMetrics?: boolean;
}

/**
 * Build a registry whose collectors read the engine's counters at scrape time. Counters are
 * reported as counters (`_total`), sizes as gauges. Series of ports, workers and stages are
 * rebuilt at each scrape, so a removed port's series disappear. `engine` may be a function
 * that returns it (called at each scrape), for a server that listens before it exists.
 */
export function buildMetricsRegistry(engine: MetricsEngine | (() => MetricsEngine), o: RegistryOptions = {}): MetricsRegistry {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const prom = require('prom-client') as typeof Prom;
  const registry = new prom.Registry();
  let current: Snapshot | undefined;
  const snap = (): Snapshot => current ?? takeSnapshot(engine);

  type Labels<L extends string> = Partial<Record<L, string | number>>;
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[],
    rows: (s: Snapshot) => [Labels<L>, number][]): void => {
    new prom.Counter<L>({
      name, help, labelNames, registers: [registry],
      collect(this: Prom.Counter<L>) {
        this.reset();
        for (const [labels, v] of rows(snap())) this.inc(labels, v);
      },
    });
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[],
    rows: (s: Snapshot) => [Labels<L>, number][]): void => {
    new prom.Gauge<L>({
      name, help, labelNames, registers: [registry],
      collect(this: Prom.Gauge<L>) {
        this.reset();
        for (const [labels, v] of rows(snap())) this.set(labels, v);
      },
    });
  };

  // --- per port
  const PORT = ['port', 'network', 'container', 'kind'] as const;
  const portLabels = (p: Snapshot['ports'][number]): Labels<(typeof PORT)[number]> => ({
    port: p.name, network: p.network, container: p.container ?? '', kind: p.kind,
  });
  const perPort = (name: string, help: string, field: 'rxPackets' | 'rxBytes' | 'txPackets' | 'txBytes'): void =>
    counter(name, help, PORT, (s) => s.ports.map((p) => [portLabels(p), p[field]]));
  perPort('vsw_port_rx_packets_total', 'Frames received on the port.', 'rxPackets');
  perPort('vsw_port_rx_bytes_total', 'Bytes received on the port.', 'rxBytes');
  perPort('vsw_port_tx_packets_total', 'Frames sent on the port.', 'txPackets');
  perPort('vsw_port_tx_bytes_total', 'Bytes sent on the port.', 'txBytes');
  counter('vsw_port_drops_total', 'Frames dropped, by the port they arrived on (or were to leave by) and reason.',
    [...PORT, 'reason'] as const,
    (s) => s.ports.flatMap((p) => DROP_REASONS.map((reason) => [{ ...portLabels(p), reason }, p.drops[reason] ?? 0] as [Labels<(typeof PORT)[number] | 'reason'>, number])));

  // --- pipeline stages
  counter('vsw_stage_ended_total', 'Frames each pipeline stage gave a verdict to.', ['stage'] as const,
    (s) => s.stages.map((x) => [{ stage: x.stage }, x.ended]));

  // --- FDB
  gauge('vsw_fdb_entries', 'MAC table entries.', [], (s) => [[{}, s.fdb.entries]]);
  counter('vsw_fdb_learned_total', 'MAC addresses learned (new entries).', [], (s) => [[{}, s.fdb.learned]]);
  counter('vsw_fdb_moved_total', 'MAC addresses seen on another port than their entry said.', [], (s) => [[{}, s.fdb.moved]]);
  counter('vsw_fdb_evicted_total', 'Entries evicted to make room.', [], (s) => [[{}, s.fdb.evicted]]);
  counter('vsw_fdb_aged_total', 'Entries forgotten after the aging time.', [], (s) => [[{}, s.fdb.aged]]);
  counter('vsw_fdb_learn_failed_total', 'MAC addresses not learned (table or per-port limit full).', [], (s) => [[{}, s.fdb.failed]]);

  // --- workers
  const W = ['worker'] as const;
  counter('vsw_worker_busy_seconds_total', 'Time the worker spent processing frames.', W,
    (s) => s.workers.map((w) => [{ worker: w.worker }, w.busyMs / 1000]));
  counter('vsw_worker_busy_poll_seconds_total', 'Time the worker spent busy-polling for frames (vsw daemon --busy-poll).', W,
    (s) => s.workers.map((w) => [{ worker: w.worker }, w.spinMs / 1000]));
  counter('vsw_worker_frames_total', 'Frames the worker received and processed.', W,
    (s) => s.workers.map((w) => [{ worker: w.worker }, w.frames]));
  counter('vsw_worker_batches_total', 'Receive batches the worker processed.', W,
    (s) => s.workers.map((w) => [{ worker: w.worker }, w.batches]));
  counter('vsw_worker_poll_iterations_total', 'Iterations of the worker\'s poll loop.', W,
    (s) => s.workers.map((w) => [{ worker: w.worker }, w.iterations]));
  gauge('vsw_worker_ports', 'Ports the worker receives from.', W,
    (s) => s.workers.map((w) => [{ worker: w.worker }, w.ports]));

  // --- the router: neighbours, connections, DNS (no series without a router)
  const l3 = <T>(s: Snapshot, f: (x: L3Counters) => [T, number][]): [T, number][] => (s.l3 ? f(s.l3) : []);
  gauge('vsw_neigh_entries', 'Gateway neighbour (ARP) table entries.', [], (s) => l3(s, (x) => [[{}, x.neigh.entries]]));
  counter('vsw_neigh_learned_total', 'Neighbours learned (a first MAC for an address).', [], (s) => l3(s, (x) => [[{}, x.neigh.learned]]));
  counter('vsw_neigh_changed_total', 'Neighbours confirmed with a different MAC.', [], (s) => l3(s, (x) => [[{}, x.neigh.changed]]));
  counter('vsw_neigh_solicited_total', 'ARP requests the gateway sent.', [], (s) => l3(s, (x) => [[{}, x.neigh.solicited]]));
  counter('vsw_neigh_unresolved_total', 'Addresses that did not answer ARP.', [], (s) => l3(s, (x) => [[{}, x.neigh.unresolved]]));
  counter('vsw_neigh_refused_total', 'Neighbours not learned: a multicast, broadcast or all-zero MAC, a network or broadcast address, the switch\'s own.', [], (s) => l3(s, (x) => [[{}, x.neigh.refused ?? 0]]));
  gauge('vsw_conntrack_entries', 'Tracked connections (NAT).', [], (s) => l3(s, (x) => [[{}, x.conntrack.entries]]));
  counter('vsw_conntrack_created_total', 'Connections created.', [], (s) => l3(s, (x) => [[{}, x.conntrack.created]]));
  counter('vsw_conntrack_expired_total', 'Connections that timed out.', [], (s) => l3(s, (x) => [[{}, x.conntrack.expired]]));
  counter('vsw_conntrack_removed_total', 'Connections removed (published port or network gone).', [], (s) => l3(s, (x) => [[{}, x.conntrack.removed]]));
  counter('vsw_conntrack_refused_total', 'New connections refused, by reason.', ['reason'] as const, (s) => l3(s, (x) => [
    [{ reason: 'table-full' }, x.conntrack.full], [{ reason: 'no-port' }, x.conntrack.noPort],
    [{ reason: 'source-limit' }, x.conntrack.sourceLimit], [{ reason: 'port-limit' }, x.conntrack.portLimit ?? 0],
  ]));
  counter('vsw_dns_queries_total', 'DNS queries to the gateways, by result.', ['result'] as const,
    (s) => l3(s, (x) => Object.entries(x.dns).map(([result, v]) => [{ result }, v])));
  counter('vsw_dns_punt_lost_total', 'DNS queries lost on the way to the DNS server (queue full).', [], (s) => l3(s, (x) => [[{}, x.puntLost]]));
  counter('vsw_dns_upstream_total', 'The DNS forwarder\'s UDP traffic upstream, by path (uplink, host) and event: sent (a query), matched (its answer), unmatched (a datagram with a wrong port, source, ID or question: dropped), failed (not sent: no free port, next hop unresolved, a send error), refused (ended by an ICMP port unreachable).',
    ['path', 'event'] as const, (s) => l3(s, (x) => Object.entries(x.dnsUpstream ?? {}).flatMap(([path, c]) =>
      (['sent', 'matched', 'unmatched', 'failed', 'refused'] as const).map((event): [{ path: string; event: string }, number] => [{ path, event }, c[event]]))));

  counter('vsw_capture_lost_total', 'Frames captures and live traces lost: the rings were full, or the client did not read fast enough.',
    [], (s) => [[{}, s.captureLost]]);
  counter('vsw_stream_skipped_total', 'Records the API skipped because a stream client (events, trace, capture) did not read fast enough.',
    ['stream'] as const, () => Object.entries(streamSkipped()).map(([stream, v]) => [{ stream }, v]));

  // --- VXLAN overlays (docs/VXLAN.md): per peer VTEP ('other': VTEPs not configured as peers)
  const VX = ['network', 'vni', 'peer'] as const;
  const perPeer = (name: string, help: string, field: 'rxPackets' | 'rxBytes' | 'txPackets' | 'txBytes'): void =>
    counter(name, help, VX, (s) => s.vxlan.flatMap((v) => v.peers.map((p) => [{ network: v.network, vni: v.vni, peer: p.peer }, p[field]] as [Labels<(typeof VX)[number]>, number])));
  perPeer('vsw_vxlan_rx_packets_total', 'Inner frames decapsulated from the peer VTEP.', 'rxPackets');
  perPeer('vsw_vxlan_rx_bytes_total', 'Inner frame bytes decapsulated from the peer VTEP.', 'rxBytes');
  perPeer('vsw_vxlan_tx_packets_total', 'Inner frames encapsulated to the peer VTEP (each replica counts).', 'txPackets');
  perPeer('vsw_vxlan_tx_bytes_total', 'Inner frame bytes encapsulated to the peer VTEP.', 'txBytes');
  gauge('vsw_vxlan_peers', 'Configured peer VTEPs of a VXLAN network.', ['network', 'vni'] as const,
    (s) => s.vxlan.map((v) => [{ network: v.network, vni: v.vni }, v.peers.filter((p) => p.peer !== 'other').length]));
  gauge('vsw_vxlan_remote_macs', 'MAC table entries behind remote VTEPs.', ['network', 'vni'] as const,
    (s) => s.vxlan.map((v) => [{ network: v.network, vni: v.vni }, v.remoteMacs]));

  // --- control plane
  gauge('vsw_networks', 'Networks.', [], (s) => [[{}, s.networks]]);
  gauge('vsw_containers', 'Containers (any status).', [], (s) => [[{}, s.containers]]);

  if (o.defaultMetrics ?? true) prom.collectDefaultMetrics({ register: registry, prefix: 'vsw_' });

  return {
    registry,
    contentType: registry.contentType,
    async scrape(): Promise<string> {
      current = takeSnapshot(engine);
      try {
        return await registry.metrics();
      } finally {
        current = undefined;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------
// The listen address and the HTTP server

export interface MetricsAddr {
  host: string;
  port: number;
  /** How to print it: HOST:PORT, [V6]:PORT. */
  text: string;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Parse `HOST:PORT` or `:PORT` (all IPv4 addresses, 0.0.0.0). HOST is an IPv4 address, a
 * bracketed IPv6 address ([::1]) or a host name. Throws an Error with a message for the user.
 */
export function parseMetricsAddr(s: string): MetricsAddr {
  const m = /^(.*):([^:\]]*)$/.exec(s);
  if (!m) throw new Error(`'${s}' is not HOST:PORT or :PORT (e.g. 127.0.0.1:9109 or :9109)`);
  let host = m[1];
  const portText = m[2];
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new Error(`'${s}': the port must be a number from 1 to 65535 (HOST:PORT or :PORT)`);
  }
  const port = Number(portText);
  if (host === '') host = '0.0.0.0';
  const v6 = /^\[([0-9A-Fa-f:.]+)\]$/.exec(host);
  if (v6) {
    if (!net.isIPv6(v6[1])) throw new Error(`'${s}': '${v6[1]}' is not an IPv6 address`);
    return { host: v6[1], port, text: `[${v6[1]}]:${port}` };
  }
  if (host.includes(':')) throw new Error(`'${s}': write an IPv6 address in brackets, e.g. [::1]:${port}`);
  if (/^[\d.]+$/.test(host) ? !IPV4.test(host) : !HOSTNAME.test(host)) {
    throw new Error(`'${s}': '${host}' is not an IPv4 address, [IPv6] address or host name`);
  }
  return { host, port, text: `${host}:${port}` };
}

export interface MetricsServer {
  /** The address it listens on (the actual port when 0 was asked for in tests). */
  readonly address: { host: string; port: number };
  /** http://HOST:PORT/metrics */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Listen on ADDR and serve GET/HEAD /metrics (405 for other methods, 404 for other paths).
 * Rejects with a clear message when the address cannot be used (in use, not local).
 */
export async function startMetricsServer(addr: string | MetricsAddr, metrics: MetricsRegistry): Promise<MetricsServer> {
  const a = typeof addr === 'string' ? parseMetricsAddr(addr) : addr;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' });
      res.end('method not allowed\n');
      return;
    }
    metrics.scrape().then((text) => {
      res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    }, (e: Error) => {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`collecting the metrics failed: ${e.message}\n`);
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      server.close();
      const why = e.code === 'EADDRINUSE' ? 'the address is already in use (another vsw daemon or program listens on it)'
        : e.code === 'EADDRNOTAVAIL' ? 'that address is not one of this network namespace\'s'
          : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' ? `cannot resolve '${a.host}'`
            : e.code === 'EACCES' ? 'permission denied' : e.message;
      reject(new Error(`--metrics ${a.text}: cannot listen: ${why}`));
    };
    server.once('error', onError);
    server.listen(a.port, a.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : a.port;
  return {
    address: { host: a.host, port },
    url: `http://${net.isIPv6(a.host) ? `[${a.host}]` : a.host}:${port}/metrics`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
