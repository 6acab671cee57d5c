// Runs the stages over a frame. Counts, per stage, how many frames it ended (a verdict).
// A tracer, when set, is told after each stage what the frame looks like; with none set the
// cost is one null check per stage.

import type { Packet } from './packet';
import { OUT_NONE } from './packet';
import { DROP } from './drops';
import type { Stage, StageContext } from './stages/stage';
import { makeStages } from './stages/order';

export interface Tracer {
  step(stage: string, p: Packet, ctx: StageContext): void;
}

export class Pipeline {
  readonly stages: Stage[];
  /** Frames that ended at each stage (same order as stages). */
  readonly ended: Float64Array;
  tracer: Tracer | null = null;

  /** `ended` may be given (a view into shared stats memory) or is allocated. */
  constructor(stages: Stage[] = makeStages(), ended?: Float64Array) {
    this.stages = stages;
    if (ended && ended.length < stages.length) throw new RangeError('pipeline: counter array too short');
    this.ended = ended ?? new Float64Array(stages.length);
  }

  /** Decide one frame: on return p.out is a port id, OUT_FLOOD, or OUT_DROP with p.drop. */
  run(p: Packet, ctx: StageContext): void {
    const stages = this.stages;
    const tracer = this.tracer;
    let i = 0;
    try {
      for (; i < stages.length; i++) {
        const go = stages[i].process(p, ctx);
        if (tracer !== null) tracer.step(stages[i].name, p, ctx);
        if (!go) { this.ended[i]++; return; }
      }
    } catch {
      // A bug in a stage: drop this frame under its own name, keep the worker running.
      p.dropWith(DROP['stage-error']);
      this.ended[Math.min(i, stages.length - 1)]++;
      return;
    }
    // No stage decided: a pipeline bug, never a silent loss.
    if (p.out === OUT_NONE) p.dropWith(DROP['no-egress']);
  }
}
