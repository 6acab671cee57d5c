// The summary of an e2e.sh run: one row per metric with the kernel bridge's median, vsw's,
// their ratio and the peers' anchors; the issue's bar (bars.ts, as the charts draw it); the routed tests' checks; vsw's drops
// per test; the run's notes. As plain text (summary.txt, stdout), markdown (summary.md) and
// JSON (summary.json: every series with its median).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { BARS, barText, meetsBar } from './bars';
import { Results, fixed, median, readConditions, runShape, textTable } from './results';

/** [metric key, label, decimals] */
type Metric = [string, string, number];

const METRICS: Metric[] = [
  ['tcp_def_gbps', 'TCP Gbit/s, default offloads', 2], ['tcp_def_retr', 'TCP retransmits, default offloads', 0],
  ['tcp_off_gbps', 'TCP Gbit/s, offloads off in containers', 2], ['tcp_off_retr', 'TCP retransmits, offloads off', 0],
  ['udp_rx_kpps', 'UDP 64 B received kpps', 0], ['udp_tx_kpps', 'UDP 64 B sent kpps', 0], ['udp_loss_pct', 'UDP 64 B loss %', 1],
  ['ping_avg_ms', 'ping avg ms (200 x 10 ms)', 3], ['ping_p50_ms', 'ping median ms', 3], ['sockperf_avg_us', 'sockperf ping-pong avg us', 1],
  ['sockperf_p99_us', 'sockperf ping-pong p99 us', 1],
  ['mac1_tx_kpps', 'trafgen 60 B, 1 MAC: tx kpps', 0], ['mac1_rx_kpps', 'trafgen 60 B, 1 MAC: rx kpps', 0],
  ['mac1000_tx_kpps', 'trafgen 60 B, 1000 MACs: tx kpps', 0], ['mac1000_rx_kpps', 'trafgen 60 B, 1000 MACs: rx kpps', 0],
  ['fdb_entries', 'MAC table entries after 1000-MAC run', 0],
  // routed (bridge = kernel bridge + iptables MASQUERADE / dnsmasq)
  ['nat_tcp_def_gbps', 'NAT TCP Gbit/s, default offloads', 2], ['nat_tcp_def_retr', 'NAT TCP retransmits, default offloads', 0],
  ['nat_tcp_off_gbps', 'NAT TCP Gbit/s, offloads off in container', 2], ['nat_tcp_off_retr', 'NAT TCP retransmits, offloads off', 0],
  ['dns_qps', 'DNS queries/s, 4-address name (bridge row: dnsmasq)', 0], ['dns_lat_us', 'DNS avg latency us', 0],
  ['dns_lost_pct', 'DNS queries lost %', 2], ['dns_proccpu', 'DNS server CPU (cores): dnsmasq, vsw daemon', 2],
  // scale (bench/scale.sh; docs/PERF.md)
  ['mac10000_tx_kpps', 'trafgen 60 B, 10000 MACs: tx kpps', 0], ['mac10000_rx_kpps', 'trafgen 60 B, 10000 MACs: rx kpps', 0],
  ['fdb10000_entries', 'MAC table entries after 10000-MAC run', 0],
  ...[2, 8, 32].flatMap((n): Metric[] => [[`pairs${n}_tx_kpps`, `${n} containers, ${n / 2} pairs: trafgen tx kpps`, 0],
    [`pairs${n}_rx_kpps`, `${n} containers, ${n / 2} pairs: trafgen rx kpps`, 0], [`pairs${n}_gbps`, `${n} containers, ${n / 2} pairs: TCP Gbit/s`, 2]]),
  ['w1_rx_kpps', 'vsw 1 worker, 2 containers: trafgen rx kpps', 0], ['w1_gbps', 'vsw 1 worker, 2 containers: TCP Gbit/s', 2],
  ...[10, 10000].flatMap((n): Metric[] => [[`nat${n}_tx_kpps`, `NAT UDP, ${n} flows: tx kpps`, 0], [`nat${n}_rx_kpps`, `NAT UDP, ${n} flows: rx kpps (outside)`, 0],
    [`nat${n}_ct_entries`, `NAT UDP, ${n} flows: connection table entries after`, 0]]),
  ...[1, 10000].flatMap((n): Metric[] => [[`dns${n}_qps`, `DNS queries/s, ${n} registered name${n > 1 ? 's' : ''}`, 0],
    [`dns${n}_lat_us`, `DNS avg latency us, ${n} registered name${n > 1 ? 's' : ''}`, 0]]),
];
/** [test, label]: the tests in the order of the CPU rows */
export const TESTS: readonly [string, string][] = [['tcp_def', 'TCP default'], ['tcp_off', 'TCP offloads off'], ['udp', 'UDP 64 B'], ['ping', 'ping'],
  ['sockperf', 'sockperf'], ['mac1', 'trafgen 1 MAC'], ['mac1000', 'trafgen 1000 MACs'],
  ['nat_tcp_def', 'NAT TCP default'], ['nat_tcp_off', 'NAT TCP offloads off'], ['dns', 'DNS'],
  ['mac10000', 'trafgen 10000 MACs'], ...[2, 8, 32].flatMap((n): [string, string][] => [[`pairs${n}_fwd`, `${n} containers trafgen`], [`pairs${n}_tcp`, `${n} containers TCP`]]),
  ['w1_fwd', 'vsw 1 worker trafgen'], ['w1_tcp', 'vsw 1 worker TCP'], ['nat10', 'NAT 10 flows'], ['nat10000', 'NAT 10000 flows'],
  ['dns1', 'DNS 1 name'], ['dns10000', 'DNS 10000 names']];
for (const [t, l] of TESTS) if (!/^dns\d*$/.test(t)) METRICS.push([`${t}_proccpu`, `vsw daemon CPU (cores), ${l}`, 2]);
for (const [t, l] of TESTS) METRICS.push([`${t}_procwait`, `vsw threads ready but without a CPU (cores), ${l}`, 2]);
for (const [t, l] of TESTS) METRICS.push([`${t}_syscpu`, `system CPU (cores of 2), ${l}`, 2]);

// Peers measured by ../shared/anchors/peers.sh on this machine (peers-2026-11-22.txt, medians
// of 3): kmasq = kernel bridge + iptables MASQUERADE, ovs_nat = Open vSwitch userspace
// conntrack NAT, pasta / slirp = L4 translators; dnsmasq with dnsperf -c 1 -q 100 -l 10.
const ANCHORS: Readonly<Record<string, string>> = {
  nat_tcp_def_gbps: 'kmasq 14.50, pasta 0.19, slirp 0.64',
  nat_tcp_off_gbps: 'kmasq 2.56, ovs_nat 0.95',
  nat_tcp_off_proccpu: 'ovs_nat 0.98',
  dns_qps: 'dnsmasq 75991 (-c 1)',
  dns_lat_us: 'dnsmasq 1223 (-c 1)',
  dns_lost_pct: 'dnsmasq 0',
  dns_proccpu: 'dnsmasq 0.81',
};
/** counts, not rates: a ratio of them says nothing */
const NORATIO = /(_retr|_lost_pct)$/;

/** [label, bridge, vsw, vsw/bridge, anchors, metric key] */
export type MetricRow = [string, string, string, string, string, string];
/** [what was checked, whether it held] */
export type Verdict = [string, boolean];

export interface E2eSummary {
  rows: MetricRow[];
  bar: Verdict[];
  checks: Verdict[];
  txt: string;
  md: string;
  json: string;
}

export function metricRows(res: Results): MetricRow[] {
  const rows: MetricRow[] = [];
  for (const [m, label, d] of METRICS) {
    const b = res.median('bridge', m), v = res.median('vsw', m);
    if (b === null && v === null) continue;
    const ratio = b !== null && v !== null && b !== 0 && !NORATIO.test(m) ? (v / b).toFixed(2) : '-';
    rows.push([label, fixed(b, d), fixed(v, d), ratio, ANCHORS[m] ?? '', m]);
  }
  return rows;
}

/** The issue's bar (bars.ts), judged on the medians of the run: vsw against the kernel of the same run. */
export function issueBar(res: Results): Verdict[] {
  const bar: Verdict[] = [];
  for (const [m, label, d] of METRICS) {
    const b = BARS[m];
    if (!b) continue;
    const k = res.median('bridge', m), v = res.median('vsw', m);
    const ok = meetsBar(b, k, v);
    if (ok === null) continue;
    const fig = b.kind === 'ratio' ? `vsw/kernel ${(v! / k!).toFixed(2)} (${fixed(v, d)} vs ${fixed(k, d)})` : `vsw ${fixed(v, d)}`;
    bar.push([`${label}: ${fig}, bar ${barText(b)}`, ok]);
  }
  return bar;
}

/** The routed tests: was it NAT, did both servers give the same four answers, did vsw lose queries? */
export function routedChecks(res: Results): Verdict[] {
  const checks: Verdict[] = [];
  for (const c of ['def', 'off']) {
    const per = ['bridge', 'vsw'].map((row): [string, number[]] => [row, res.values(row, `nat_tcp_${c}_masq`)]).filter(([, a]) => a.length);
    if (per.length) checks.push([`nat_tcp_${c}: the outside server saw only the uplink address: ${per.map(([row, a]) => `${row} ${a.filter((x) => x === 1).length}/${a.length} runs`).join(', ')}`,
      per.every(([, a]) => a.every((x) => x === 1))]);
  }
  const ans = ['bridge', 'vsw'].map((row): [string, number | null] => [row, res.median(row, 'dns_answers')]).filter(([, n]) => n !== null);
  if (ans.length) checks.push([`dns: addresses in the answer for svc: ${ans.map(([row, n]) => `${row} ${n}`).join(', ')}`, ans.every(([, n]) => n === 4)]);
  if (res.has('vsw', 'dns_answered'))
    checks.push([`dns: vsw answered ${res.sum('vsw', 'dns_answered')} queries locally; lost on the way to the DNS server (punt ring full) ${res.sum('vsw', 'dns_punt_lost')}, dropped by the server ${res.sum('vsw', 'dns_dropped')} (sums over runs)`,
      res.sum('vsw', 'dns_punt_lost') === 0 && res.sum('vsw', 'dns_dropped') === 0]);
  return checks;
}

/** Drops by reason summed over a `vsw stats --format json` snapshot's ports; {} when it is missing or broken. */
function snapshotDrops(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const p of JSON.parse(fs.readFileSync(file, 'utf8')) as { drops?: Record<string, number> }[])
      for (const [r, n] of Object.entries(p.drops ?? {})) out[r] = (out[r] ?? 0) + n;
  } catch { /* missing or broken snapshot: no drops from it */ }
  return out;
}

/**
 * vsw drops by reason, per test, from the `vsw stats` snapshots taken after each test
 * (vsw.* = the L2 daemon, vswn.* = the routed one: each series is diffed on its own), and
 * the kernel's AF_PACKET receive-queue drops (<test>_kdrops, not in vsw stats).
 */
export function dropLines(dir: string, res: Results): string[] {
  const drops: string[] = [];
  for (const series of ['vsw', 'vswn']) {
    const re = new RegExp(`^${series}\\.stats\\.\\d+\\..+\\.json$`);
    const snaps = fs.readdirSync(dir).filter((f) => re.test(f)).sort();
    for (let i = 1; i < snaps.length; i++) {
      const a = snapshotDrops(path.join(dir, snaps[i - 1])), b = snapshotDrops(path.join(dir, snaps[i]));
      const d = Object.keys(b).map((r): [string, number] => [r, b[r] - (a[r] ?? 0)]).filter(([, n]) => n > 0);
      if (d.length) drops.push(`  ${snaps[i].replace(/^vswn?\.stats\.\d+\.|\.json$/g, '')}: ${d.map(([r, n]) => `${r} ${n}`).join(', ')}`);
    }
  }
  const kd = TESTS.map(([t]): [string, number] => [t, res.sum('vsw', `${t}_kdrops`)]).filter(([, n]) => n > 0);
  if (kd.length) drops.unshift(`  kernel, AF_PACKET receive queue full (not in vsw stats): ${kd.map(([t, n]) => `${t} ${n}`).join(', ')}`);
  return drops;
}

/** The notes of a run (notes.txt), each once, in order of first appearance. */
function noteLines(dir: string): string[] {
  const f = path.join(dir, 'notes.txt');
  if (!fs.existsSync(f) || fs.statSync(f).size === 0) return [];
  return [...new Set(fs.readFileSync(f, 'utf8').trim().split('\n'))];
}

export function e2eSummary(dir: string): E2eSummary {
  const res = Results.read(dir);
  const rows = metricRows(res);
  const bar = issueBar(res);
  const checks = routedChecks(res);
  const cond = readConditions(dir);
  const withAnchors = rows.some((r) => r[4] !== '');
  const ncol = withAnchors ? 5 : 4;
  const head = ['metric (median)', 'bridge', 'vsw', 'vsw/bridge', 'peers (anchors)'].slice(0, ncol);
  let txt = `${cond}\n\n${textTable(head, rows.map((r) => r.slice(0, ncol)), '   ', new Set([0, 4]))}`;
  if (bar.length) txt += `\nissue bar:\n${bar.map(([t, ok]) => `  ${ok ? 'PASS' : 'FAIL'}  ${t}`).join('\n')}\n`;
  if (checks.length) txt += `\nrouted checks:\n${checks.map(([t, ok]) => `  ${ok ? 'ok  ' : 'FAIL'}  ${t}`).join('\n')}\n`;
  const drops = dropLines(dir, res);
  if (drops.length) txt += `\nvsw drops per test (sum over reps):\n${drops.join('\n')}\n`;
  const notes = noteLines(dir);
  if (notes.length) txt += `\nnotes:\n${notes.map((l) => `  ${l}`).join('\n')}\n`;

  const { reps, secs } = runShape(cond);
  let md = `| metric (median of ${reps} runs of ${secs} s) | kernel bridge | vsw | vsw/bridge |${withAnchors ? ' peers (anchors) |' : ''}\n|---|---:|---:|---:|${withAnchors ? '---|' : ''}\n`;
  md += rows.map((r) => `| ${r[0]} | ${r[1]} | ${r[2]} | ${r[3]} |${withAnchors ? ` ${r[4]} |` : ''}`).join('\n') + '\n';
  if (bar.length) md += `\n${bar.map(([t, ok]) => `- ${ok ? '**pass**' : '**fail**'}: ${t}`).join('\n')}\n`;
  if (checks.length) md += `\n${checks.map(([t, ok]) => `- ${ok ? 'ok' : '**FAIL**'}: ${t}`).join('\n')}\n`;

  const results: Record<string, Record<string, { median: number | null; values: number[] }>> = {};
  for (const [row, m, values] of res.series()) (results[row] ??= {})[m] = { median: median(values), values };
  const json = JSON.stringify({ conditions: cond, results, bar: bar.map(([t, ok]) => ({ test: t, pass: ok })),
    checks: checks.map(([t, ok]) => ({ check: t, ok })) }, null, 2) + '\n';
  return { rows, bar, checks, txt, md, json };
}
