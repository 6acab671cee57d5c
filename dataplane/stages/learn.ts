// learn: remember that the source MAC lives behind the ingress port, in the frame's network
// and VLAN. Never ends a frame: when the table cannot take the MAC even after eviction, the
// FDB counts a failure and the frame is still forwarded (a switch that cannot learn floods).
// Skipped in a dry run.

import type { Packet } from '../packet';
import type { Stage, StageContext } from './stage';
import { UPLINK_NET } from '../tables/neigh';

export class LearnStage implements Stage {
  readonly name = 'learn';
  /** Result of the last learn() (LEARN_* from the FDB), for traces. */
  last = -1;

  process(p: Packet, ctx: StageContext): boolean {
    // The uplink is not a switch port: outside MACs are the router's business (neighbours).
    if (p.netId === UPLINK_NET) { this.last = -1; return true; }
    if (!ctx.dryRun) p.learned = this.last = ctx.fdb.learn(p.netId, p.vlan, p.srcHi, p.srcLo, p.inPort, ctx.now);
    return true;
  }
}
