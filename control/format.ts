// Table printing for the CLI: aligned columns like docker (3 spaces between columns), and
// the row layout of every listing command. Pure functions (no I/O), so they are easy to test.

import { portsText } from './publish';
import type {
  ConntrackEntryInfo, ContainerInfo, FdbEntryInfo, ImpairInfo, NeighEntryInfo, NetworkInfo, PortStatsInfo, TrunkInfo,
} from './types';

/** Columns are separated by this many spaces (docker's tabwriter uses 3). */
const GAP = 3;

/** Render rows under headers as aligned text; ends with a newline. Empty cells print as '-'. */
export function formatTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((r) => headers.map((_, i) => cellText(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + GAP))).join('').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

function cellText(v: string | number | undefined): string {
  if (v === undefined || v === '') return '-';
  // Keep the table on one line per row whatever the data holds.
  return String(v).replace(/[\r\n\t]/g, ' ');
}

/** `--format json`: the data as pretty-printed JSON, newline-terminated. */
export function formatJson(data: unknown): string {
  return JSON.stringify(data, null, 2) + '\n';
}

/**
 * The FLAGS column of `vsw network ls`: the settings that differ from the defaults,
 * `vlan=ID`, `internal`, `no-icc`, `dns=random` / `dns=fixed`, `port-security=off` ('' when none).
 */
export function networkFlags(n: NetworkInfo): string {
  const flags: string[] = [];
  if (n.vlan) flags.push(`vlan=${n.vlan}`);
  if (n.internal) flags.push('internal');
  if (n.icc === false) flags.push('no-icc');
  if (n.dnsOrder !== undefined && n.dnsOrder !== 'rotate') flags.push(`dns=${n.dnsOrder}`);
  if (n.portSecurity === false) flags.push('port-security=off');
  if (n.vxlan) flags.push(`vxlan=${n.vxlan.vni}`, `peers=${n.vxlan.peers.length}`);
  if (n.vxlan?.arpProxy === true) flags.push('arp-proxy');
  return flags.join(',');
}

/** `vsw network ls`. */
export function networksTable(nets: NetworkInfo[]): string {
  return formatTable(
    ['NAME', 'ID', 'SUBNET', 'GATEWAY', 'MTU', 'ENDPOINTS', 'DEFAULT', 'FLAGS'],
    nets.map((n) => [
      n.name, n.id, n.subnet, n.gateway, n.mtu, n.endpoints.length, n.default ? 'yes' : 'no', networkFlags(n),
    ]),
  );
}

/** `created`, `running`, `exited (3)`. */
export function containerStatus(c: ContainerInfo): string {
  if (c.status === 'exited') return c.exitCode === undefined ? 'exited' : `exited (${c.exitCode})`;
  return c.status;
}

/** The NETWORK column of `vsw ps`: network names, or the mode for none/host/container. */
export function containerNetwork(c: ContainerInfo): string {
  switch (c.mode) {
    case 'none': return 'none';
    case 'host': return 'host';
    case 'container': return `container:${c.sharedWith ?? '?'}`;
    default: return c.networks.map((e) => e.network).join(',');
  }
}

/** A command line as a shell would need it typed (arguments with spaces etc. quoted). */
export function shellJoin(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** `vsw ps`. */
export function containersTable(cs: ContainerInfo[]): string {
  return formatTable(
    ['NAME', 'ID', 'NETWORK', 'IP', 'MAC', 'STATUS', 'PORTS', 'COMMAND'],
    cs.map((c) => [
      c.name,
      c.id,
      containerNetwork(c),
      c.networks.map((e) => e.ip).join(','),
      c.networks.map((e) => e.mac).join(','),
      containerStatus(c),
      portsText(c),
      shellJoin(c.cmd),
    ]),
  );
}

/** `vsw fdb`: AGE is whole seconds since the MAC was last seen. */
export function fdbTable(entries: FdbEntryInfo[]): string {
  // VXLAN: a VTEP column (and AGE 'static') when some entry lives behind a remote VTEP.
  if (entries.some((e) => e.vtep !== undefined || e.static)) {
    return formatTable(
      ['NETWORK', 'MAC', 'VLAN', 'PORT', 'CONTAINER', 'VTEP', 'AGE'],
      entries.map((e) => [e.network, e.mac, e.vlan, e.port, e.container ?? '', e.vtep ?? '', e.static ? 'static' : Math.floor(e.ageSeconds)]),
    );
  }
  return formatTable(
    ['NETWORK', 'MAC', 'VLAN', 'PORT', 'CONTAINER', 'AGE'],
    entries.map((e) => [e.network, e.mac, e.vlan, e.port, e.container ?? '', Math.floor(e.ageSeconds)]),
  );
}

/** `vsw neigh`: MAC is '-' while incomplete; AGE is whole seconds since last confirmed. */
export function neighTable(entries: NeighEntryInfo[]): string {
  return formatTable(
    ['NETWORK', 'IP', 'MAC', 'STATE', 'AGE'],
    entries.map((e) => [e.network, e.ip, e.mac, e.state, Math.floor(e.ageSeconds)]),
  );
}

/**
 * One direction of a connection: `10.89.0.2:41000 -> 93.184.216.34:80`; for ICMP, whose
 * "ports" are the echo identifier: `10.89.0.2 -> 1.1.1.1 id=7`.
 */
export function tupleText(proto: ConntrackEntryInfo['proto'], t: ConntrackEntryInfo['orig']): string {
  if (proto === 'icmp') return `${t.src} -> ${t.dst} id=${t.sport}`;
  return `${t.src}:${t.sport} -> ${t.dst}:${t.dport}`;
}

/** `vsw conntrack`: EXPIRES in whole seconds; PKTS is original/reply. */
export function conntrackTable(entries: ConntrackEntryInfo[]): string {
  return formatTable(
    ['PROTO', 'STATE', 'ORIG', 'REPLY', 'KIND', 'NETWORK', 'EXPIRES', 'PKTS'],
    entries.map((e) => [
      e.proto, e.state, tupleText(e.proto, e.orig), tupleText(e.proto, e.reply), e.kind, e.network,
      Math.max(0, Math.floor(e.expiresInSeconds)), `${e.packets[0]}/${e.packets[1]}`,
    ]),
  );
}

/**
 * `vsw trunk ls`: NETWORKS lists what it carries now, `NAME:VID` tagged, `NAME:VID(u)`
 * untagged (the native VLAN).
 */
export function trunksTable(trunks: TrunkInfo[]): string {
  return formatTable(
    ['DEVICE', 'KIND', 'VLANS', 'NATIVE', 'NETWORKS', 'STATUS'],
    trunks.map((t) => [
      t.device, t.kind, t.vlans, t.native ?? '', t.networks.map((n) => `${n.name}:${n.vlan}${n.tagged ? '' : '(u)'}`).join(','), t.status,
    ]),
  );
}

/** `vsw impair ls`. */
export function impairTable(rows: ImpairInfo[]): string {
  return formatTable(
    ['PORT', 'NETWORK', 'CONTAINER', 'DIRECTION', 'SEED', 'SETTINGS'],
    rows.map((r) => [r.port, r.network, r.container ?? '', r.direction, r.seed, r.settings]),
  );
}

/** `reason=N,reason=N` sorted by reason, or '-' when nothing was dropped. */
export function dropsText(drops: Record<string, number>): string {
  const parts = Object.keys(drops)
    .filter((k) => drops[k] !== 0)
    .sort()
    .map((k) => `${k}=${drops[k]}`);
  return parts.length ? parts.join(',') : '-';
}

/** `vsw stats`. */
export function statsTable(ports: PortStatsInfo[]): string {
  return formatTable(
    ['PORT', 'NETWORK', 'CONTAINER', 'RX-PKTS', 'RX-BYTES', 'TX-PKTS', 'TX-BYTES', 'DROPS'],
    ports.map((p) => [
      p.name, p.network, p.container ?? '', p.rxPackets, p.rxBytes, p.txPackets, p.txBytes, dropsText(p.drops),
    ]),
  );
}
