// The order of the stages, in one place. A frame goes through them top to bottom until one
// of them gives a verdict: parse (Ethernet), ingress (port, VLAN, network), learn (MAC
// table), gateway (the router: ARP, ping, DNS, NAT and routing, dispatched to the modules
// of dataplane/router/), forward (L2). A new stage is added here and in names.ts.

import type { Stage } from './stage';
import { ParseStage } from './parse';
import { IngressStage } from './ingress';
import { LearnStage } from './learn';
import { ForwardStage } from './forward';
import { GatewayStage } from './gateway';

import { STAGE_NAMES } from './names';

export { STAGE_NAMES, type StageName } from './names';

/** A fresh set of stages (each worker has its own: stages hold reusable views). */
export function makeStages(): Stage[] {
  const stages: Stage[] = [new ParseStage(), new IngressStage(), new LearnStage(), new GatewayStage(), new ForwardStage()];
  stages.forEach((s, i) => {
    if (s.name !== STAGE_NAMES[i]) throw new Error(`stage order mismatch at ${i}: ${s.name}`);
  });
  return stages;
}
