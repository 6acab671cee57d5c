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
