// Table printing for the CLI: aligned columns like docker (3 spaces between columns), and
// the row layout of every listing command. Pure functions (no I/O), so they are easy to test.

import type { ContainerInfo, FdbEntryInfo, NetworkInfo, PortStatsInfo } from './types';

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

/** `vsw network ls`. */
export function networksTable(nets: NetworkInfo[]): string {
  return formatTable(
    ['NAME', 'ID', 'SUBNET', 'GATEWAY', 'MTU', 'ENDPOINTS', 'DEFAULT'],
    nets.map((n) => [n.name, n.id, n.subnet, n.gateway, n.mtu, n.endpoints.length, n.default ? 'yes' : 'no']),
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
    ['NAME', 'ID', 'NETWORK', 'IP', 'MAC', 'STATUS', 'COMMAND'],
    cs.map((c) => [
      c.name,
      c.id,
      containerNetwork(c),
      c.networks.map((e) => e.ip).join(','),
      c.networks.map((e) => e.mac).join(','),
      containerStatus(c),
      shellJoin(c.cmd),
    ]),
  );
}

/** `vsw fdb`: AGE is whole seconds since the MAC was last seen. */
export function fdbTable(entries: FdbEntryInfo[]): string {
  return formatTable(
    ['NETWORK', 'MAC', 'VLAN', 'PORT', 'CONTAINER', 'AGE'],
    entries.map((e) => [e.network, e.mac, e.vlan, e.port, e.container ?? '', Math.floor(e.ageSeconds)]),
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
