// `vsw impair set` settings: tc-style text (20ms, 10%, 10mbit, 64k, gilbert:p,r,1-h,1-k)
// into an ImpairSpec (dataplane/impair/spec.ts), and back into text for `vsw impair ls`.
// The CLI checks each option with these parsers (a usage error names the option) and the
// daemon parses the request again (a 400 names the field): one home for every unit and
// every range. A bad value changes nothing.

import { InvalidArgumentError } from './errors';
import {
  DEFAULT_LIMIT, DEFAULT_LIMIT_BYTES, DISTRIBUTIONS, emptySpec, type Distribution, type ImpairSpec, type LossModel,
} from '../dataplane/impair/spec';

export const IMPAIR_DIRECTIONS = ['out', 'in', 'both'] as const;
export type ImpairDirection = (typeof IMPAIR_DIRECTIONS)[number];

/** The API's body for POST /impair: the CLI's option values as text (integers as numbers). */
export interface ImpairRequest {
  port: string;
  direction?: ImpairDirection;
  delay?: string;
  jitter?: string;
  distribution?: string;
  loss?: string;
  lossModel?: string;
  duplicate?: string;
  corrupt?: string;
  reorder?: string;
  gap?: number;
  rate?: string;
  burst?: string;
  limit?: number;
  seed?: number;
}

export const IMPAIR_FIELDS: readonly (keyof ImpairRequest)[] = [
  'port', 'direction', 'delay', 'jitter', 'distribution', 'loss', 'lossModel', 'duplicate', 'corrupt', 'reorder', 'gap',
  'rate', 'burst', 'limit', 'seed',
];

/** Longest delay (and jitter) accepted: a frame waits at most this long. */
export const MAX_DELAY_MS = 60_000;
export const MAX_LIMIT = 100_000;

const TIME_UNITS: Record<string, number> = { us: 0.001, usec: 0.001, ms: 1, msec: 1, s: 1000, sec: 1000 };
const RATE_UNITS: Record<string, number> = {
  bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12, bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9,
  kibit: 1024, mibit: 1024 ** 2, gibit: 1024 ** 3,
};
const SIZE_UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

function numberWithUnit(text: string, what: string, form: string): { n: number; unit: string } {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z%]*)\s*$/i.exec(text);
  if (!m) throw new InvalidArgumentError(`${what} '${text}': expected ${form}`);
  return { n: Number(m[1]), unit: m[2].toLowerCase() };
}

/** A time, tc-style: 20ms, 500us, 1.5s (a unit is required). Milliseconds. */
export function parseTime(text: string, what = 'delay'): number {
  const form = 'a time with its unit, e.g. 20ms, 500us or 1s';
  const { n, unit } = numberWithUnit(text, what, form);
  const k = TIME_UNITS[unit];
  if (k === undefined) throw new InvalidArgumentError(`${what} '${text}': expected ${form}`);
  const ms = n * k;
  if (ms > MAX_DELAY_MS) throw new InvalidArgumentError(`${what} '${text}': at most ${MAX_DELAY_MS / 1000}s`);
  return ms;
}

/** A percentage, 10% or 10 (percent either way), as a fraction. */
export function parsePercent(text: string, what: string): number {
  const form = 'a percentage from 0 to 100, e.g. 10% or 0.5%';
  const { n, unit } = numberWithUnit(text, what, form);
  if ((unit !== '' && unit !== '%') || n > 100) throw new InvalidArgumentError(`${what} '${text}': expected ${form}`);
  return n / 100;
}

/** A rate, tc-style: 10mbit, 1gbit, 500kbit, 1mbps (bytes), a bare number = bit/s. Bits per second. */
export function parseRate(text: string): number {
  const form = 'a rate like 10mbit, 500kbit, 1gbit or 2mbps (bytes/s)';
  const { n, unit } = numberWithUnit(text, 'rate', form);
  const k = unit === '' ? 1 : RATE_UNITS[unit];
  if (k === undefined) throw new InvalidArgumentError(`rate '${text}': expected ${form}`);
  const bps = n * k;
  if (bps < 8 || bps > 1e12) throw new InvalidArgumentError(`rate '${text}': from 8bit to 1tbit`);
  return bps;
}

/** A size, tc-style: 32k, 1m, 1500b, a bare number = bytes (k, m = 1024, 1024^2). Bytes. */
export function parseSize(text: string, what = 'burst'): number {
  const form = 'a size like 1500, 32k or 1m (bytes)';
  const { n, unit } = numberWithUnit(text, what, form);
  const k = unit === '' ? 1 : SIZE_UNITS[unit];
  if (k === undefined) throw new InvalidArgumentError(`${what} '${text}': expected ${form}`);
  const b = Math.round(n * k);
  if (b > DEFAULT_LIMIT_BYTES) throw new InvalidArgumentError(`${what} '${text}': at most ${DEFAULT_LIMIT_BYTES / 1024 / 1024}m`);
  return b;
}

/**
 * --loss-model: `gilbert:P[,R[,1-H[,1-K]]]` (netem's gemodel, percentages: P good->bad, R
 * bad->good, 1-H loss in the bad state, 1-K loss in the good state; defaults as tc-netem(8):
 * R = 100 - P, 1-H = 100, 1-K = 0) or `state:P13[,P31[,P32[,P23[,P14]]]]` (netem's 4-state
 * model; defaults P31 = 100 - P13, P32 = 0, P23 = 100, P14 = 0).
 */
export function parseLossModel(text: string): LossModel {
  const form = "'gilbert:P[,R[,1-H[,1-K]]]' or 'state:P13[,P31[,P32[,P23[,P14]]]]' (percentages)";
  const m = /^(gilbert|gemodel|state):(.+)$/i.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`loss model '${text}': expected ${form}`);
  const parts = m[2].split(',');
  const kind = m[1].toLowerCase();
  const max = kind === 'state' ? 5 : 4;
  if (parts.length > max) throw new InvalidArgumentError(`loss model '${text}': at most ${max} values (${form})`);
  const v = parts.map((p, i) => parsePercent(p, `loss model value ${i + 1}`));
  if (kind !== 'state') {
    const p = v[0];
    return { kind: 'gilbert', p, r: v[1] ?? 1 - p, lossBad: v[2] ?? 1, lossGood: v[3] ?? 0 };
  }
  const p13 = v[0];
  const s = { kind: 'state' as const, p13, p31: v[1] ?? 1 - p13, p32: v[2] ?? 0, p23: v[3] ?? 1, p14: v[4] ?? 0 };
  if (s.p13 + s.p14 > 1 || s.p31 + s.p32 > 1) throw new InvalidArgumentError(`loss model '${text}': P13 + P14 and P31 + P32 must each be at most 100%`);
  return s;
}

export function parseDistribution(text: string): Distribution {
  if (!DISTRIBUTIONS.includes(text as Distribution)) {
    throw new InvalidArgumentError(`distribution '${text}': one of ${DISTRIBUTIONS.join(', ')}`);
  }
  return text as Distribution;
}

function integerIn(v: number | undefined, what: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}`);
  return v;
}

/**
 * A request's settings as a spec and its direction, every value and combination checked
 * (netem's rules: --reorder needs --delay; --gap needs --reorder; --burst needs --rate; one
 * of --loss and --loss-model). `seed` when the request has none (the engine draws one).
 */
export function parseImpair(r: ImpairRequest, seed: number): { direction: ImpairDirection; spec: ImpairSpec } {
  const direction = r.direction ?? 'out';
  if (!IMPAIR_DIRECTIONS.includes(direction)) throw new InvalidArgumentError(`direction '${String(direction)}': one of ${IMPAIR_DIRECTIONS.join(', ')}`);
  const s = emptySpec(integerIn(r.seed, 'seed', 0, 0xffffffff) ?? seed);
  if (r.delay !== undefined) s.delay = parseTime(r.delay, 'delay');
  if (r.jitter !== undefined) s.jitter = parseTime(r.jitter, 'jitter');
  if (r.distribution !== undefined) {
    if (r.jitter === undefined) throw new InvalidArgumentError('--distribution shapes the jitter: give --jitter too');
    s.distribution = parseDistribution(r.distribution);
  }
  if (r.loss !== undefined && r.lossModel !== undefined) throw new InvalidArgumentError('give --loss or --loss-model, not both');
  if (r.loss !== undefined) s.loss = parsePercent(r.loss, 'loss');
  if (r.lossModel !== undefined) s.lossModel = parseLossModel(r.lossModel);
  if (r.duplicate !== undefined) s.duplicate = parsePercent(r.duplicate, 'duplicate');
  if (r.corrupt !== undefined) s.corrupt = parsePercent(r.corrupt, 'corrupt');
  if (r.reorder !== undefined) {
    s.reorder = parsePercent(r.reorder, 'reorder');
    if (s.delay === 0) throw new InvalidArgumentError('--reorder sends some frames at once and delays the others: give --delay too');
  }
  if (r.gap !== undefined) {
    if (r.reorder === undefined) throw new InvalidArgumentError('--gap needs --reorder');
    s.gap = integerIn(r.gap, 'gap', 1, 1_000_000) ?? 1;
  }
  if (r.rate !== undefined) s.rate = parseRate(r.rate);
  if (r.burst !== undefined) {
    if (r.rate === undefined) throw new InvalidArgumentError('--burst is the rate\'s token bucket: give --rate too');
    s.burst = parseSize(r.burst, 'burst');
  }
  s.limit = integerIn(r.limit, 'limit', 1, MAX_LIMIT) ?? DEFAULT_LIMIT;
  const any = s.delay > 0 || s.jitter > 0 || s.loss > 0 || s.lossModel !== undefined || s.duplicate > 0 || s.corrupt > 0 || s.rate > 0;
  if (!any) throw new InvalidArgumentError('nothing to impair: give at least one of --delay, --jitter, --loss, --loss-model, --duplicate, --corrupt, --reorder, --rate');
  return { direction, spec: s };
}

function pct(f: number): string {
  return `${Number((f * 100).toPrecision(6))}%`;
}

function timeText(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000}s` : ms < 1 ? `${Number((ms * 1000).toPrecision(6))}us` : `${Number(ms.toPrecision(6))}ms`;
}

function rateText(bps: number): string {
  for (const [u, k] of [['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const) if (bps >= k) return `${Number((bps / k).toPrecision(6))}${u}`;
  return `${bps}bit`;
}

/** The settings as `vsw impair set` options would give them (only what is set): for `ls`. */
export function impairText(s: ImpairSpec): string {
  const out: string[] = [];
  if (s.delay > 0) out.push(`delay ${timeText(s.delay)}`);
  if (s.jitter > 0) out.push(`jitter ${timeText(s.jitter)} ${s.distribution}`);
  if (s.loss > 0) out.push(`loss ${pct(s.loss)}`);
  const m = s.lossModel;
  if (m?.kind === 'gilbert') out.push(`loss-model gilbert:${[m.p, m.r, m.lossBad, m.lossGood].map(pct).join(',')}`);
  if (m?.kind === 'state') out.push(`loss-model state:${[m.p13, m.p31, m.p32, m.p23, m.p14].map(pct).join(',')}`);
  if (s.duplicate > 0) out.push(`duplicate ${pct(s.duplicate)}`);
  if (s.corrupt > 0) out.push(`corrupt ${pct(s.corrupt)}`);
  if (s.reorder > 0) out.push(`reorder ${pct(s.reorder)}${s.gap > 1 ? ` gap ${s.gap}` : ''}`);
  if (s.rate > 0) out.push(`rate ${rateText(s.rate)}${s.burst > 0 ? ` burst ${s.burst % 1024 === 0 ? `${s.burst / 1024}k` : s.burst}` : ''}`);
  if (s.limit !== DEFAULT_LIMIT) out.push(`limit ${s.limit}`);
  return out.join(' ');
}
