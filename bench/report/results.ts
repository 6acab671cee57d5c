// The raw results of a bench run and the arithmetic every summary shares.
//
// raw.tsv holds one measurement per line: row, metric, rep, value (tab-separated; e2e.sh's
// `rec`). A value that is empty, "nan" or not a finite number is a measurement that did not
// happen and is left out. Every median in the bench summaries is `median` below: the middle
// value, or the mean of the two middle values of an even count.

import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Sample {
  readonly rep: string;
  readonly value: number;
}

/** The middle value of `values` (the mean of the two middle ones for an even count); null for none. */
export function median(values: readonly number[]): number | null {
  const s = [...values].sort((x, y) => x - y);
  const n = s.length;
  if (n === 0) return null;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** `v` with `d` decimals, or "-" when there is no finite figure. */
export function fixed(v: number | null | undefined, d: number): string {
  return v === null || v === undefined || !isFinite(v) ? '-' : v.toFixed(d);
}

/** The measurements of a run, keyed by row and metric, in the order raw.tsv lists them. */
export class Results {
  private readonly samples = new Map<string, Sample[]>();

  /** Parse raw.tsv text; `keep` picks the metrics wanted (all by default). */
  static parse(text: string, keep: (metric: string) => boolean = () => true): Results {
    const r = new Results();
    for (const line of text.split('\n')) {
      const [row, metric, rep, v] = line.split('\t');
      if (!metric || v === undefined || v === '' || !isFinite(Number(v)) || !keep(metric)) continue;
      const k = key(row, metric);
      let list = r.samples.get(k);
      if (!list) r.samples.set(k, (list = []));
      list.push({ rep: rep ?? '', value: Number(v) });
    }
    return r;
  }

  static read(dir: string, keep?: (metric: string) => boolean): Results {
    return Results.parse(fs.readFileSync(path.join(dir, 'raw.tsv'), 'utf8'), keep);
  }

  has(row: string, metric: string): boolean {
    return this.samples.has(key(row, metric));
  }

  /** Every value recorded for row/metric, in file order. */
  values(row: string, metric: string): number[] {
    return (this.samples.get(key(row, metric)) ?? []).map((s) => s.value);
  }

  /** One value per rep (a rep recorded twice keeps its last value), in the order reps first appear. */
  byRep(row: string, metric: string): Map<string, number> {
    return new Map((this.samples.get(key(row, metric)) ?? []).map((s) => [s.rep, s.value]));
  }

  median(row: string, metric: string): number | null {
    return median(this.values(row, metric));
  }

  sum(row: string, metric: string): number {
    return this.values(row, metric).reduce((a, b) => a + b, 0);
  }

  /** [row, metric, values] for every series, in the order raw.tsv first lists them. */
  *series(): IterableIterator<[string, string, number[]]> {
    for (const [k, list] of this.samples) {
      const [row, metric] = k.split('\t');
      yield [row, metric, list.map((s) => s.value)];
    }
  }
}

function key(row: string, metric: string): string {
  return `${row}\t${metric}`;
}

/** conditions.txt of a run (what ran, where, under which load), trimmed; "" when absent. */
export function readConditions(dir: string): string {
  const f = path.join(dir, 'conditions.txt');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : '';
}

/** REPS and T as conditions.txt states them ("?" when it does not). */
export function runShape(conditions: string): { reps: string; secs: string } {
  return {
    reps: (/REPS=(\d+)/.exec(conditions) ?? [])[1] ?? '?',
    secs: (/T=([\d.]+) s/.exec(conditions) ?? [])[1] ?? '?',
  };
}

/**
 * A plain-text table: columns as wide as their widest cell, joined by `sep`; the columns in
 * `left` are left-aligned, the others right-aligned; trailing blanks trimmed.
 */
export function textTable(head: readonly string[], rows: readonly (readonly string[])[], sep: string, left: ReadonlySet<number>): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: readonly string[]): string =>
    r.map((c, i) => (left.has(i) ? c.padEnd(w[i]) : c.padStart(w[i]))).join(sep).trimEnd();
  return `${line(head)}\n${w.map((n) => '-'.repeat(n)).join(sep)}\n${rows.map(line).join('\n')}\n`;
}
