// gateway: the switch's router (docs/L3.md). It ends the frames that are the switch's own
// business — ARP and ping for its addresses, DNS to the gateway, everything sent to the
// gateway MAC to be routed (masquerade out of the uplink, published ports in, replies of
// tracked connections), everything arriving on the uplink — and lets the rest go on to L2
// forwarding. With no L3 context (ctx.l3 === null: pure L2 tests and tools) it passes all.
//
// This file only dispatches, in the order the checks must run; each protocol is a module of
// dataplane/router/: arp.ts, local.ts (ping, DNS), nat.ts (connections), route.ts (TTL, next
// hop, neighbours). What the router did is left in p.l3 (an outcome of router/outcome.ts,
// registered by the module that decides it) for traces. In a dry run it learns nothing,
// creates no connection and sends nothing: a new flow is reported as what would happen.

import { DROP } from '../drops';
import type { Packet } from '../packet';
import type { L3Context, Stage, StageContext } from './stage';
import type { L3NetSpec } from '../tables/l3';
import { UPLINK_NET } from '../tables/neigh';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../wire/ethernet';
import { ICMP_ECHO_REQUEST } from '../wire/icmp';
import { L3_NONE } from '../router/outcome';
import { Datagram } from '../router/datagram';
import { arpFromNet, arpFromUplink, learnNeighbour } from '../router/arp';
import { answerPing, dnsTcpReply, gatewayDns } from '../router/local';
import { DNS_PORT, icmpErrorIn, masquerade, publishedFromNet, publishedFromUplink, tracked } from '../router/nat';
import { routeOnLink } from '../router/route';

export class GatewayStage implements Stage {
  readonly name = 'gateway';
  /** The IPv4 packet being routed, read once per frame. */
  private readonly d = new Datagram();

  process(p: Packet, ctx: StageContext): boolean {
    const l3 = ctx.l3;
    p.l3 = L3_NONE;
    if (l3 === null) return true;
    if (p.netId === UPLINK_NET) return this.fromUplink(p, ctx, l3);
    const net = l3.table.byNet[p.netId];
    if (net === undefined) return true;
    if (p.etherType === ETHERTYPE_ARP) return arpFromNet(p, ctx, l3, net);
    if (p.dstHi === net.gwMacHi && p.dstLo === net.gwMacLo) {
      if (p.etherType !== ETHERTYPE_IPV4) { p.dropWith(DROP['not-routed']); return false; }
      this.fromNet(p, ctx, l3, net);
      return false;
    }
    if (p.etherType !== ETHERTYPE_IPV4) return true;
    if (p.inPort === net.hostPort) return dnsTcpReply(p, ctx, l3, this.d, net);
    // icc=false: only a known host port is exempt (with no host port, hostPort is -1, and so
    // is the lookup of an unknown destination).
    if (!net.icc && (net.hostPort < 0 || ctx.fdb.lookup(p.netId, p.vlan, p.dstHi, p.dstLo) !== net.hostPort)) {
      p.dropWith(DROP['icc-disabled']);
      return false;
    }
    return true;
  }

  /** IPv4 to the gateway MAC of network net. Always a verdict. */
  private fromNet(p: Packet, ctx: StageContext, l3: L3Context, net: L3NetSpec): void {
    const d = this.d;
    if (!d.read(p)) return;
    const src = d.src;
    if (((src & net.mask) >>> 0) === net.subnet) learnNeighbour(ctx, l3, net.id, net.subnet, net.mask, src, p.srcHi, p.srcLo);
    const toSwitch = l3.table.isSwitchIp(d.dst);
    if (toSwitch && d.icmpType === ICMP_ECHO_REQUEST) { answerPing(p, ctx, d, net.gwMacHi, net.gwMacLo); return; }
    if (d.dst === net.gwIp && d.dport === DNS_PORT && gatewayDns(p, ctx, l3, d, net)) return;
    if (d.icmpError) { icmpErrorIn(p, ctx, l3, d); return; }
    if (tracked(p, ctx, l3, d)) return;
    if (toSwitch) { publishedFromNet(p, ctx, l3, d); return; }
    const target = l3.table.netOfIp(d.dst);
    if (target !== undefined) { routeOnLink(p, ctx, l3, d, net, target); return; }
    if (net.internal) { p.dropWith(DROP['internal-network']); return; }
    masquerade(p, ctx, l3, d, net);
  }

  /** A frame from the uplink: only what is addressed to the uplink MAC and address is ours. Always a verdict. */
  private fromUplink(p: Packet, ctx: StageContext, l3: L3Context): boolean {
    const u = l3.table.uplink;
    if (u === null) { p.dropWith(DROP['uplink-not-ours']); return false; }
    if (p.etherType === ETHERTYPE_ARP) return arpFromUplink(p, ctx, l3, u);
    if (p.dstHi !== u.macHi || p.dstLo !== u.macLo) { p.dropWith(DROP['uplink-not-ours']); return false; }
    if (p.etherType !== ETHERTYPE_IPV4) { p.dropWith(DROP['not-routed']); return false; }
    const d = this.d;
    if (!d.read(p)) return false;
    if (d.dst !== u.ip) { p.dropWith(DROP['uplink-not-ours']); return false; }
    if (l3.table.inUplinkSubnet(d.src)) learnNeighbour(ctx, l3, UPLINK_NET, u.subnet, u.mask, d.src, p.srcHi, p.srcLo);
    if (d.icmpType === ICMP_ECHO_REQUEST) { answerPing(p, ctx, d, u.macHi, u.macLo); return false; }
    if (d.icmpError) { icmpErrorIn(p, ctx, l3, d); return false; }
    if (tracked(p, ctx, l3, d)) return false;
    publishedFromUplink(p, ctx, l3, d);
    return false;
  }
}
