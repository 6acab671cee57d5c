// The random models of an impairment, after netem (net/sched/sch_netem.c): the delay's
// distribution (tabledist) and the loss generators (random, Gilbert-Elliott, 4-state).
// Every draw comes from the port's Prng; nothing reads a clock.

import type { Prng } from '../rng';
import type { Distribution, LossModel } from './spec';

/**
 * A delay in ms: mu plus a variation of scale sigma, never negative.
 *  - uniform: mu +- sigma (netem's default, no table);
 *  - normal: sigma is the standard deviation (Box-Muller from two draws);
 *  - pareto: netem's table, a Pareto of shape 3 moved to mean 0 and scaled by 4/3 (heavy
 *    right tail: mostly a little under mu, now and then far above).
 */
export function sampleDelay(rng: Prng, mu: number, sigma: number, dist: Distribution): number {
  if (sigma <= 0) return mu;
  let x: number;
  if (dist === 'uniform') {
    x = 2 * rng.float() - 1;
  } else if (dist === 'normal') {
    const u = 1 - rng.float(); // (0, 1]
    x = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.float());
  } else {
    const u = 1 - rng.float();
    x = (Math.pow(u, -1 / 3) - 1.5) * (4 / 3);
  }
  const d = mu + sigma * x;
  return d > 0 ? d : 0;
}

// The 4-state model's states (netem's names).
const TX_GAP = 1;
const TX_BURST = 2;
const LOST_BURST = 3;
const LOST_GAP = 4;
// Gilbert-Elliott.
const GOOD = 1;
const BAD = 2;

/** Decides frame by frame whether it is lost: Bernoulli, or a Markov model with its state. */
export class LossGenerator {
  private state: number;

  constructor(private readonly p: number, private readonly model: LossModel | undefined) {
    this.state = model === undefined ? 0 : model.kind === 'gilbert' ? GOOD : TX_GAP;
  }

  lost(rng: Prng): boolean {
    const m = this.model;
    if (m === undefined) return rng.chance(this.p);
    if (m.kind === 'gilbert') {
      // Two draws per frame, as netem: first the transition, then the loss in the new state.
      if (this.state === GOOD) {
        if (rng.chance(m.p)) this.state = BAD;
      } else if (rng.chance(m.r)) {
        this.state = GOOD;
      }
      return rng.chance(this.state === GOOD ? m.lossGood : m.lossBad);
    }
    // The 4-state model: one draw chooses the next state; entering a LOST state loses the frame.
    const u = rng.float();
    switch (this.state) {
      case TX_GAP:
        if (u < m.p14) { this.state = LOST_GAP; return true; }
        if (u < m.p14 + m.p13) { this.state = LOST_BURST; return true; }
        return false;
      case TX_BURST:
        if (u < m.p23) { this.state = LOST_BURST; return true; }
        return false;
      case LOST_BURST:
        if (u < m.p32) { this.state = TX_BURST; return false; }
        if (u < m.p32 + m.p31) { this.state = TX_GAP; return false; }
        return true;
      default: // LOST_GAP: an isolated loss, back to the gap
        this.state = TX_GAP;
        return false;
    }
  }
}

/** The long-run loss rate of a model (tests, and `vsw impair ls`). */
export function expectedLoss(p: number, m: LossModel | undefined): number {
  if (m === undefined) return p;
  if (m.kind === 'gilbert') {
    // Stationary P(BAD) = p / (p + r); the loss is drawn after the transition.
    if (m.p + m.r === 0) return m.lossGood;
    const bad = m.p / (m.p + m.r);
    return bad * m.lossBad + (1 - bad) * m.lossGood;
  }
  // Solve the 4-state chain's stationary distribution (pi = pi P) by power iteration.
  let pi = [1, 0, 0, 0];
  for (let it = 0; it < 10000; it++) {
    const [g, b, lb, lg] = pi;
    const n = [
      g * (1 - m.p13 - m.p14) + lb * m.p31 + lg,
      b * (1 - m.p23) + lb * m.p32,
      g * m.p13 + b * m.p23 + lb * (1 - m.p31 - m.p32),
      g * m.p14,
    ];
    pi = n;
  }
  return pi[2] + pi[3];
}
