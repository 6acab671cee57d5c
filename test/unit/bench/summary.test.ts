import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Results, median, fixed, textTable } from '../../../bench/report/results';
import { e2eSummary, metricRows } from '../../../bench/report/e2e';
import { tapsSummary, TapsFigures } from '../../../bench/report/taps';
import { vlanSummary } from '../../../bench/report/vlan';

// Recorded runs of the bench (test/fixtures/bench/*/): raw.tsv, notes.txt, conditions.txt and
// the vsw stats snapshots as bench/e2e.sh left them. expected/ holds what the summaries
// printed for the same directory before they moved from the shell script into TypeScript.
const FIX = path.join(__dirname, '../../fixtures/bench');
const e2eDir = path.join(FIX, 'e2e');
const tapsDir = path.join(FIX, 'taps');
const expected = (dir: string, f: string): string => fs.readFileSync(path.join(dir, 'expected', f), 'utf8');
const row = (rows: string[][], label: string): string[] => {
  const r = rows.find((x) => x[0] === label);
  if (!r) throw new Error(`no row "${label}"`);
  return r;
};

describe('median', () => {
  it('is the middle value of an odd count, whatever the order', () => {
    expect(median([8.28, 6.61, 6.55])).toBe(6.61);
    expect(median([3, 1, 2, 5, 4])).toBe(3);
  });
  it('is the mean of the two middle values of an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([11, 13])).toBe(12);
  });
  it('is null for no values, and leaves its input alone', () => {
    expect(median([])).toBeNull();
    const a = [3, 1, 2];
    median(a);
    expect(a).toEqual([3, 1, 2]);
  });
});

describe('Results', () => {
  it('leaves out what did not happen: empty, nan and non-numeric values, short lines', () => {
    const r = Results.parse('vsw\tm\t1\t2\nvsw\tm\t2\tnan\nvsw\tm\t3\t\nvsw\tm\t4\tx\nvsw\tm\t5\nvsw\tm\t6\t4\n\n');
    expect(r.values('vsw', 'm')).toEqual([2, 4]);
    expect(r.median('vsw', 'm')).toBe(3);
    expect(r.sum('vsw', 'm')).toBe(6);
    expect(r.has('bridge', 'm')).toBe(false);
  });
  it('keeps one value per rep for byRep: the last one recorded', () => {
    const r = Results.parse('vsw\tm\t1\t10\nvsw\tm\t2\t20\nvsw\tm\t1\t30\n');
    expect([...r.byRep('vsw', 'm')]).toEqual([['1', 30], ['2', 20]]);
    expect(r.values('vsw', 'm')).toEqual([10, 20, 30]);
  });
  it('formats a missing figure as "-"', () => {
    expect(fixed(null, 2)).toBe('-');
    expect(fixed(NaN, 2)).toBe('-');
    expect(fixed(Infinity, 2)).toBe('-');
    expect(fixed(0.8125, 1)).toBe('0.8');
  });
  it('lays out a table with aligned columns', () => {
    expect(textTable(['a', 'bb'], [['xyz', '1'], ['q', '22']], '  ', new Set([0]))).toBe('a    bb\n---  --\nxyz   1\nq    22\n');
  });
});

describe('e2e summary of a recorded run (REPS=3: tcp_def ping mac1 nat_tcp_def dns)', () => {
  const s = e2eSummary(e2eDir);

  it('reports the median of the three reps per row, not the mean or a single rep', () => {
    // raw.tsv: bridge 8.282 6.613 6.554 (mean 7.15), vsw 2.139 3.667 4.291 (mean 3.37)
    expect(row(s.rows, 'TCP Gbit/s, default offloads').slice(1, 4)).toEqual(['6.61', '3.67', '0.55']);
    // bridge 148.794 130.833 128.195, vsw 66.597 66.545 70.394
    expect(row(s.rows, 'trafgen 60 B, 1 MAC: rx kpps').slice(1, 4)).toEqual(['131', '67', '0.51']);
    expect(row(s.rows, 'ping avg ms (200 x 10 ms)').slice(1, 4)).toEqual(['0.078', '0.237', '3.04']);
  });

  it('takes vsw/bridge as the ratio of the two medians', () => {
    // medians 27156.28 (bridge) and 28501.69 (vsw): 1.05; the median of the per-rep ratios
    // (0.72, 1.10, 0.98) would be 0.98
    expect(row(s.rows, 'DNS queries/s, 4-address name (bridge row: dnsmasq)').slice(1, 5))
      .toEqual(['27156', '28502', '1.05', 'dnsmasq 75991 (-c 1)']);
  });

  it('gives no ratio for counts (retransmits, loss) and none without a bridge figure', () => {
    expect(row(s.rows, 'TCP retransmits, default offloads')[3]).toBe('-');
    expect(row(s.rows, 'DNS queries lost %')[3]).toBe('-');
    expect(row(s.rows, 'vsw daemon CPU (cores), TCP default').slice(1, 4)).toEqual(['-', '0.37', '-']);
  });

  it('lists only the metrics that were measured, in the fixed order', () => {
    expect(metricRows(Results.read(e2eDir)).map((r) => r[5])).toEqual([
      'tcp_def_gbps', 'tcp_def_retr', 'ping_avg_ms', 'ping_p50_ms', 'mac1_tx_kpps', 'mac1_rx_kpps',
      'nat_tcp_def_gbps', 'nat_tcp_def_retr', 'dns_qps', 'dns_lat_us', 'dns_lost_pct', 'dns_proccpu',
      'tcp_def_proccpu', 'ping_proccpu', 'mac1_proccpu', 'nat_tcp_def_proccpu',
      'tcp_def_syscpu', 'ping_syscpu', 'mac1_syscpu', 'nat_tcp_def_syscpu', 'dns_syscpu']);
  });

  it('judges the bar and the routed checks on the medians and sums', () => {
    // issue 13's bars (bench/report/bars.ts), on the ratio of the medians
    expect(s.bar).toEqual([
      ['TCP Gbit/s, default offloads: vsw/kernel 0.55 (3.67 vs 6.61), bar \u2265 0.9x kernel', false],
      ['ping avg ms (200 x 10 ms): vsw/kernel 3.04 (0.237 vs 0.078), bar \u2264 1.5x kernel', false],
      ['trafgen 60 B, 1 MAC: rx kpps: vsw/kernel 0.51 (67 vs 131), bar \u2265 1.1x kernel', false],
      ['NAT TCP Gbit/s, default offloads: vsw/kernel 0.50 (3.41 vs 6.89), bar \u2265 1x kernel', false],
      ['DNS queries/s, 4-address name (bridge row: dnsmasq): vsw/kernel 1.05 (28502 vs 27156), bar \u2265 1.2x kernel', false],
      ['DNS avg latency us: vsw/kernel 0.91 (2927 vs 3202), bar \u2264 1x kernel', true],
    ]);
    expect(s.checks.map(([t, ok]) => [t.split(':')[0], ok])).toEqual([['nat_tcp_def', true], ['dns', true], ['dns', true]]);
    // 39168 + 57465 + 62643 queries answered over the three reps
    expect(s.checks[2][0]).toContain('vsw answered 159276 queries locally');
  });

  it('diffs the stats snapshots per test and prints each note once', () => {
    expect(s.txt).toContain('\nvsw drops per test (sum over reps):\n  mac1: rx-queue-full 60998\n');
    expect(s.txt).toContain('\nnotes:\n  vsw: ping rep 2: 0.5% loss\n  bridge: ethtool -K eth0 tx on in vb-b2 failed\n');
  });

  it('prints summary.txt, summary.md and summary.json as recorded (the shell summary\'s, with issue 13\'s bar)', () => {
    expect(s.txt).toBe(expected(e2eDir, 'summary.txt'));
    expect(s.md).toBe(expected(e2eDir, 'summary.md'));
    expect(s.json).toBe(expected(e2eDir, 'summary.json'));
    const json = JSON.parse(s.json) as { results: Record<string, Record<string, { median: number; values: number[] }>> };
    expect(json.results.bridge.tcp_def_gbps.median).toBe(6.612570957873845);
    expect(json.results.vsw.tcp_def_gbps.values).toHaveLength(3);
  });
});

describe('vlan summary', () => {
  const raw = fs.readFileSync(path.join(FIX, 'vlan', 'raw.tsv'), 'utf8');
  const out = vlanSummary(raw, 'refused by this kernel');
  const line = (label: string): string => {
    const l = out.split('\n').find((x) => x.startsWith(`| ${label} |`));
    if (!l) throw new Error(`no line "${label}"`);
    return l;
  };

  it('reports medians and tagged over untagged', () => {
    // tcp_def: kernel 9.1 9.5 8.8, untagged 3.0 3.25 3.5, tagged 2.4 2.8 2.6: 2.6 / 3.25 = 0.8
    expect(line('TCP Gbit/s, default offloads')).toBe('| TCP Gbit/s, default offloads | 9.10 | 3.25 | 2.60 | 0.800 |');
    expect(line('ping avg ms (200 x 10 ms)')).toBe('| ping avg ms (200 x 10 ms) | 0.11 | 0.55 | 0.62 | 1.127 |');
  });

  it('leaves a failed run (nan) out: the median of the two left is their mean', () => {
    expect(line('UDP 64 B received kpps')).toBe('| UDP 64 B received kpps | 30.00 | 25.00 | 12.00 | 0.480 |');
  });

  it('compares CPU per unit of work, and has no CPU row for ping', () => {
    // (0.55 / 2.6) / (0.6 / 3.25) = 1.146; udp (0.45 / 12) / (0.33 / 25) = 2.841
    expect(line("both daemons' CPU (cores), TCP Gbit/s, default offloads")).toBe("| both daemons' CPU (cores), TCP Gbit/s, default offloads | - | 0.60 | 0.55 | per unit of work: 1.146 |");
    expect(line("both daemons' CPU (cores), UDP 64 B received kpps")).toBe("| both daemons' CPU (cores), UDP 64 B received kpps | - | 0.33 | 0.45 | per unit of work: 2.841 |");
    expect(out).not.toContain("CPU (cores), ping");
    expect(out.endsWith('\nkernel bridge VLAN filtering: refused by this kernel\n')).toBe(true);
  });

  it('shows "-" for a row that was not measured', () => {
    const only = vlanSummary('row\ttest\trep\tvalue\tcpu\nkernel\tudp\t1\t30\tnan\n', 'not tried');
    expect(only).toContain('| UDP 64 B received kpps | 30.00 | - | - | - |');
  });
});

describe('taps summary of a recorded run (REPS=2, every condition)', () => {
  const s = tapsSummary(tapsDir, 2);

  it('reports the median of the two reps (their mean) with the spread', () => {
    // taps_b_mac1: 46.506 and 43.699 kpps
    expect(row(s.rows, '(b) capture --port c2 -w /dev/null (every frame)')[1]).toBe('45 (44-47)');
  });

  it('takes "/ (a)" as the median of the per-rep ratios to the mean of the same rep\'s two (a) runs', () => {
    // rep 1: 46.506 / ((58.581 + 49.170) / 2) = 0.863; rep 2: 43.699 / ((38.855 + 87.202) / 2) = 0.693;
    // median 0.778 (the ratio of the medians would be 0.772)
    expect(row(s.rows, '(b) capture --port c2 -w /dev/null (every frame)')[2]).toBe('0.778');
    const fig = new TapsFigures(Results.read(tapsDir));
    expect(fig.base('mac1').get('1')).toBeCloseTo(53.8755, 6);
    expect(fig.ratio('b', 'mac1')).toBeCloseTo((46.506 / 53.8755 + 43.699 / 63.0285) / 2, 9);
    expect(s.txt).toContain('noise, (a) again / (a) per rep: forwarding 0.84 2.24;');
  });

  it('gives the kernel reference no ratio and no daemon CPU', () => {
    const ref = row(s.rows, 'kernel bridge (reference, same run)');
    expect([ref[2], ref[3], ref[7], ref[9]]).toEqual(['-', '-', '-', '-']);
  });

  it('prints taps.txt and taps.md exactly as the shell summary did', () => {
    expect(s.txt).toBe(expected(tapsDir, 'taps.txt'));
    expect(s.md).toBe(expected(tapsDir, 'taps.md'));
  });
});
