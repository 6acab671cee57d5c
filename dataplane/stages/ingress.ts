// ingress: which network (broadcast domain) the frame belongs to, from its ingress port.
// A port that belongs to no network (unknown, or being removed) drops the frame as
// no-such-network. Every port is an access port of its network's single VLAN (0 =
// untagged); 802.1Q trunks add their decision here.

import { DROP } from '../drops';
import type { Packet } from '../packet';
import { NO_NET } from '../tables/ports';
import type { Stage, StageContext } from './stage';

export class IngressStage implements Stage {
  readonly name = 'ingress';

  process(p: Packet, ctx: StageContext): boolean {
    const net = p.inPort >= 0 && p.inPort < ctx.ports.maxPorts ? ctx.ports.netOf[p.inPort] : NO_NET;
    if (net === NO_NET) { p.dropWith(DROP['no-such-network']); return false; }
    p.netId = net;
    p.vlan = 0;
    return true;
  }
}
