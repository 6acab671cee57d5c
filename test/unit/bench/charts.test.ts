import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Results } from '../../../bench/report/results';
import { FAMILIES, Datum, chartSubtitle, familyCharts, familySpec, panelData, renderSvg, writeCharts } from '../../../bench/report/charts';
import { BARS, barOf, meetsBar } from '../../../bench/report/bars';

// A run's raw.tsv as e2e.sh writes it (row, metric, rep, value): three reps of TCP, one of
// ping, the scale bench's containers series for both rows and its 1-worker figure for vsw only.
const RAW = [
  'bridge\ttcp_def_gbps\t1\t12', 'bridge\ttcp_def_gbps\t2\t10', 'bridge\ttcp_def_gbps\t3\t14',
  'vsw\ttcp_def_gbps\t1\t9', 'vsw\ttcp_def_gbps\t2\t7', 'vsw\ttcp_def_gbps\t3\t8',
  'bridge\tping_avg_ms\t1\t0.080', 'vsw\tping_avg_ms\t1\t0.260',
  'bridge\tpairs2_rx_kpps\t1\t500', 'vsw\tpairs2_rx_kpps\t1\t600',
  'bridge\tpairs8_rx_kpps\t1\t470', 'vsw\tpairs8_rx_kpps\t1\t95',
  'vsw\tw1_rx_kpps\t1\t950',
].join('\n') + '\n';
const res = Results.parse(RAW);
const family = (name: string) => {
  const f = FAMILIES.find((x) => x.name === name);
  if (!f) throw new Error(`no family ${name}`);
  return f;
};
const panel = (family_: string, title: string) => {
  const p = family(family_).panels.find((x) => x.title === title);
  if (!p) throw new Error(`no panel ${title}`);
  return p;
};
const values = (d: Datum[]) => d.filter((x) => x.kind === 'value').map((x) => [x.x, x.side, x.value]);
const bars = (d: Datum[]) => d.filter((x) => x.kind === 'bar').map((x) => [x.x, x.target]);

describe('bars', () => {
  it('judges a ratio bar against the kernel of the same run, an absolute one on its own', () => {
    expect(meetsBar(BARS.tcp_def_gbps, 10, 9)).toBe(true);
    expect(meetsBar(BARS.tcp_def_gbps, 10, 8.9)).toBe(false);
    expect(meetsBar(BARS.ping_avg_ms, 0.08, 0.26)).toBe(false);
    expect(meetsBar(BARS.udp_loss_pct, 0.8, 4)).toBe(true);
    expect(meetsBar(BARS.udp_loss_pct, null, 53)).toBe(false);
    expect(meetsBar(BARS.tcp_def_gbps, null, 9)).toBeNull();
  });
  it('gives a scale figure the bar of the figure it grows from, and counts none', () => {
    expect(barOf('pairs32_rx_kpps')).toBe(BARS.mac1_rx_kpps);
    expect(barOf('w1_gbps')).toBe(BARS.tcp_def_gbps);
    expect(barOf('nat10000_rx_kpps')).toBe(BARS.nat_tcp_def_gbps);
    expect(barOf('dns10000_lat_us')).toBe(BARS.dns_lat_us);
    expect(barOf('fdb10000_entries')).toBeUndefined();
    expect(barOf('nat10_ct_entries')).toBeUndefined();
  });
});

describe('chart data', () => {
  it('puts both series side by side at their medians, and the bar at its ratio of the kernel', () => {
    const d = panelData(res, panel('throughput', 'TCP, default offloads'));
    expect(values(d)).toEqual([['Gbit/s', 'kernel', 12], ['Gbit/s', 'vsw', 8]]);
    expect(bars(d)).toEqual([['Gbit/s', 0.9 * 12]]);
    expect(d.find((x) => x.kind === 'bar')?.label).toBe('bar \u2265 0.9x kernel');
    const p = panelData(res, panel('latency', 'ping avg (200 x 10 ms)'));
    expect(bars(p)[0][1]).toBeCloseTo(1.5 * 0.08, 9);
  });
  it('gives a scale panel one group per size, in order, with a bar where the kernel has a figure', () => {
    const d = panelData(res, panel('scaling', 'forwarding rx kpps, N/2 pairs at once'));
    expect(values(d)).toEqual([['2', 'kernel', 500], ['2', 'vsw', 600], ['8', 'kernel', 470], ['8', 'vsw', 95]]);
    expect(bars(d)).toEqual([['2', 550], ['8', 1.1 * 470]]);
    // 1 worker: vsw only (no kernel figure there): a bar, but nowhere to draw it
    const w = panelData(res, panel('scaling', 'forwarding rx kpps by vsw workers'));
    expect(values(w)).toEqual([['1', 'vsw', 950], ['2', 'kernel', 500], ['2', 'vsw', 600]]);
    expect(bars(w)).toEqual([['2', 550]]);
  });
  it('leaves out the families and panels with no figure', () => {
    expect(familyCharts(res).map(([n]) => n)).toEqual(['throughput', 'latency', 'scaling']);
    const spec = familySpec(res, family('latency')) as unknown as { concat: { title: { text: string } }[] };
    expect(spec.concat.map((c) => c.title.text)).toEqual(['ping avg (200 x 10 ms)']);
    expect(familySpec(Results.parse(''), family('throughput'))).toBeNull();
  });
  it('says when, how and under what load in the subtitle', () => {
    expect(chartSubtitle('2026-12-03T16:43:08+00:00 kernel 6.18, 2 CPUs, node v20; T=2 s per run, REPS=1 (medians)\nload avg at start: 3.10 1 1\nload avg at end: 5.20 2 2'))
      .toEqual(['2026-12-03 16:43 UTC, median of 1 run of 2 s, 2 CPUs, load average 3.10 at start, 5.20 at end']);
  });
});

describe('chart rendering (Vega, headless)', () => {
  it('draws an SVG with both series, the bar and the figures', async () => {
    const spec = familySpec(res, family('throughput'), ['a subtitle']);
    expect(spec).not.toBeNull();
    const svg = await renderSvg(spec!);
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of ['kernel', 'vsw', 'TCP, default offloads', 'bar \u2265 0.9x kernel', '12.00', '8.00', 'a subtitle'])
      expect(svg).toContain(`>${text}<`);
    // the panel's marks: one bar per series at its median, the bar's tick at 0.9 x 12
    const marks = (role: string) => [...svg.matchAll(new RegExp(`aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="${role}"`, 'g'))].map((m) => m[1]);
    expect(marks('bar')).toEqual(['x: Gbit/s; value: 12; side: kernel', 'x: Gbit/s; value: 8; side: vsw']);
    expect(marks('tick')).toEqual(['x: Gbit/s; target: 10.8']);
  });
  it('writes one chart-<family>.svg per family with figures into the run directory', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-charts-'));
    try {
      fs.writeFileSync(path.join(dir, 'raw.tsv'), RAW);
      const files = await writeCharts(dir);
      expect(files.map((f) => path.basename(f))).toEqual(['chart-throughput.svg', 'chart-latency.svg', 'chart-scaling.svg']);
      const scaling = fs.readFileSync(path.join(dir, 'chart-scaling.svg'), 'utf8');
      expect(scaling).toContain('>containers<');
      expect(scaling).toContain('>95<');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
