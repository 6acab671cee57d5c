// ingress: which network (broadcast domain, VLAN) the frame belongs to, from its ingress
// port and its 802.1Q tag (docs/VLAN.md). Every later stage sees the frame untagged: a tag
// is removed here, in place (its PCP and DEI are kept in p.prio for the way out, where the
// loop's VLAN egress tags the frame again for the ports that carry its VLAN tagged).
//
// - Untagged frame: the port's untagged network (an access port's, a trunk's native VLAN).
//   A port with none (a trunk without --native, a tagged uplink) drops it: untagged-on-trunk.
// - A port of an untagged network (VLAN 0) is VLAN-unaware: tagged frames pass as they are,
//   data of that network (as on the Linux bridge without vlan_filtering).
// - 0x8100 with VID 0 (priority-tagged): the port's untagged network, tag removed.
// - 0x8100 with VID 1-4094: on an access port, tagged-on-access; on a trunk, the network it
//   carries under that VID (its native VLAN's VID included), else vlan-not-member.
// - 0x88a8 (802.1ad S-tag), or a second tag under the first: qinq. vsw is a C-VLAN bridge.
// - Tagged but shorter than 18 bytes: runt-after-untag (no Ethernet header would be left).
// Tags are seen whatever the kernel did with them: AF_PACKET hands them out of band and the
// native recv re-inserts them (FLAG_VLAN), so here every tag is in the frame.
// - Then port security (guard.ts): a container port may send only as its endpoint (MAC,
//   ARP sender, IPv4 source), else spoofed-source.
import { DROP } from '../drops';
import { sourceAllowed } from './guard';
import type { Packet } from '../packet';
import { NO_NET, type PortTable } from '../tables/ports';
import type { Stage, StageContext } from './stage';
import { ETHERTYPE_QINQ, ETH_HDR_LEN } from '../wire/ethernet';
import { isVlanTpid, popTag, TCI_PRIO_MASK, tciVid, VLAN_TAG_LEN, VlanView } from '../wire/vlan';

export class IngressStage implements Stage {
  readonly name = 'ingress';
  private readonly tag = new VlanView();

  process(p: Packet, ctx: StageContext): boolean {
    const ports = ctx.ports;
    const port = p.inPort;
    if (port < 0 || port >= ports.maxPorts) { p.dropWith(DROP['no-such-network']); return false; }
    const et = p.etherType;
    if (!isVlanTpid(et)) {
      const net = ports.netOf[port];
      if (net === NO_NET) {
        p.dropWith(ports.vidNet[port] !== undefined ? DROP['untagged-on-trunk'] : DROP['no-such-network']);
        return false;
      }
      p.netId = net;
      p.vlan = ports.pvid[port];
      return ports.guarded[port] === 0 || sourceAllowed(p, ports);
    }
    return this.tagged(p, ports, port, et) && (ports.guarded[port] === 0 || sourceAllowed(p, ports));
  }

  private tagged(p: Packet, ports: PortTable, port: number, et: number): boolean {
    const vidNet = ports.vidNet[port];
    const untagged = ports.netOf[port];
    if (vidNet === undefined) {
      if (untagged === NO_NET) { p.dropWith(DROP['no-such-network']); return false; }
      // A VLAN-unaware port (an untagged network): the tag is data.
      if (ports.pvid[port] === 0) { p.netId = untagged; p.vlan = 0; return true; }
    }
    if (et === ETHERTYPE_QINQ) { p.dropWith(DROP.qinq); return false; }
    const tag = this.tag;
    if (!tag.reset(p.buf, p.ethOff, p.ethLen)) { p.dropWith(DROP['runt-after-untag']); return false; }
    const tci = tag.tci;
    const vid = tciVid(tci);
    p.inTci = tci;
    let net: number;
    let vlan: number;
    if (vid === 0) {
      // Priority-tagged: the frame belongs to the port's untagged VLAN (802.1Q 6.9).
      net = untagged;
      vlan = ports.pvid[port];
      if (net === NO_NET) { p.dropWith(DROP['untagged-on-trunk']); return false; }
    } else if (vidNet === undefined) {
      p.dropWith(DROP['tagged-on-access']);
      return false;
    } else {
      net = vidNet[vid];
      vlan = vid;
      if (net === NO_NET) { p.dropWith(DROP['vlan-not-member']); return false; }
    }
    const inner = tag.innerEtherType;
    if (isVlanTpid(inner)) { p.dropWith(DROP.qinq); return false; }
    // Remove the tag: the vnet header and MACs move 4 bytes on (csum_start follows).
    p.off = popTag(p.buf, p.off, p.len, p.vnet);
    p.len -= VLAN_TAG_LEN;
    p.ethOff += VLAN_TAG_LEN;
    p.ethLen -= VLAN_TAG_LEN;
    p.etherType = inner;
    p.l3Off = p.ethOff + ETH_HDR_LEN;
    p.prio = tci & TCI_PRIO_MASK;
    p.netId = net;
    p.vlan = vlan;
    return true;
  }
}
