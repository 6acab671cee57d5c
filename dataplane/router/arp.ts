// ARP for the switch's own addresses (docs/L3.md). On a network: every ARP teaches the
// neighbour table its sender (when in the subnet); a request for the gateway is answered in
// place, out of the port it came in on; a reply to the gateway MAC (to our own request) ends
// here; the rest goes on to L2 forwarding (containers ARP for each other). On the uplink:
// only ARP for the uplink address concerns us; the rest is the host's.
//
// What the neighbour table may learn (learnNeighbour, also used for IPv4 sources): an
// address inside the subnet that is not its network or broadcast address (on a /31 or /32
// both are hosts) nor one of the switch's own; the MAC of a station (the table itself refuses
// multicast, broadcast and all-zero MACs). Refusals are counted (neighbour `refused`).

import { DROP } from '../drops';
import { OUT_LOCAL, type Packet } from '../packet';
import type { L3Context, StageContext } from '../stages/stage';
import type { L3NetSpec, L3UplinkSpec } from '../tables/l3';
import { UPLINK_NET } from '../tables/neigh';
import { arpReplyInPlace } from '../l3/frames';
import { ArpView, ARP_OP_REPLY, ARP_OP_REQUEST } from '../wire/arp';
import { ETHERTYPE_ARP } from '../wire/ethernet';
import { ipToString } from '../wire/ip';
import { macToStringHiLo } from '../wire/mac';
import { VNET_HDR_LEN, writeEmptyVnetHdr } from '../wire/vnet';
import { outcome, type OutcomeTrace } from './outcome';

/** Answered ARP for a switch address. */
export const L3_ARP_REPLY = outcome('arp-reply', (name, t) => {
  const a = tracedArp(t);
  if (a === null) return `${name}:${t.egress}`;
  // A dry run leaves the request as it was; a live run has turned it into the reply.
  const asked = a.op === ARP_OP_REQUEST ? a.tpa : a.spa;
  const l3 = t.ctx.l3;
  const net = l3?.table.byNet[t.p.netId];
  const u = l3?.table.uplink;
  const mac = net !== undefined ? macToStringHiLo(net.gwMacHi, net.gwMacLo) : u ? macToStringHiLo(u.macHi, u.macLo) : '?';
  return `${name}: ${ipToString(asked)} is-at ${mac}${t.egress}`;
});

/** ARP addressed to the switch (a reply to our request): ends here. */
export const L3_ARP_CONSUMED = outcome('arp-consumed', (name, t) => {
  const a = tracedArp(t);
  return a === null ? `${name}:${t.egress}` : `${name}: ${senderText(a, t)}, to the switch (consumed)`;
});

/** ARP seen on a network (sender learned), forwarded at L2. */
export const L3_ARP_LEARNED = outcome('arp-learned', (name, t) => {
  const a = tracedArp(t);
  return a === null ? `${name}:${t.egress}` : `${name}: ${senderText(a, t)}${t.egress}`;
});

const arp = new ArpView();

/**
 * Teach the neighbour table ip -> MAC, seen on network `net` (a vsw network id or UPLINK_NET)
 * whose subnet is (subnet, mask), unless ip is no neighbour's (see the header): then the
 * refusal is counted. Not in a dry run. Callers have checked ip is inside the subnet.
 */
export function learnNeighbour(ctx: StageContext, l3: L3Context, net: number, subnet: number, mask: number,
  ip: number, macHi: number, macLo: number): void {
  if (ctx.dryRun) return;
  ip >>>= 0;
  const hostBits = (~mask) >>> 0;
  if (ip === 0 || l3.table.isSwitchIp(ip) || (hostBits > 1 && (ip === (subnet >>> 0) || ip === ((subnet | hostBits) >>> 0)))) {
    l3.neigh.refuse();
    return;
  }
  l3.neigh.learn(net, ip, macHi, macLo, ctx.now);
}

/** ARP on a vsw network. true = on to L2 forwarding. */
export function arpFromNet(p: Packet, ctx: StageContext, l3: L3Context, net: L3NetSpec): boolean {
  const a = arp;
  if (!a.reset(p.buf, p.l3Off, p.ethOff + p.ethLen - p.l3Off) || !a.isEthernetIpv4) return true;
  const spa = a.spa;
  // 0.0.0.0: an address probe (RFC 5227), which teaches nothing.
  if (((spa & net.mask) >>> 0) === net.subnet && spa !== 0) {
    learnNeighbour(ctx, l3, net.id, net.subnet, net.mask, spa, a.shaHi, a.shaLo);
  }
  const op = a.op;
  if (op === ARP_OP_REQUEST && a.tpa === net.gwIp) {
    replyArp(p, ctx, net.gwMacHi, net.gwMacLo, net.gwIp);
    return false;
  }
  if (op === ARP_OP_REPLY && p.dstHi === net.gwMacHi && p.dstLo === net.gwMacLo) {
    p.l3 = L3_ARP_CONSUMED;
    p.out = OUT_LOCAL;
    return false;
  }
  p.l3 = L3_ARP_LEARNED;
  return true;
}

/** ARP on the uplink: for the uplink address, or not ours (the host's). Always a verdict. */
export function arpFromUplink(p: Packet, ctx: StageContext, l3: L3Context, u: L3UplinkSpec): boolean {
  const a = arp;
  if (!a.reset(p.buf, p.l3Off, p.ethOff + p.ethLen - p.l3Off) || !a.isEthernetIpv4) {
    p.dropWith(DROP['bad-arp']);
    return false;
  }
  const forUs = a.tpa === u.ip;
  const spa = a.spa;
  if (forUs && spa !== 0 && l3.table.inUplinkSubnet(spa)) {
    learnNeighbour(ctx, l3, UPLINK_NET, u.subnet, u.mask, spa, a.shaHi, a.shaLo);
  }
  if (forUs && a.op === ARP_OP_REQUEST) { replyArp(p, ctx, u.macHi, u.macLo, u.ip); return false; }
  if (forUs && a.op === ARP_OP_REPLY) { p.l3 = L3_ARP_CONSUMED; p.out = OUT_LOCAL; return false; }
  p.dropWith(DROP['uplink-not-ours']);
  return false;
}

function replyArp(p: Packet, ctx: StageContext, macHi: number, macLo: number, ip: number): void {
  p.l3 = L3_ARP_REPLY;
  if (!ctx.dryRun) {
    const n = arpReplyInPlace(p.buf, p.ethOff, p.ethLen, macHi, macLo, ip);
    if (n === 0) { p.dropWith(DROP['bad-arp']); return; }
    // The reply is a new length (60): fix the lengths; offloads no longer apply.
    p.ethLen = n;
    p.len = n + (p.vnet ? VNET_HDR_LEN : 0);
    if (p.vnet) writeEmptyVnetHdr(p.buf, p.off);
  }
  p.out = p.inPort;
}

// ------------------------------------------------------------------ trace wording

const traced = new ArpView();

/** The ARP packet of a traced frame; null when it holds none (the line then names the outcome only). */
function tracedArp(t: OutcomeTrace): ArpView | null {
  const p = t.p;
  if (p.etherType !== ETHERTYPE_ARP || !traced.reset(p.buf, p.l3Off, p.ethOff + p.ethLen - p.l3Off)) return null;
  return traced;
}

/** `10.0.0.2 is-at 02:42:...`, and whether a dry run skipped learning it. */
function senderText(a: ArpView, t: OutcomeTrace): string {
  const learn = t.ctx.dryRun ? ' (dry run, not learned)' : '';
  return `${ipToString(a.spa)} is-at ${macToStringHiLo(a.shaHi, a.shaLo)}${learn}`;
}
