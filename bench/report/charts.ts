// The bench's charts: one SVG per family (throughput, latency, small packets, NAT/DNS,
// scaling), vsw and the kernel side by side, the issue's bar (bars.ts) drawn in as a red
// tick at the figure vsw must reach (or stay under), and named under the panel's title. Built as Vega-Lite specs from a run's
// results and rendered headless by Vega (View.toSVG: no browser, no canvas, no network).
//
//   familyCharts(res, subtitle)  the specs of the families that have figures in `res`
//   renderSvg(spec)              an SVG string
//   writeCharts(dir)             chart-<family>.svg in DIR, from its raw.tsv and conditions.txt
//
// A panel is one figure (a metric, or for scaling one figure at several sizes: containers,
// source MACs, workers, flows, names); each has its own y scale. The kernel's row is the
// bench's "bridge" row: a Linux bridge, plus iptables MASQUERADE / dnsmasq for NAT and DNS.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vega from 'vega';
import { compile, TopLevelSpec } from 'vega-lite';
import { barOf, barTarget, barText } from './bars';
import { Results, fixed, readConditions, runShape } from './results';

/** A panel: [metric, x label] per bar group, the decimals of its labels, the x axis' title. */
interface PanelDef {
  readonly title: string;
  readonly items: readonly (readonly [string, string])[];
  readonly decimals: number;
  readonly xTitle?: string;
}
export interface FamilyDef {
  readonly name: string;
  readonly title: string;
  readonly panels: readonly PanelDef[];
}

const one = (title: string, metric: string, unit: string, decimals: number): PanelDef => ({ title, items: [[metric, unit]], decimals });

export const FAMILIES: readonly FamilyDef[] = [
  { name: 'throughput', title: 'Throughput: TCP between two containers', panels: [
    one('TCP, default offloads', 'tcp_def_gbps', 'Gbit/s', 2),
    one('TCP, offloads off', 'tcp_off_gbps', 'Gbit/s', 2)] },
  { name: 'latency', title: 'Latency (lower is better)', panels: [
    one('ping avg (200 x 10 ms)', 'ping_avg_ms', 'ms', 3),
    one('sockperf ping-pong avg', 'sockperf_avg_us', 'us', 1),
    one('sockperf ping-pong p99', 'sockperf_p99_us', 'us', 1)] },
  { name: 'small-packets', title: 'Small packets: 64-byte UDP and 60-byte frames', panels: [
    one('UDP 64 B received', 'udp_rx_kpps', 'kpps', 0),
    one('UDP 64 B loss (lower is better)', 'udp_loss_pct', '%', 1),
    one('forwarding 60 B, 1 MAC, received', 'mac1_rx_kpps', 'kpps', 0),
    one('forwarding 60 B, 1000 MACs, received', 'mac1000_rx_kpps', 'kpps', 0)] },
  { name: 'nat-dns', title: 'NAT (vs iptables MASQUERADE) and DNS (vs dnsmasq)', panels: [
    one('NAT TCP, default offloads', 'nat_tcp_def_gbps', 'Gbit/s', 2),
    one('NAT TCP, offloads off', 'nat_tcp_off_gbps', 'Gbit/s', 2),
    one('DNS queries/s, 4-address name', 'dns_qps', 'queries/s', 0),
    one('DNS avg latency (lower is better)', 'dns_lat_us', 'us', 0)] },
  { name: 'scaling', title: 'How it grows (docs/PERF.md)', panels: [
    { title: 'forwarding rx kpps, N/2 pairs at once', items: [['pairs2_rx_kpps', '2'], ['pairs8_rx_kpps', '8'], ['pairs32_rx_kpps', '32']], decimals: 0, xTitle: 'containers' },
    { title: 'TCP Gbit/s, N/2 pairs at once', items: [['pairs2_gbps', '2'], ['pairs8_gbps', '8'], ['pairs32_gbps', '32']], decimals: 2, xTitle: 'containers' },
    { title: 'forwarding rx kpps by source MACs', items: [['mac1_rx_kpps', '1'], ['mac1000_rx_kpps', '1,000'], ['mac10000_rx_kpps', '10,000']], decimals: 0, xTitle: 'source MACs' },
    { title: 'forwarding rx kpps by vsw workers', items: [['w1_rx_kpps', '1'], ['pairs2_rx_kpps', '2']], decimals: 0, xTitle: 'workers (kernel: same run)' },
    { title: 'TCP Gbit/s by vsw workers', items: [['w1_gbps', '1'], ['pairs2_gbps', '2']], decimals: 2, xTitle: 'workers (kernel: same run)' },
    { title: 'NAT UDP rx kpps by flows', items: [['nat10_rx_kpps', '10'], ['nat10000_rx_kpps', '10,000']], decimals: 0, xTitle: 'concurrent flows' },
    { title: 'DNS queries/s by names', items: [['dns1_qps', '1'], ['dns10000_qps', '10,000']], decimals: 0, xTitle: 'registered names' },
    { title: 'DNS avg latency us by names', items: [['dns1_lat_us', '1'], ['dns10000_lat_us', '10,000']], decimals: 0, xTitle: 'registered names' }] },
];

/** The two series, as the charts name them, and the bench rows they come from. */
export const SERIES: readonly (readonly [string, string])[] = [['kernel', 'bridge'], ['vsw', 'vsw']];
const COLORS = ['#8c8c8c', '#1f77b4'];
const BAR_COLOR = '#d62728';

/** One datum of a panel: a figure (kind value) or a bar's target (kind bar). */
export interface Datum {
  kind: 'value' | 'bar';
  x: string;
  side?: string;
  value?: number;
  target?: number;
  label: string;
}

/** The data of a panel from the run's medians; empty when nothing of it was measured. */
export function panelData(res: Results, p: PanelDef): Datum[] {
  const out: Datum[] = [];
  for (const [metric, x] of p.items) {
    for (const [side, row] of SERIES) {
      const v = res.median(row, metric);
      if (v !== null) out.push({ kind: 'value', x, side, value: v, label: fixed(v, p.decimals) });
    }
    const bar = barOf(metric);
    const t = bar ? barTarget(bar, res.median('bridge', metric)) : null;
    if (bar && t !== null && res.has('vsw', metric)) out.push({ kind: 'bar', x, target: t, label: `bar ${barText(bar)}` });
  }
  return out;
}

function panelSpec(p: PanelDef, data: Datum[]): Record<string, unknown> {
  const xs = p.items.map(([, x]) => x);
  const x = { field: 'x', type: 'nominal', sort: xs, title: p.xTitle ?? null, axis: { labelAngle: 0 } };
  const y = { field: 'value', type: 'quantitative', title: null };
  const isValue = { filter: "datum.kind === 'value'" }, isBar = { filter: "datum.kind === 'bar'" };
  const bars = [...new Set(p.items.map(([m]) => barOf(m)).filter((b) => b !== undefined).map((b) => `bar ${barText(b)}`))];
  return {
    title: { text: p.title, fontSize: 11, ...(bars.length ? { subtitle: bars.join(', '), subtitleColor: BAR_COLOR, subtitleFontSize: 9 } : {}) },
    width: Math.max(110, 70 * xs.length),
    height: 150,
    data: { values: data },
    layer: [
      { transform: [isValue], mark: 'bar',
        encoding: { x, xOffset: { field: 'side', sort: SERIES.map(([s]) => s) }, y,
          color: { field: 'side', type: 'nominal', title: null, scale: { domain: SERIES.map(([s]) => s), range: COLORS } } } },
      { transform: [isValue], mark: { type: 'text', dy: -4, fontSize: 9 },
        encoding: { x, xOffset: { field: 'side', sort: SERIES.map(([s]) => s) }, y, text: { field: 'label' } } },
      { transform: [isBar], mark: { type: 'tick', color: BAR_COLOR, thickness: 2, opacity: 1 },
        encoding: { x, y: { field: 'target', type: 'quantitative' } } },
    ],
  };
}

/** The Vega-Lite spec of one family, or null when none of its figures is in `res`. */
export function familySpec(res: Results, f: FamilyDef, subtitle: readonly string[] = []): TopLevelSpec | null {
  const panels = f.panels.map((p) => [p, panelData(res, p)] as const).filter(([, d]) => d.some((x) => x.kind === 'value'));
  if (!panels.length) return null;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: f.title, subtitle: [...subtitle, 'kernel = Linux bridge (+ iptables MASQUERADE, dnsmasq); red tick = the bar vsw is held to (issue 13; bench/report/bars.ts)'],
      anchor: 'start', subtitleFontSize: 10 },
    columns: 4,
    concat: panels.map(([p, d]) => panelSpec(p, d)),
    config: { view: { stroke: null }, legend: { orient: 'top' } },
    background: 'white',
    padding: 10,
  } as unknown as TopLevelSpec;
}

/** Every family with figures in `res`: [name, spec]. */
export function familyCharts(res: Results, subtitle: readonly string[] = []): [string, TopLevelSpec][] {
  const out: [string, TopLevelSpec][] = [];
  for (const f of FAMILIES) {
    const s = familySpec(res, f, subtitle);
    if (s) out.push([f.name, s]);
  }
  return out;
}

/** The SVG of a Vega-Lite spec, rendered headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The charts' subtitle from conditions.txt: when, how many reps of how long, the load. */
export function chartSubtitle(conditions: string): string[] {
  const { reps, secs } = runShape(conditions);
  const when = (/^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(conditions) ?? []).slice(1).join(' ');
  const load = (/load avg at start: ([\d.]+)/.exec(conditions) ?? [])[1];
  const end = (/load avg at end: ([\d.]+)/.exec(conditions) ?? [])[1];
  const cpus = (/(\d+) CPUs/.exec(conditions) ?? [])[1];
  return [[when && `${when} UTC`, `median of ${reps} run${reps === '1' ? '' : 's'} of ${secs} s`, cpus && `${cpus} CPUs`,
    load && `load average ${load} at start${end ? `, ${end} at end` : ''}`].filter(Boolean).join(', ')];
}

/** chart-<family>.svg for every family with figures in DIR; returns the files written. */
export async function writeCharts(dir: string): Promise<string[]> {
  const res = Results.read(dir);
  const files: string[] = [];
  for (const [name, spec] of familyCharts(res, chartSubtitle(readConditions(dir)))) {
    const f = path.join(dir, `chart-${name}.svg`);
    fs.writeFileSync(f, await renderSvg(spec));
    files.push(f);
  }
  return files;
}
