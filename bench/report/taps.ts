// The summary of e2e.sh's taps test (what `vsw capture` and live `vsw trace` cost): one row
// per condition with forwarding (mac1 method) and TCP, each against the same rep's
// no-tap condition (a), the daemon's and the tap CLI's CPU, and what the tap lost; then the
// noise between the two (a) runs, the daemon's RSS, system CPU and load. docs/BENCH-TAPS.md.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Results, fixed, median, readConditions, runShape, textTable } from './results';

export const CONDITIONS = ['ref', 'a1', 'b', 'c', 'd', 'e', 'a2'] as const;
type Condition = (typeof CONDITIONS)[number];

const LABEL: Readonly<Record<Condition, string>> = {
  ref: 'kernel bridge (reference, same run)', a1: '(a) vsw, no tap session', b: '(b) capture --port c2 -w /dev/null (every frame)',
  c: "(c) capture --port c2 --filter 'tcp port 9' (matches nothing)", d: "(d) trace --port c1 --filter 'udp port 9' (matches nothing)",
  e: '(e) trace --port c1 --format json (every frame)', a2: '(a) again, no tap session',
};

/** The row a condition is measured on: the reference on the kernel bridge, the rest on vsw. */
const rowOf = (c: Condition): string => (c === 'ref' ? 'bridge' : 'vsw');

export interface TapsSummary {
  rows: string[][];
  txt: string;
  md: string;
}

export class TapsFigures {
  constructor(private readonly res: Results) {}

  perRep(row: string, m: string): Map<string, number> {
    return this.res.byRep(row, m);
  }

  med(row: string, m: string): number | null {
    return median([...this.perRep(row, m).values()]);
  }

  sum(row: string, m: string): number {
    return [...this.perRep(row, m).values()].reduce((a, b) => a + b, 0);
  }

  /** Per rep, the (a) figure: the mean of its two (a) runs (a1, a2 bracket the other conditions), or a1 alone. */
  base(m: string): Map<string, number> {
    const a1 = this.perRep('vsw', `taps_a1_${m}`), a2 = this.perRep('vsw', `taps_a2_${m}`), b = new Map<string, number>();
    for (const [r, v] of a1) {
      const v2 = a2.get(r);
      b.set(r, v2 !== undefined ? (v + v2) / 2 : v);
    }
    return b;
  }

  /** Condition over (a): the median of the per-rep ratios, each rep's condition over the same rep's (a). */
  ratio(c: Condition, m: string): number | null {
    const a = this.base(m);
    return median([...this.perRep('vsw', `taps_${c}_${m}`)].flatMap(([r, v]) => {
      const ar = a.get(r);
      return ar !== undefined && ar > 0 ? [v / ar] : [];
    }));
  }

  /** The noise: (a) again over (a), per rep. */
  noise(m: string): string {
    const a1 = this.perRep('vsw', `taps_a1_${m}`), a2 = this.perRep('vsw', `taps_a2_${m}`);
    return [...a2].flatMap(([r, v]) => {
      const a = a1.get(r);
      return a !== undefined && a > 0 ? [fixed(v / a, 2)] : [];
    }).join(' ');
  }

  /** " (min-max)" over the reps, when there is more than one. */
  spread(row: string, m: string, d: number): string {
    const a = [...this.perRep(row, m).values()];
    return a.length > 1 ? ` (${fixed(Math.min(...a), d)}-${fixed(Math.max(...a), d)})` : '';
  }

  /** What the tap of condition `c` lost during test `k` (mac1 or tcp), summed over reps. */
  tapLost(c: Condition, k: string): string {
    const p = `taps_${c}_${k}`;
    if (c === 'b' || c === 'c') {
      const want = this.sum('vsw', `${p}_pcap_want`), got = this.sum('vsw', `${p}_pcap_got`), frames = this.sum('vsw', `${p}_frames`);
      if (!this.perRep('vsw', `${p}_pcap_got`).size) return '-';
      if (c === 'c') return `${got} B written (of ${frames} frames)`;
      const share = want > 0 ? 1 - got / want : 0;
      // 60-byte frames: a pcap record is 76 bytes, so frames lost = frames - written / 76
      return k === 'mac1' ? `${Math.max(0, frames - Math.round(got / 76))} of ${frames} frames (${fixed(100 * share, 1)} %)`
        : `${fixed(100 * share, 1)} % of the bytes (${frames} frames)`;
    }
    if (c === 'd' || c === 'e') {
      if (!this.perRep('vsw', `${p}_traces`).size) return '-';
      const frames = this.sum('vsw', `${p}_frames`), tr = this.sum('vsw', `${p}_traces`);
      return c === 'd' ? `${tr} traces (of ${frames} frames)` : `${Math.max(0, frames - tr)} of ${frames} frames (${fixed(frames ? 100 * (1 - tr / frames) : 0, 1)} %)`;
    }
    return '';
  }

  /** The conditions that were measured, in table order. */
  conditions(): Condition[] {
    return CONDITIONS.filter((c) => this.perRep(rowOf(c), `taps_${c}_mac1`).size || this.perRep(rowOf(c), `taps_${c}_tcp`).size);
  }

  /** [label, fwd kpps, / (a), daemon CPU, tap CPU, tap lost, TCP Gbit/s, / (a), retr, daemon CPU, tap CPU, tap lost] */
  row(c: Condition): string[] {
    const row = rowOf(c), ref = c === 'ref', p = `taps_${c}`;
    return [LABEL[c],
      fixed(this.med(row, `${p}_mac1`), 0) + this.spread(row, `${p}_mac1`, 0), ref ? '-' : fixed(this.ratio(c, 'mac1'), 3),
      ref ? '-' : fixed(this.med(row, `${p}_mac1_proccpu`), 2), fixed(this.med(row, `${p}_mac1_tapcpu`), 2), this.tapLost(c, 'mac1'),
      fixed(this.med(row, `${p}_tcp`), 2) + this.spread(row, `${p}_tcp`, 2), ref ? '-' : fixed(this.ratio(c, 'tcp'), 3), fixed(this.med(row, `${p}_tcp_retr`), 0),
      ref ? '-' : fixed(this.med(row, `${p}_tcp_proccpu`), 2), fixed(this.med(row, `${p}_tcp_tapcpu`), 2), this.tapLost(c, 'tcp')];
  }
}

const HEAD = ['condition', 'fwd rx kpps', '/ (a)', 'daemon CPU', 'tap CLI CPU', 'tap lost (sum over reps)',
  'TCP Gbit/s', '/ (a)', 'retr', 'daemon CPU', 'tap CLI CPU', 'tap lost (sum over reps)'];

/** The load averages (1 min) taps-load.txt recorded before each measurement. */
function loads(dir: string): number[] {
  const f = path.join(dir, 'taps-load.txt');
  if (!fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => Number((/load (\S+)/.exec(l) ?? [])[1])).filter(isFinite);
}

/** `cpus`: the machine's CPU count the system-CPU line names (this machine's by default). */
export function tapsSummary(dir: string, cpus: number = os.cpus().length): TapsSummary {
  const fig = new TapsFigures(Results.read(dir, (m) => m.startsWith('taps_')));
  const conds = fig.conditions();
  const rows = conds.map((c) => fig.row(c));
  const { reps, secs } = runShape(readConditions(dir));
  let txt = `taps: median of ${reps} reps of ${secs} s (min-max); "/ (a)" = median of the per-rep ratios to the same rep's (a) (the mean of its two (a) runs)\n\n`;
  txt += textTable(HEAD, rows, '  ', new Set([0, 5, 11]));
  if (conds.includes('a2')) txt += `\nnoise, (a) again / (a) per rep: forwarding ${fig.noise('mac1')}; TCP ${fig.noise('tcp')}\n`;
  const rss = conds.filter((c) => c !== 'ref').map((c) => {
    const mb = [...fig.perRep('vsw', `taps_${c}_tcp_rss_mb`).values(), ...fig.perRep('vsw', `taps_${c}_mac1_rss_mb`).values()];
    return `${c} ${fixed(Math.max(...mb), 0)}`;
  });
  txt += `vsw daemon RSS after each condition, max over reps (MB): ${rss.join(', ')}\n`;
  const sys = conds.map((c) => `${c} ${fixed(fig.med(rowOf(c), `taps_${c}_mac1_syscpu`), 2)}/${fixed(fig.med(rowOf(c), `taps_${c}_tcp_syscpu`), 2)}`);
  txt += `system CPU (cores of ${cpus}), fwd/TCP: ${sys.join(', ')}\n`;
  const l1 = loads(dir);
  if (l1.length) txt += `load average (1 min) before each measurement: ${fixed(Math.min(...l1), 2)}-${fixed(Math.max(...l1), 2)}, median ${fixed(median(l1), 2)}\n`;
  let md = `| condition (median of ${reps} x ${secs} s) | forwarding rx kpps | / (a) | daemon CPU | tap CLI CPU | tap lost | TCP Gbit/s | / (a) | daemon CPU | tap CLI CPU | tap lost |\n`;
  md += '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|\n';
  md += rows.map((r) => `| ${[r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[9], r[10], r[11]].join(' | ')} |`).join('\n') + '\n';
  return { rows, txt, md };
}
