// The JSON shapes of the daemon's API, and the Engine interface that control/api.ts serves.
// Everything the CLI prints comes from these shapes; keep them stable (they are the API).

import type { TraceResult } from '../dataplane/trace';
import type { VswEvent } from './events';
export type { TraceResult, VswEvent };

export interface DaemonInfo {
  pid: number;
  version: string;
  socket: string;
  stateDir: string;
  workers: number;
  defaultNetwork: string;
  /** Path of the daemon's network namespace (for `--network host`): /proc/PID/ns/net. */
  netnsPath: string;
}

export interface NetworkCreate {
  name: string;
  subnet?: string;   // CIDR; chosen from the free pool when absent
  gateway?: string;  // default: first usable address
  ipRange?: string;  // CIDR inside subnet that containers are allocated from
  mtu?: number;      // default 1500
}

export interface EndpointInfo {
  container: string;
  network: string;
  ip: string;          // dotted quad, no prefix
  prefixLen: number;
  mac: string;         // aa:bb:cc:dd:ee:ff
  hostIf: string;      // veth host end (the switch port)
  portId: number;      // dataplane port id, -1 when not attached
}

export interface PortInfo {
  id: number;
  name: string;        // interface name
  kind: 'afpacket' | 'tap';
  role: 'endpoint' | 'host';
  container?: string;
  vnet: boolean;
  worker: number;
}

export interface NetworkInfo {
  name: string;
  id: number;
  subnet: string;
  gateway: string;
  ipRange: string;
  mtu: number;
  default: boolean;
  created: string;     // ISO time
  hostPort: { name: string; ip: string; mac: string } | null;
  ports: PortInfo[];
  endpoints: EndpointInfo[];
}

export type ContainerMode = 'bridge' | 'none' | 'host' | 'container';

export interface ContainerCreate {
  name: string;
  /** A network name, or 'none', 'host', 'container:OTHER'. Default: the default network. */
  network?: string;
  ip?: string;
  cmd?: string[];
  detach?: boolean;
  rm?: boolean;
}

export interface ContainerInfo {
  name: string;
  id: string;          // 12 hex chars
  mode: ContainerMode;
  /** Named namespace ('' for host mode): `ip netns exec NETNS ...` enters it. */
  netns: string;
  /** For mode 'container': whose namespace is shared. */
  sharedWith?: string;
  networks: EndpointInfo[];
  cmd: string[];
  detach: boolean;
  rm: boolean;
  status: 'created' | 'running' | 'exited';
  pid?: number;
  exitCode?: number;
  created: string;
}

export interface FdbEntryInfo {
  network: string;
  mac: string;
  vlan: number;
  port: string;        // port name (interface)
  portId: number;
  container?: string;
  ageSeconds: number;
}

export interface PortStatsInfo {
  id: number;
  name: string;
  network: string;
  container?: string;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  drops: Record<string, number>;   // reason -> count (only non-zero reasons)
}

/** What the API serves. Implemented by control/engine.ts; faked in API unit tests. */
export interface Engine {
  info(): DaemonInfo;
  listNetworks(): NetworkInfo[];
  createNetwork(spec: NetworkCreate): Promise<NetworkInfo>;
  inspectNetwork(name: string): NetworkInfo;
  removeNetwork(name: string): Promise<void>;
  connect(network: string, container: string, ip?: string): Promise<EndpointInfo>;
  disconnect(network: string, container: string): Promise<void>;
  listContainers(): ContainerInfo[];
  createContainer(spec: ContainerCreate): Promise<ContainerInfo>;
  inspectContainer(name: string): ContainerInfo;
  containerExited(name: string, code: number): Promise<void>;
  removeContainer(name: string, force: boolean): Promise<void>;
  fdb(network?: string): FdbEntryInfo[];
  stats(): PortStatsInfo[];
  /** Run frames (hex, Ethernet from the destination MAC on) through the pipeline as if
   *  received on `port`, without side effects. */
  traceDryRun(port: string, frames: string[]): TraceResult[];
  /** Hand every frame of `port` (both directions, Ethernet) to onFrame until stop(). */
  startCapture(port: string, onFrame: (frame: Uint8Array, timeMs: number) => void): Promise<{ port: string; stop(): Promise<void> }>;
  /** Be told of every event from now on; returns the unsubscribe function. */
  subscribeEvents(fn: (e: VswEvent) => void): () => void;
}

/** Options of `vsw daemon` (parsed by control/cli.ts, run by control/daemon.ts). */
export interface DaemonOptions {
  stateDir: string;          // default /var/lib/vsw
  socket: string;            // default /run/vsw/vsw.sock (or $VSW_SOCKET)
  workers: number;           // dataplane worker threads, default 2 (1..16)
  defaultSubnet?: string;    // subnet of the default network when it is first created
  defaultNetwork: string;    // name of the default network, default 'bridge'
  fdbAgingSeconds: number;   // MAC aging time, default 300
  fdbMax: number;            // total FDB entries, default 16384
  fdbMaxPerPort: number;     // per-port FDB entries, default 4096
  metrics?: string;          // HOST:PORT or :PORT: serve GET /metrics (Prometheus text) there
}
