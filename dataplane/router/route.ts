// Routing a packet the router has decided to forward (docs/L3.md): the TTL (time exceeded
// back to the sender when it runs out), the next hop (the address itself inside a vsw network
// or on the uplink subnet, else the uplink gateway), its MAC from the neighbour table (a miss
// asks by ARP and drops the frame), the new Ethernet header, and the egress port (the uplink,
// or the target network's MAC table: flood when unknown).

import { DROP } from '../drops';
import { OUT_FLOOD, type Packet } from '../packet';
import type { L3Context, StageContext } from '../stages/stage';
import type { L3NetSpec } from '../tables/l3';
import { UPLINK_NET } from '../tables/neigh';
import { decTtl } from '../nat';
import { writeArpRequest, writeIcmpError, ICMP_EXC_TTL } from '../l3/frames';
import { EthernetView } from '../wire/ethernet';
import { ICMP_TIME_EXCEEDED } from '../wire/icmp';
import type { Datagram } from './datagram';
import { L3_NONE, describeFlow, outcome } from './outcome';
import { icmpErrors } from './icmp-limit';

/** Routed without translation. */
export const L3_ROUTED = outcome('routed', describeFlow);

const eth = new EthernetView();

/**
 * Sent to the gateway for an address of a vsw network (target): routed back into the
 * network it came from; another network is isolated (inter-network).
 */
export function routeOnLink(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram, net: L3NetSpec, target: L3NetSpec): void {
  if (target !== net) { p.dropWith(DROP['inter-network']); return; }
  p.l3 = L3_ROUTED;
  routeTo(p, ctx, l3, d, d.dst, false);
}

/**
 * TTL left to forward the packet? If not: time exceeded back to the sender (never about an
 * ICMP error), and the frame dropped (ttl-exceeded); when the ICMP error rate limit
 * (icmp-limit.ts) holds the error back, the frame is dropped as icmp-ratelimited instead. Checked before a connection is created:
 * a packet that dies here (a traceroute probe) must leave no connection behind, as Linux
 * never confirms one.
 */
export function ttlOk(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram): boolean {
  if (d.ip.ttl > 1) return true;
  if (!ctx.dryRun && !d.icmpError) {
    if (!icmpErrors.take()) { p.dropWith(DROP['icmp-ratelimited']); return false; }
    // From the gateway of the network it came from; from the uplink (published ports) there
    // is no network gateway: from the uplink address.
    const net = l3.table.byNet[p.netId];
    const u = p.netId === UPLINK_NET ? l3.table.uplink : null;
    if (net !== undefined) timeExceeded(p, l3, d, net.gwMacHi, net.gwMacLo, net.gwIp);
    else if (u !== null) timeExceeded(p, l3, d, u.macHi, u.macLo, u.ip);
  }
  p.dropWith(DROP['ttl-exceeded']);
  return false;
}

function timeExceeded(p: Packet, l3: L3Context, d: Datagram, macHi: number, macLo: number, ip: number): void {
  const e = l3.emit;
  const off = e.alloc();
  if (off < 0) return;
  const n = writeIcmpError(e.buf, off, macHi, macLo, p.srcHi, p.srcLo, ip, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, p.buf, p.l3Off, d.end);
  if (n > 0) e.send(off, n, p.inPort, p.netId);
}

/**
 * Send the (already translated) packet to dstIp: into the vsw network that holds it, or out
 * of the uplink (to dstIp when on-link, else to the uplink gateway). Sets MACs, p.netId and
 * p.out; a neighbour miss asks by ARP and drops the frame (neigh-miss). ttlDone: the caller
 * has checked the TTL already.
 */
export function routeTo(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram, dstIp: number, ttlDone: boolean): void {
  if (!ttlDone && !ttlOk(p, ctx, l3, d)) return;
  const target = l3.table.netOfIp(dstIp);
  let net: number;
  let nh: number;
  let srcHi: number;
  let srcLo: number;
  let srcIp: number;
  let port: number;
  if (target !== undefined) {
    net = target.id; nh = dstIp; srcHi = target.gwMacHi; srcLo = target.gwMacLo; srcIp = target.gwIp; port = -1;
  } else {
    const u = l3.table.uplink;
    if (u === null) { p.dropWith(DROP['no-route']); return; }
    net = UPLINK_NET; nh = l3.table.inUplinkSubnet(dstIp) ? dstIp : u.gateway;
    srcHi = u.macHi; srcLo = u.macLo; srcIp = u.ip; port = u.port;
  }
  if (!l3.neigh.lookup(net, nh, ctx.now)) {
    if (!ctx.dryRun && l3.neigh.solicit(net, nh, ctx.now)) {
      const e = l3.emit;
      const off = e.alloc();
      if (off >= 0) e.send(off, writeArpRequest(e.buf, off, srcHi, srcLo, srcIp, nh), port >= 0 ? port : OUT_FLOOD, net);
    }
    p.dropWith(DROP['neigh-miss']);
    return;
  }
  const hi = l3.neigh.hi;
  const lo = l3.neigh.lo;
  if (!ctx.dryRun) decTtl(p.buf, p.l3Off);
  eth.reset(p.buf, p.ethOff, p.ethLen);
  eth.setDstHiLo(hi, lo);
  eth.setSrcHiLo(srcHi, srcLo);
  p.dstHi = hi; p.dstLo = lo; p.srcHi = srcHi; p.srcLo = srcLo;
  p.netId = net;
  if (port >= 0) { p.out = port; return; }
  // The MAC table is keyed by VLAN too: the target network's (0 for an untagged network).
  const fdbPort = ctx.fdb.lookup(net, ctx.ports.vlanOfNet[net], hi, lo);
  p.out = fdbPort >= 0 ? fdbPort : OUT_FLOOD;
  if (p.l3 === L3_NONE) p.l3 = L3_ROUTED;
}
