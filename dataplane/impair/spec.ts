// What an impairment does to the frames of one port in one direction, as plain numbers (the
// control plane parses tc-style text into this: control/impair.ts). The same object goes to
// the workers (workers/protocol.ts ImpairMsg), into state.json, and into a replay snapshot.
//
// Units: milliseconds, fractions (0..1, not percent), bits per second, bytes, frames.

export const DISTRIBUTIONS = ['uniform', 'normal', 'pareto'] as const;
export type Distribution = (typeof DISTRIBUTIONS)[number];

/** netem's `loss gemodel p r 1-h 1-k` (fractions): GOOD->BAD p, BAD->GOOD r, loss in BAD 1-h, in GOOD 1-k. */
export interface GilbertModel {
  kind: 'gilbert';
  p: number;
  r: number;
  /** Loss probability in the bad state (netem's 1-h). */
  lossBad: number;
  /** Loss probability in the good state (netem's 1-k). */
  lossGood: number;
}

/** netem's `loss state p13 p31 p32 p23 p14` (fractions): the 4-state Markov model. */
export interface FourStateModel {
  kind: 'state';
  p13: number;
  p31: number;
  p32: number;
  p23: number;
  p14: number;
}

export type LossModel = GilbertModel | FourStateModel;

export interface ImpairSpec {
  /** Added delay, ms. */
  delay: number;
  /** Delay variation, ms: the half-width (uniform) or standard deviation (normal, pareto). */
  jitter: number;
  distribution: Distribution;
  /** Random (Bernoulli) loss probability; 0 when `lossModel` is set. */
  loss: number;
  lossModel?: LossModel;
  duplicate: number;
  corrupt: number;
  /** Probability a frame is sent at once instead of delayed (needs delay > 0). */
  reorder: number;
  /** Reorder only every `gap`th frame at most (netem's gap; 1 = any frame). */
  gap: number;
  /** Bits per second; 0 = no rate limit. */
  rate: number;
  /** Token bucket depth, bytes (0: frames leave one serialisation time apart, as netem's rate). */
  burst: number;
  /** Frames the delay queue holds at most (netem's limit). */
  limit: number;
  /** Bytes the delay queue holds at most (its preallocated pool). */
  limitBytes: number;
  /** Seeds the port's PRNG (unsigned 32-bit). */
  seed: number;
}

/** netem's default limit (frames). */
export const DEFAULT_LIMIT = 1000;
/** The delay pool of one port, one direction, one worker: room for ~250 64 KB TCP segments. */
export const DEFAULT_LIMIT_BYTES = 16 * 1024 * 1024;

/** A spec that does nothing, to build on (tests, parsers). */
export function emptySpec(seed = 1): ImpairSpec {
  return {
    delay: 0, jitter: 0, distribution: 'uniform', loss: 0, duplicate: 0, corrupt: 0, reorder: 0, gap: 1,
    rate: 0, burst: 0, limit: DEFAULT_LIMIT, limitBytes: DEFAULT_LIMIT_BYTES, seed,
  };
}

/** Largest pool the delay queue may be given (bytes). */
export const MAX_LIMIT_BYTES = 256 * 1024 * 1024;

/**
 * What is wrong with a spec read from elsewhere (state.json, a replay snapshot): the first
 * field out of range, as 'loss: 1.5 is not a fraction from 0 to 1'; undefined when it is good.
 * (The control plane's parser (control/impair.ts) only ever makes good ones.)
 */
export function checkSpec(s: ImpairSpec): string | undefined {
  const fraction = (name: string, v: number | undefined): string | undefined =>
    (v === undefined || !(v >= 0 && v <= 1) ? `${name}: ${v} is not a fraction from 0 to 1` : undefined);
  const within = (name: string, v: number, min: number, max: number): string | undefined =>
    (!(v >= min && v <= max) ? `${name}: ${v} is not from ${min} to ${max}` : undefined);
  const m = s.lossModel;
  const model = m === undefined ? [] : m.kind === 'gilbert'
    ? [fraction('lossModel.p', m.p), fraction('lossModel.r', m.r), fraction('lossModel.lossBad', m.lossBad), fraction('lossModel.lossGood', m.lossGood)]
    : [fraction('lossModel.p13', m.p13), fraction('lossModel.p31', m.p31), fraction('lossModel.p32', m.p32), fraction('lossModel.p23', m.p23), fraction('lossModel.p14', m.p14)];
  return [
    within('delay', s.delay, 0, 60_000), within('jitter', s.jitter, 0, 60_000),
    DISTRIBUTIONS.includes(s.distribution) ? undefined : `distribution: ${s.distribution} is not one of ${DISTRIBUTIONS.join(', ')}`,
    fraction('loss', s.loss), fraction('duplicate', s.duplicate), fraction('corrupt', s.corrupt), fraction('reorder', s.reorder),
    ...model,
    within('gap', s.gap, 1, 1_000_000), within('rate', s.rate, 0, 1e12), within('burst', s.burst, 0, MAX_LIMIT_BYTES),
    within('limit', s.limit, 1, 100_000), within('limitBytes', s.limitBytes, 65_600, MAX_LIMIT_BYTES),
    within('seed', s.seed, 0, 0xffffffff),
  ].find((x) => x !== undefined);
}
