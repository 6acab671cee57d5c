// The JSON shapes of the daemon's API, and the Engine interface that control/api/ serves.
// Everything the CLI prints comes from these shapes; keep them stable (they are the API).

import type { TraceResult } from '../dataplane/trace';
import type { VswEvent } from './events';
import type { InjectProgress, InjectSpec, InjectSummary } from './inject';
import type { Snapshot } from './snapshot';
import type { ImpairSpec } from '../dataplane/impair/spec';
import type { ImpairRequest } from './impair';
export type { TraceResult, VswEvent, InjectProgress, InjectSpec, InjectSummary, Snapshot };

/** Trailer of capture and trace streams: records lost (rings full, or the client too slow). */
export const LOST_TRAILER = 'x-vsw-lost';
/** Header of a capture stream: the port's interface name. */
export const PORT_HEADER = 'x-vsw-port';

export interface DaemonInfo {
  pid: number;
  version: string;
  socket: string;
  stateDir: string;
  workers: number;
  /** --busy-poll, microseconds (0: off). */
  busyPollUs: number;
  defaultNetwork: string;
  /** Path of the daemon's network namespace (for `--network host`): /proc/PID/ns/net. */
  netnsPath: string;
  /** The outside port, when the daemon has one (--uplink). */
  uplink: UplinkInfo | null;
}

export interface NetworkCreate {
  name: string;
  subnet?: string;   // CIDR; chosen from the free pool when absent
  gateway?: string;  // default: first usable address
  ipRange?: string;  // CIDR inside subnet that containers are allocated from
  mtu?: number;      // default 1500
  /** No route out, no published ports (Docker's --internal). */
  internal?: boolean;
  /** false: containers of the network cannot reach each other, only the gateway. Default true. */
  icc?: boolean;
  /** Order of the addresses in a DNS answer for a name with several: strict rotation
   *  (default), a random shuffle (Docker's), or fixed (registration order). */
  dnsOrder?: DnsOrder;
  /** 802.1Q VLAN id (1-4094): the network's ports are access ports of that VLAN, and trunks
   *  carry it tagged. Absent: an untagged network (VLAN 0). */
  vlan?: number;
  /** Port security (docs/L3.md): container ports may send only as their endpoint (MAC,
   *  IPv4 address, ARP sender). Default true; false allows any source, for experiments. */
  portSecurity?: boolean;
  /** A VXLAN overlay segment that spans hosts (docs/VXLAN.md). */
  vxlan?: VxlanCreate;
}

/** `vsw network create --vxlan VNI [--vxlan-port P] [--underlay-ip IP] [--peer IP]... [--arp-proxy]`. */
export interface VxlanCreate {
  /** 1..16777215. */
  vni: number;
  /** UDP port, default 4789. */
  port?: number;
  /** This host's underlay address (default: the source address toward the first peer, else the first global address). */
  underlayIp?: string;
  peers?: string[];
  /** Answer ARP for known remote stations on this host instead of flooding it to the peers (default false). */
  arpProxy?: boolean;
}

/** A network's VXLAN segment as the API shows it. */
export interface VxlanInfo {
  vni: number;
  port: number;
  localIp: string;
  peers: string[];
  /** The overlay port (vsw stats, capture --port) and the VTEP socket's port. */
  overlayPort: string;
  vtepPort: string;
  /** Per-VTEP counters of inner frames ('other': VTEPs that are not configured peers). */
  counters: { peer: string; rxPackets: number; rxBytes: number; txPackets: number; txBytes: number }[];
  /** --arp-proxy (docs/VXLAN.md "ARP proxy"). */
  arpProxy: boolean;
  /** With arpProxy: ARP requests answered locally, flooded (remote address not known), left to a local owner; fresh entries. */
  arp?: { answered: number; flooded: number; local: number; entries: number };
}

export type DnsOrder = 'rotate' | 'random' | 'fixed';
export const DNS_ORDERS: readonly DnsOrder[] = ['rotate', 'random', 'fixed'];

/** A published port: `-p [IP:]HOSTPORT:PORT[/PROTO]`. */
export interface PortMapping {
  /** Switch address it listens on; '0.0.0.0' = every switch address (uplink and gateways). */
  hostIp: string;
  hostPort: number;
  containerPort: number;
  proto: 'tcp' | 'udp';
}

export interface EndpointInfo {
  container: string;
  network: string;
  ip: string;          // dotted quad, no prefix
  prefixLen: number;
  mac: string;         // aa:bb:cc:dd:ee:ff
  hostIf: string;      // veth host end (the switch port)
  portId: number;      // dataplane port id, -1 when not attached
  /** DNS names of the container in this network besides its own name (--alias). */
  aliases: string[];
}

export interface PortInfo {
  id: number;
  name: string;        // interface name
  kind: 'afpacket' | 'tap' | 'vxlan' | 'vtep';
  role: 'endpoint' | 'host' | 'trunk' | 'overlay';
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
  internal: boolean;
  icc: boolean;
  dnsOrder: DnsOrder;
  /** 802.1Q VLAN id; 0 = an untagged network. */
  vlan: number;
  /** Port security on the network's container ports (spoofed sources dropped). */
  portSecurity: boolean;
  /** The switch's router in this network: answers ARP/ICMP/DNS on the gateway address. */
  gatewayMac: string;
  hostPort: { name: string; ip: string; mac: string } | null;
  ports: PortInfo[];
  endpoints: EndpointInfo[];
  /** Present on a VXLAN network. */
  vxlan?: VxlanInfo;
}

/** docker, cni: a sandbox another runtime made, on vsw networks through attachments. */
export type ContainerMode = 'bridge' | 'none' | 'host' | 'container' | AttachmentOwner;

/** The runtimes that attach their sandboxes to vsw networks (POST /attachments). */
export type AttachmentOwner = 'docker' | 'cni';
export const ATTACHMENT_OWNERS: readonly AttachmentOwner[] = ['docker', 'cni'];

/**
 * POST /attachments: an endpoint on a vsw network for a sandbox vsw did not make (a Docker
 * or CNI container). docs/DESIGN.md "Attachments" says what each field does.
 */
export interface AttachmentCreate {
  owner: AttachmentOwner;
  /** Unique key: Docker's EndpointID; CNI's `${containerId}/${ifname}`. */
  endpoint: string;
  /** Groups the endpoints of one container: Docker's SandboxKey, CNI's container id. */
  sandbox: string;
  /** The container's name in vsw ps, fdb, stats, trace, capture, events. */
  name: string;
  network: string;
  /** Absent: allocated by vsw's IPAM. */
  ip?: string;
  /** Absent: vsw's MAC for the address. */
  mac?: string;
  /** The inner end's name (absent: vsw picks one, `vsi` + 8 hex chars). */
  ifname?: string;
  /** Absolute path of the sandbox's network namespace: the inner end is moved there and
   *  configured. Absent: it stays in the daemon's namespace, down and unconfigured. */
  netns?: string;
  /** With netns: a default route via the gateway (default true). */
  defaultRoute?: boolean;
  /** Default: the network's MTU. */
  mtu?: number;
  aliases?: string[];
  publish?: PortMapping[];
}

export interface AttachmentInfo {
  owner: AttachmentOwner;
  endpoint: string;
  sandbox: string;
  name: string;
  network: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  mtu: number;
  /** The veth end that is the switch port (in the daemon's namespace). */
  hostIf: string;
  /** The other end: in `netns` when given, else in the daemon's namespace for the runtime to move. */
  innerIf: string;
  netns?: string;
  aliases: string[];
  publish: PortMapping[];
}

export interface ContainerCreate {
  name: string;
  /** A network name, or 'none', 'host', 'container:OTHER'. Default: the default network. */
  network?: string;
  ip?: string;
  cmd?: string[];
  detach?: boolean;
  rm?: boolean;
  /** -p: published ports (only on a network that is not internal). */
  publish?: PortMapping[];
  /** --alias: extra DNS names in the container's network. */
  aliases?: string[];
  /** --link NAME[:ALIAS]: written to the container's /etc/hosts as `IP NAME ALIAS`. */
  links?: { name: string; alias?: string }[];
}

export interface ContainerInfo {
  name: string;
  id: string;          // 12 hex chars
  mode: ContainerMode;
  /** Named namespace ('' for host mode): `ip netns exec NETNS ...` enters it. */
  netns: string;
  /** For mode 'container': whose namespace is shared. */
  sharedWith?: string;
  /** For modes docker and cni: the runtime's sandbox (AttachmentCreate.sandbox). */
  sandbox?: string;
  networks: EndpointInfo[];
  cmd: string[];
  detach: boolean;
  rm: boolean;
  status: 'created' | 'running' | 'exited';
  pid?: number;
  exitCode?: number;
  created: string;
  /** Published ports, as given (an empty list when none). */
  ports: PortMapping[];
  links: { name: string; alias?: string }[];
}

/** One entry of the gateway's neighbour (ARP) table. */
export interface NeighEntryInfo {
  network: string;           // a network name, or 'uplink'
  ip: string;
  mac: string;               // '' while incomplete
  state: 'reachable' | 'stale' | 'incomplete' | 'failed';
  ageSeconds: number;        // since last confirmed
}

/** One tracked connection (NAT). */
export interface ConntrackEntryInfo {
  proto: 'tcp' | 'udp' | 'icmp';
  /** TCP state (SYN_SENT, ESTABLISHED, ...); UDP/ICMP: UNREPLIED or REPLIED. */
  state: string;
  /** As the first packet arrived. */
  orig: { src: string; dst: string; sport: number; dport: number };
  /** As the answer arrives (after NAT). */
  reply: { src: string; dst: string; sport: number; dport: number };
  kind: 'masquerade' | 'dnat' | 'dns';
  network: string;
  expiresInSeconds: number;
  packets: [number, number];  // original, reply direction
  bytes: [number, number];
}

export interface UplinkInfo {
  device: string;
  ip: string;                // CIDR
  gateway: string;
  mac: string;
  portId: number;
  /** --uplink-vlan: frames on the uplink carry this 802.1Q tag both ways (absent/0: untagged). */
  vlan?: number;
}

/** `vsw trunk add`: an interface or a TAP carrying VLAN networks as 802.1Q tagged frames. */
export interface TrunkCreate {
  /** An interface of the daemon's namespace (AF_PACKET), or the name of the TAP to create. */
  device: string;
  /** The VLAN ids it carries, e.g. '10,20,30-40'; absent = every VLAN network. */
  vlans?: string;
  /** The VLAN whose frames cross the trunk untagged (1-4094). */
  native?: number;
  /** Create a TAP named `device` instead of attaching an existing interface. */
  tap?: boolean;
}

/** A port's link impairment (vsw impair ls). */
export interface ImpairInfo {
  /** The port's interface name, and its dataplane id. */
  port: string;
  portId: number;
  /** Its network ('uplink', 'trunk'), and container when it is an endpoint. */
  network: string;
  container?: string;
  direction: 'in' | 'out' | 'both';
  /** The settings, as `vsw impair set` options (tc-netem style): 'delay 20ms jitter 5ms uniform loss 10%'. */
  settings: string;
  seed: number;
  /** The settings as numbers (ms, fractions, bit/s, bytes, frames): dataplane/impair/spec.ts. */
  spec: ImpairSpec;
}

export interface TrunkInfo {
  device: string;
  kind: 'afpacket' | 'tap';
  /** The VLAN ids it carries: 'all' (every VLAN network) or a list like '10,20,30-40'. */
  vlans: string;
  /** The native VLAN (untagged on the wire), or null. */
  native: number | null;
  /** Dataplane port id, -1 while it is not attached. */
  portId: number;
  /** 'missing': the interface was gone at start (or the TAP's name taken); kept in the state. */
  status: 'up' | 'missing';
  /** The networks it carries now, and how. */
  networks: { name: string; vlan: number; tagged: boolean }[];
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
  /** The remote VTEP of a MAC learned (or added) on a VXLAN overlay port. */
  vtep?: string;
  /** Added with vsw fdb add (never aged). */
  static?: boolean;
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

/** Which frames of a port a capture takes: received (in), sent (out), or both. */
export type CaptureDirection = 'in' | 'out' | 'both';
export const CAPTURE_DIRECTIONS: readonly CaptureDirection[] = ['in', 'out', 'both'];

/** One line of GET /capture?all=1: a frame of some port, received (in) or sent (out). */
export interface CapturedLine {
  port: string;
  dir: 'in' | 'out';
  /** Milliseconds since the epoch, with a fraction. */
  timeMs: number;
  /** The Ethernet frame, hex. */
  frame: string;
}

/** A capture or live trace in progress. */
export interface StreamSession {
  stop(): Promise<void>;
  /** Records the dataplane could not copy (its rings were full) while it ran. */
  lost(): number;
  /** The API skipped a record: its client was not reading fast enough (counted in metrics). */
  skipped?(n: number): void;
}

/** What the API serves. Implemented by control/engine/ (VswEngine); faked in API unit tests. */
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
  /** Hand every frame of `port` (both directions, Ethernet) to onFrame until stop(); with
   *  a stage, the frames received on the port as they are after that pipeline stage; with a
   *  filter, only those it matches (dataplane/filter.ts). */
  startCapture(port: string, onFrame: (frame: Uint8Array, timeMs: number) => void,
    opts?: { stage?: string; filter?: string; direction?: CaptureDirection }): Promise<StreamSession & { port: string }>;
  /** Every port's frames on the wire, each named by port and direction (capture --all-ports). */
  startCaptureAll?(onFrame: (frame: Uint8Array, timeMs: number, port: string, dir: 'in' | 'out') => void,
    opts?: { filter?: string }): Promise<StreamSession>;
  /** Live trace of the frames arriving on a port (or in a network, or anywhere) that match. */
  startTrace(opts: { port?: string; network?: string; filter?: string; count?: number },
    onTrace: (r: TraceResult) => void): Promise<StreamSession>;
  /** Be told of every event from now on; returns the unsubscribe function. */
  subscribeEvents(fn: (e: VswEvent) => void): () => void;
  /** The gateways' neighbour tables (one network, 'uplink', or all). */
  neigh(network?: string): NeighEntryInfo[];
  /** Tracked connections. */
  conntrack(): ConntrackEntryInfo[];
  /** Connect with DNS aliases (network connect --alias). */
  connectWith(network: string, container: string, opts: { ip?: string; aliases?: string[] }): Promise<EndpointInfo>;
  /** Attachments: endpoints of sandboxes another runtime made (Docker, CNI). */
  listAttachments(): AttachmentInfo[];
  inspectAttachment(endpoint: string): AttachmentInfo;
  /** created false: the same endpoint was already there with the same fields. */
  createAttachment(spec: AttachmentCreate): Promise<{ attachment: AttachmentInfo; created: boolean }>;
  removeAttachment(endpoint: string): Promise<void>;
  /** Replace the endpoint's published ports. */
  publishAttachment(endpoint: string, publish: PortMapping[]): Promise<AttachmentInfo>;
  /** Give a sandbox's container the name its runtime gives it (in-process: the Docker driver). */
  renameSandbox(owner: AttachmentOwner, sandbox: string, name: string): Promise<void>;
  /** 802.1Q trunks (vsw trunk ls/add/rm). */
  listTrunks(): TrunkInfo[];
  addTrunk(spec: TrunkCreate): Promise<TrunkInfo>;
  removeTrunk(device: string): Promise<void>;
  /** VXLAN (docs/VXLAN.md): add or remove a peer VTEP of a network (vsw network peer add|rm). */
  vxlanPeer?(network: string, op: 'add' | 'rm', ip: string): Promise<NetworkInfo>;
  /** A static FDB entry (vsw fdb add NET MAC --vtep IP), and its removal (vsw fdb rm NET MAC). */
  fdbAdd?(network: string, mac: string, vtep: string, ip?: string): Promise<FdbEntryInfo>;
  fdbRemove?(network: string, mac: string): Promise<void>;
  /** Link impairment (vsw impair set|rm|ls): set replaces the port's settings as a whole. */
  impairSet?(req: ImpairRequest): Promise<ImpairInfo>;
  impairRemove?(port: string): Promise<void>;
  impairList?(): ImpairInfo[];
  /** vsw inject (control/inject.ts): a capture's frames as if received on a port; progress until the summary. */
  inject?(spec: InjectSpec, progress: (p: InjectProgress) => void, stopped: () => boolean): Promise<InjectSummary>;
  /** vsw snapshot (control/snapshot.ts): what decides forwarding, as a versioned document. */
  snapshot?(): Snapshot;
}

/** Options of `vsw daemon` (parsed by control/cli/daemon.ts, run by control/daemon.ts). */
export interface DaemonOptions {
  stateDir: string;          // default /var/lib/vsw
  socket: string;            // default /run/vsw/vsw.sock (or $VSW_SOCKET)
  workers: number;           // dataplane worker threads, default 2 (1..16)
  rxRingFrames?: number;     // --rx-ring: frames of each AF_PACKET port's receive ring (default 2048: 4 MiB of kernel memory a port)
  busyPollUs?: number;       // --busy-poll: once batches come closer than this (us), a worker spins until this long after the last (0: off, the default)
  defaultSubnet?: string;    // subnet of the default network when it is first created
  defaultNetwork: string;    // name of the default network, default 'bridge'
  fdbAgingSeconds: number;   // MAC aging time, default 300
  fdbMax: number;            // total FDB entries, default 16384
  fdbMaxPerPort: number;     // per-port FDB entries, default 4096
  metrics?: string;          // HOST:PORT or :PORT: serve GET /metrics (Prometheus text) there
  uplink?: string;           // --uplink DEV: the outside port (AF_PACKET)
  uplinkIp?: string;         // --uplink-ip CIDR: the switch's own address on it
  uplinkGateway?: string;    // --uplink-gateway IP: next hop for the outside
  uplinkVlan?: number;       // --uplink-vlan ID: frames on the uplink are 802.1Q-tagged with ID
  dns?: string[];            // --dns IP[:PORT] (repeatable): upstream resolvers; default: resolv.conf
  conntrackMax?: number;     // --conntrack-max N: tracked connections (default 65536)
  dockerPlugin?: string;     // --docker-plugin [NAME]: serve Docker's network and IPAM plugin protocol as NAME (control/docker/)
  dockerPluginDir?: string;  // --docker-plugin-dir DIR: where NAME.sock goes (default /run/docker/plugins)
  dockerHost?: string;       // --docker-host unix:///PATH: dockerd's API, for Docker's network and container names
}
