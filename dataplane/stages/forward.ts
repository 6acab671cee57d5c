// forward: pick the egress. Broadcast and multicast flood to every other port of the
// network; a known unicast destination goes to its port only; an unknown one floods.
// A destination learned on the ingress port itself is dropped as reflected (the frame has
// already reached its segment: sending it back would duplicate it), like the Linux bridge
// and Open vSwitch ("learned port is input port").

import { DROP } from '../drops';
import { OUT_FLOOD, type Packet } from '../packet';
import type { Stage, StageContext } from './stage';
import { ETHERTYPE_ARP } from '../wire/ethernet';

export class ForwardStage implements Stage {
  readonly name = 'forward';

  process(p: Packet, ctx: StageContext): boolean {
    if (p.dstMulticast) {
      // --arp-proxy (VXLAN): a request for a known remote station is answered, not flooded.
      if (p.etherType === ETHERTYPE_ARP && ctx.arpProxy?.[p.netId]?.answer(p, ctx) === true) return false;
      p.out = OUT_FLOOD;
      return false;
    }
    const port = ctx.fdb.lookup(p.netId, p.vlan, p.dstHi, p.dstLo);
    if (port < 0) { p.out = OUT_FLOOD; return false; }
    if (port === p.inPort) { p.dropWith(DROP.reflected); return false; }
    p.out = port;
    return false;
  }
}
