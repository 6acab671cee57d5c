// The suite's world: one `vsw daemon` in PREFIX-host with an uplink veth to PREFIX-out (the
// "outside": 198.51.100.1, TEST-NET-2, with an iperf3 server, a UDP echo server on 9999 and
// a DNS server on 53), and the helpers the probes share: containers, counters, frame blasts,
// reachability of the outside, feature detection through --help.

import * as path from 'path';
import type { ContainerInfo, DaemonInfo, EndpointInfo, FdbEntryInfo, NetworkInfo, PortStatsInfo } from '../control/types';
import type { BlastSpec } from './blast';
import { addNetns, BLAST, bg, Daemon, inNs, NODE, PREFIX, ROOT, sh, shOk, waitFor, type Bg } from './lib';

export const OUT = `${PREFIX}-out`;
export const HOST = `${PREFIX}-host`;
export const OUTSIDE_IP = '198.51.100.1';
export const UPLINK_IP = '198.51.100.2';
const OUTSIDE_PY = path.join(ROOT, 'test', 'fixtures', 'outside.py');

/** Options of this build, read from --help (features other branches add). */
export interface Features {
  portSecurity: boolean;
}

export interface World {
  d: Daemon;
  ci: boolean;
  features: Features;
  info: DaemonInfo;
  bridge: NetworkInfo;
  /** A container on the default network that checks the outside is still reachable. */
  client: EndpointInfo;
  outsideMac: string;
  servers: Bg[];
}

export function name(n: string): string {
  return `${PREFIX}-${n}`;
}

export async function detectFeatures(): Promise<Features> {
  const r = await sh(NODE, [path.join(ROOT, 'dist', 'control', 'cli.js'), 'network', 'create', '--help']);
  return { portSecurity: /--port-security/.test(r.stdout) };
}

export async function setupWorld(ci: boolean): Promise<World> {
  await addNetns(HOST);
  await addNetns(OUT);
  await shOk('ip', ['link', 'add', 'up0', 'netns', HOST, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', OUT]);
  await shOk('ip', ['-n', OUT, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
  await shOk('ip', ['-n', OUT, 'link', 'set', 'eth0', 'up']);
  await shOk('ip', ['-n', HOST, 'link', 'set', 'up0', 'up']);
  const servers = [
    bg('ip', ['netns', 'exec', OUT, 'iperf3', '-s', '-B', OUTSIDE_IP], { discard: true }),
    bg('ip', ['netns', 'exec', OUT, 'python3', '-u', OUTSIDE_PY, 'udpecho', '9999'], { discard: true }),
    bg('ip', ['netns', 'exec', OUT, 'python3', '-u', OUTSIDE_PY, 'dns', '53'], { discard: true }),
  ];
  await waitFor('the outside servers to listen (tcp 5201, udp 53 and 9999)', async () => {
    const tcp = (await inNs(OUT, ['ss', '-ltnH'])).stdout;
    const udp = (await inNs(OUT, ['ss', '-lunH'])).stdout;
    return tcp.includes(':5201 ') && udp.includes(':53 ') && udp.includes(':9999 ');
  });
  const d = new Daemon(HOST, ['--workers', '2', '--uplink', 'up0', '--uplink-ip', `${UPLINK_IP}/24`,
    '--uplink-gateway', OUTSIDE_IP, '--dns', OUTSIDE_IP]);
  await d.start();
  const features = await detectFeatures();
  const info = JSON.parse((await d.api('GET', '/info')).body) as DaemonInfo;
  const bridge = await network(d, info.defaultNetwork);
  const client = await runEndpoint(d, name('client'));
  const outsideMac = JSON.parse((await shOk('ip', ['-n', OUT, '-j', 'link', 'show', 'dev', 'eth0'])).stdout)[0].address as string;
  return { d, ci, features, info, bridge, client, outsideMac, servers };
}

/** `vsw run -d --name NAME [--network NET] -- sleep 3600`; its first endpoint. */
export async function runEndpoint(d: Daemon, n: string, network?: string): Promise<EndpointInfo> {
  await d.vswOk(['run', '-d', '--name', n, ...(network ? ['--network', network] : []), '--', 'sleep', '3600']);
  const c = await container(d, n);
  if (!c?.networks[0]) throw new Error(`container ${n} has no endpoint after vsw run`);
  return c.networks[0];
}

export async function containers(d: Daemon): Promise<ContainerInfo[]> {
  return d.json<ContainerInfo[]>(['ps']);
}

export async function container(d: Daemon, n: string): Promise<ContainerInfo | undefined> {
  return (await containers(d)).find((c) => c.name === n);
}

export async function rmContainers(d: Daemon, names: string[]): Promise<void> {
  if (names.length > 0) await d.vsw(['rm', '-f', ...names]);
}

export async function network(d: Daemon, n: string): Promise<NetworkInfo> {
  return JSON.parse((await d.vswOk(['network', 'inspect', n])).stdout) as NetworkInfo;
}

/** Create a network (with --port-security off when asked and the build has it). */
export async function createNetwork(w: World, n: string, o: { portSecurityOff?: boolean } = {}): Promise<NetworkInfo> {
  const args = ['network', 'create', n];
  if (o.portSecurityOff && w.features.portSecurity) args.push('--port-security', 'off');
  await w.d.vswOk(args);
  return network(w.d, n);
}

export async function stats(d: Daemon): Promise<PortStatsInfo[]> {
  return d.json<PortStatsInfo[]>(['stats']);
}

/** Sum of a drop reason over every port (0 when absent). */
export function dropSum(s: PortStatsInfo[], reason: string): number {
  return s.reduce((a, p) => a + (p.drops[reason] ?? 0), 0);
}

/** Every drop reason's delta between two stats snapshots, over all ports (non-zero only). */
export function dropDeltas(before: PortStatsInfo[], after: PortStatsInfo[], port?: string): Record<string, number> {
  const sum = (s: PortStatsInfo[]): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const p of s) {
      if (port !== undefined && p.name !== port) continue;
      for (const [k, v] of Object.entries(p.drops)) out[k] = (out[k] ?? 0) + v;
    }
    return out;
  };
  const a = sum(before);
  const b = sum(after);
  const out: Record<string, number> = {};
  for (const k of Object.keys(b)) if (b[k] - (a[k] ?? 0) !== 0) out[k] = b[k] - (a[k] ?? 0);
  return out;
}

export function portOf(s: PortStatsInfo[], port: string): PortStatsInfo | undefined {
  return s.find((p) => p.name === port);
}

export async function fdb(d: Daemon, net: string): Promise<FdbEntryInfo[]> {
  return JSON.parse((await d.vswOk(['fdb', net, '--format', 'json'])).stdout) as FdbEntryInfo[];
}

export interface BlastResult { offered: number; sent: number; refused: number; ms: number }

/** Run stress/blast.js in NS (see blast.ts); resolves with what it sent. */
export async function blast(ns: string, spec: BlastSpec, timeoutMs = 120_000): Promise<BlastResult> {
  const r = await sh('ip', ['netns', 'exec', ns, NODE, BLAST, JSON.stringify(spec)], { timeoutMs });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as BlastResult;
  } catch {
    throw new Error(`blast ${spec.kind} in ${ns}: ${r.code} ${r.stderr.slice(-800)}`);
  }
}

/** The frame spec fields for a container's own port: from its MAC and address to the gateway. */
export function fromContainer(e: EndpointInfo, net: NetworkInfo): Pick<BlastSpec, 'iface' | 'srcMac' | 'srcIp' | 'dstMac' | 'dstIp'> {
  return { iface: 'eth0', srcMac: e.mac, srcIp: e.ip, dstMac: net.gatewayMac, dstIp: OUTSIDE_IP };
}

/** A UDP datagram to the outside's echo server and back, from NS. */
export async function udpEcho(ns: string): Promise<boolean> {
  const r = await inNs(ns, ['python3', '-c', [
    'import socket,sys', 's=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)', 's.settimeout(1)',
    'ok=False',
    'for i in range(3):',
    `  s.sendto(b'hello', ('${OUTSIDE_IP}', 9999))`,
    '  try:',
    '    s.recvfrom(200); ok=True; break',
    '  except Exception: pass',
    'sys.exit(0 if ok else 1)'].join('\n')], { timeoutMs: 10_000 });
  return r.code === 0;
}

/** The outside answers NS: a UDP echo and one of 3 pings. */
export async function reachesOutside(ns: string): Promise<{ udp: boolean; ping: boolean }> {
  const udp = await udpEcho(ns);
  const p = await inNs(ns, ['ping', '-n', '-q', '-c', '3', '-i', '0.2', '-W', '1', OUTSIDE_IP], { timeoutMs: 10_000 });
  const m = /(\d+) received/.exec(p.stdout);
  return { udp, ping: m !== null && Number(m[1]) > 0 };
}

/** Number of masquerade connections from each source address (vsw conntrack). */
export async function ctBySource(d: Daemon): Promise<{ total: number; bySrc: Map<string, number> }> {
  const r = await d.vswOk(['conntrack', '--format', 'json'], 120_000);
  const list = JSON.parse(r.stdout) as { orig: { src: string } }[];
  const bySrc = new Map<string, number>();
  for (const e of list) bySrc.set(e.orig.src, (bySrc.get(e.orig.src) ?? 0) + 1);
  return { total: list.length, bySrc };
}
