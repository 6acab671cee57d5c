// The switch's own services (docs/L3.md): ping to a switch address is answered in place; DNS
// to a gateway — over UDP answered in the worker for a local name (l3/dns.ts) or handed to
// the main thread, over TCP made a connection to the daemon's listener on the host TAP
// address, whose replies come back here from the host port.

import { DROP } from '../drops';
import { OUT_LOCAL, OUT_NONE, type Packet } from '../packet';
import type { L3Context, StageContext } from '../stages/stage';
import type { L3NetSpec } from '../tables/l3';
import { CT_DIR_REPLY, CT_KIND_DNS } from '../tables/conntrack';
import { DNS_ANSWERED, DNS_DROPPED } from '../l3/dns';
import { icmpEchoReplyInPlace } from '../l3/frames';
import { EthernetView } from '../wire/ethernet';
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HDR_LEN } from '../wire/ipv4';
import { TCP_MIN_HDR_LEN } from '../wire/tcp';
import { writeEmptyVnetHdr } from '../wire/vnet';
import type { Datagram } from './datagram';
import { L3_CT, L3_CT_NEW, DNS_PORT, refuse, translate, wouldCreate } from './nat';
import { describeFlow, outcome } from './outcome';

/** Answered an echo request to a switch address. */
export const L3_PING = outcome('ping', (name, t) =>
  `${name}: ${t.before.ok ? t.before.text() : 'echo request'} answered${t.egress}`);
/** DNS query handed to the main thread. */
export const L3_DNS_PUNT = outcome('dns-punt', (name, t) =>
  `${name}: ${t.before.ok ? t.before.text() : 'query'} to the DNS server (main thread)`);
/** DNS query for a local name answered here, in place (or dropped by the answerer's rules). */
export const L3_DNS_ANSWER = outcome('dns-answer', (name, t) =>
  `${name}: ${t.before.ok ? t.before.text() : 'query'} answered by this worker${t.egress}`);
/** From the host TAP: a reply of a DNS-over-TCP connection. */
export const L3_HOST_CT = outcome('host-conntrack', describeFlow);

const eth = new EthernetView();

/** Answer an echo request to a switch address (from the MAC given), out of the port it came in on. */
export function answerPing(p: Packet, ctx: StageContext, d: Datagram, macHi: number, macLo: number): void {
  p.l3 = L3_PING;
  if (!ctx.dryRun) {
    if (!icmpEchoReplyInPlace(p.buf, p.ethOff, p.l3Off, d.end, macHi, macLo)) { p.dropWith(DROP['bad-ip']); return; }
    // The reply keeps the request's length; offloads (if any) no longer apply.
    if (p.vnet) writeEmptyVnetHdr(p.buf, p.off);
  }
  p.out = p.inPort;
}

/**
 * To the gateway's port 53: DNS over UDP or TCP (true, decided), or neither (false: TCP on a
 * network with no host port; routed as any other packet to the gateway).
 */
export function gatewayDns(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram, net: L3NetSpec): boolean {
  if (d.proto === IPPROTO_UDP) {
    // A local name is answered here; anything else goes to the main thread (forwarding).
    if (!ctx.dryRun && l3.dns !== null) {
      const r = l3.dns.answer(p, d.l4Off, d.end, net.gwMacHi, net.gwMacLo);
      if (r === DNS_ANSWERED) { p.l3 = L3_DNS_ANSWER; return true; }
      if (r === DNS_DROPPED) { p.l3 = L3_DNS_ANSWER; p.out = OUT_LOCAL; return true; }
    }
    p.l3 = L3_DNS_PUNT;
    p.out = OUT_LOCAL;
    if (!ctx.dryRun && !l3.emit.punt(p)) p.dropWith(DROP['punt-full']);
    return true;
  }
  if (d.proto !== IPPROTO_TCP || net.hostPort < 0) return false;
  // DNS over TCP: to the daemon's listener on the host TAP address.
  let h = l3.ct.find(d.proto, d.src, d.dst, d.sport, d.dport, ctx.now);
  if (h < 0) {
    if (ctx.dryRun) { wouldCreate(p); return true; }
    h = l3.ct.create(d.proto, d.src, d.dst, d.sport, d.dport, net.hostIp, d.src, DNS_PORT, d.sport,
      false, net.id, -1, CT_KIND_DNS, ctx.now);
    if (h < 0) { refuse(p, h); return true; }
    p.l3 = L3_CT_NEW;
  } else p.l3 = L3_CT;
  translate(p, ctx, l3, d, h);
  if (p.out !== OUT_NONE) return true;
  eth.reset(p.buf, p.ethOff, p.ethLen);
  eth.setDstHiLo(net.hostMacHi, net.hostMacLo);
  eth.setSrcHiLo(net.gwMacHi, net.gwMacLo);
  p.out = net.hostPort;
  return true;
}

/**
 * IPv4 from the host TAP, not to the gateway: a reply of a DNS-over-TCP connection is
 * translated back (from the gateway) and goes on to L2 forwarding, to the container's MAC;
 * anything else is bridged as it is. true = on to L2 forwarding.
 */
export function dnsTcpReply(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram, net: L3NetSpec): boolean {
  // Cheap pre-check before parsing: TCP, and not a fragment. A fragment is never a reply we
  // translate: it is bridged, as any other host-to-container traffic.
  const len = p.ethOff + p.ethLen - p.l3Off;
  if (len < IPV4_MIN_HDR_LEN + TCP_MIN_HDR_LEN) return true;
  const ip = d.ip;
  ip.reset(p.buf, p.l3Off, len);
  if (ip.protocol !== IPPROTO_TCP || ip.isFragment) return true;
  if (!d.read(p)) return false;
  if (d.src !== net.hostIp || d.sport !== DNS_PORT) return true;
  const h = l3.ct.find(d.proto, d.src, d.dst, d.sport, d.dport, ctx.now);
  if (h < 0 || (h & 1) !== CT_DIR_REPLY) return true;
  p.l3 = L3_HOST_CT;
  translate(p, ctx, l3, d, h);
  if (p.out !== OUT_NONE) return false;
  eth.reset(p.buf, p.ethOff, p.ethLen);
  eth.setSrcHiLo(net.gwMacHi, net.gwMacLo);
  p.srcHi = net.gwMacHi;
  p.srcLo = net.gwMacLo;
  return true;
}
