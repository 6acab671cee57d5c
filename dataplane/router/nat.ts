// Connection tracking and translation (docs/L3.md): a packet of a tracked connection is
// translated and routed; a new one becomes a connection — masquerade out of the uplink, a
// published port reached from outside (DNAT, the client address kept, as Docker does) or
// from inside (DNAT and SNAT to the target network's gateway, so the answer comes back
// through the switch); an ICMP error about a connection travels back along it, quoted
// headers translated too. The packet rewrites themselves are dataplane/nat.ts; the table is
// dataplane/tables/conntrack.ts. In a dry run no connection is created: a new flow is
// reported as what would happen (would-create).

import { DROP } from '../drops';
import { OUT_LOCAL, OUT_NONE, type Packet } from '../packet';
import type { L3Context, StageContext } from '../stages/stage';
import type { L3NetSpec } from '../tables/l3';
import { UPLINK_NET } from '../tables/neigh';
import { CT_ERR_NO_PORT, CT_ERR_PORT_LIMIT, CT_ERR_SOURCE_LIMIT, CT_KIND_DNAT, CT_KIND_MASQ, isForwarderPort } from '../tables/conntrack';
import { ICMP_QUOTE_MALFORMED, ICMP_QUOTE_OK, icmpErrorQuote, natRewrite, natRewriteIcmpError, type NatTuple } from '../nat';
import { ICMP_ECHO_REQUEST } from '../wire/icmp';
import { ipToString } from '../wire/ip';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4';
import type { Datagram } from './datagram';
import { describeFlow, outcome, type OutcomeTrace } from './outcome';
import { routeTo, ttlOk } from './route';

/** Translated by an existing connection. */
export const L3_CT = outcome('conntrack', describeFlow);
/** Translated by a connection created now. */
export const L3_CT_NEW = outcome('conntrack-new', describeFlow);
/** An ICMP error translated back along its connection. */
export const L3_ICMP_ERROR = outcome('icmp-error', describeFlow);
/** Dry run: a connection would be created. */
export const L3_NO_CT = outcome('would-create', (name, t) => `${name}: ${wouldCreateText(t)} (dry run: no connection created)`);

/** From the uplink, UDP to a port of the DNS forwarder's range, or an ICMP error about a query from one: handed to the main thread. */
export const L3_DNS_UPSTREAM = outcome('dns-upstream-answer', (name, t) =>
  `${name}: ${t.before.ok ? t.before.text() : 'datagram'} to the DNS forwarder (main thread)`);

/** The DNS port: DNS over TCP to a gateway becomes a connection to the host (local.ts). */
export const DNS_PORT = 53;

/** The quoted packet of the ICMP error being translated (icmpErrorIn). */
const quoted: NatTuple = { proto: 0, src: 0, dst: 0, sport: 0, dport: 0 };

/** A packet of a tracked connection: translated and routed (true), else nothing done (false). */
export function tracked(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram): boolean {
  const h = l3.ct.find(d.proto, d.src, d.dst, d.sport, d.dport, ctx.now);
  if (h < 0) return false;
  p.l3 = L3_CT;
  forwardTranslated(p, ctx, l3, d, h);
  return true;
}

/** Out of the uplink to the outside, from a network: a new connection behind the uplink address. */
export function masquerade(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram, net: L3NetSpec): void {
  const u = l3.table.uplink;
  if (u === null) { p.dropWith(DROP['no-route']); return; }
  const proto = d.proto;
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && !(proto === IPPROTO_ICMP && d.icmpType === ICMP_ECHO_REQUEST)) {
    p.dropWith(DROP['not-routed']);
    return;
  }
  if (!ttlOk(p, ctx, l3, d)) return;
  if (ctx.dryRun) { wouldCreate(p); return; }
  const h = l3.ct.create(proto, d.src, d.dst, d.sport, d.dport, d.dst, u.ip, d.dport, d.sport,
    true, net.id, -1, CT_KIND_MASQ, ctx.now, p.inPort);
  if (h < 0) { refuse(p, h); return; }
  p.l3 = L3_CT_NEW;
  forwardTranslated(p, ctx, l3, d, h);
}

/**
 * A published port reached from inside (the host through its TAP, or a container: hairpin):
 * DNAT to the container, and SNAT the client to the target network's gateway so that the
 * answer comes back through the switch.
 */
export function publishedFromNet(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram): void {
  const m = l3.table.mapping(d.proto, d.dst, d.dport);
  if (m === undefined) { p.dropWith(DROP['no-service']); return; }
  const target = l3.table.byNet[m.net];
  if (target === undefined) { p.dropWith(DROP['no-service']); return; }
  if (!ttlOk(p, ctx, l3, d)) return;
  if (ctx.dryRun) { wouldCreate(p); return; }
  const h = l3.ct.create(d.proto, d.src, d.dst, d.sport, d.dport, m.ip, target.gwIp, m.port, d.sport,
    true, m.net, m.id, CT_KIND_DNAT, ctx.now, p.inPort);
  if (h < 0) { refuse(p, h); return; }
  p.l3 = L3_CT_NEW;
  forwardTranslated(p, ctx, l3, d, h);
}

/**
 * A published port reached from outside, through the uplink: DNAT only (the container sees the
 * real client). Before that (no connection matched): UDP to a port of the DNS forwarder's range
 * (tables/conntrack.ts CT_FORWARDER_PORT_MIN..MAX, which masquerade never allocates and -p
 * refuses) is an answer to the main thread's forwarder: punted to it when a try waits on that
 * port (Conntrack.forwarderPortInUse), else dropped (no-service); the forwarder matches the
 * answer to its query or drops and counts it (control/dns/uplink.ts).
 */
export function publishedFromUplink(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram): void {
  if (d.proto === IPPROTO_UDP && isForwarderPort(d.dport)) {
    // Only to a port a try is waiting on: a flood from outside to the range costs the main
    // thread (and the punt ring the containers' queries share) nothing.
    if (l3.ct.forwarderPortInUse(d.dport)) puntToForwarder(p, ctx, l3);
    else p.dropWith(DROP['no-service']);
    return;
  }
  const m = d.proto === IPPROTO_ICMP ? undefined : l3.table.mapping(d.proto, d.dst, d.dport);
  if (m === undefined) { p.dropWith(DROP['no-service']); return; }
  if (!ttlOk(p, ctx, l3, d)) return;
  if (ctx.dryRun) { wouldCreate(p); return; }
  const h = l3.ct.create(d.proto, d.src, d.dst, d.sport, d.dport, m.ip, d.src, m.port, d.sport,
    false, m.net, m.id, CT_KIND_DNAT, ctx.now);
  if (h < 0) { refuse(p, h); return; }
  p.l3 = L3_CT_NEW;
  forwardTranslated(p, ctx, l3, d, h);
}

/** To the main thread's DNS forwarder (an answer, or an ICMP error about a query): punted. */
function puntToForwarder(p: Packet, ctx: StageContext, l3: L3Context): void {
  p.l3 = L3_DNS_UPSTREAM;
  p.out = OUT_LOCAL;
  if (!ctx.dryRun && !l3.emit.punt(p)) p.dropWith(DROP['punt-full']);
}

/**
 * An ICMP error about a tracked connection: translate outer and quoted headers, route. One
 * about a query of the DNS forwarder (no connection: uplink address, a port of its range) is
 * punted to it.
 */
export function icmpErrorIn(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram): void {
  const q = quoted;
  const r = icmpErrorQuote(p.buf, p.l3Off, d.end, q);
  if (r !== ICMP_QUOTE_OK) { p.dropWith(r === ICMP_QUOTE_MALFORMED ? DROP['bad-ip'] : DROP['no-service']); return; }
  // The error travels against the quoted packet: look it up as the reverse of it.
  const h = l3.ct.find(q.proto, q.dst, q.src, q.dport, q.sport, ctx.now);
  if (h < 0) {
    // About a query of the main thread's DNS forwarder (from the uplink address and a port of
    // its range): to the forwarder, which fails that try at once (port unreachable).
    const u = l3.table.uplink;
    if (p.netId === UPLINK_NET && u !== null && q.proto === IPPROTO_UDP && q.src === u.ip && l3.ct.forwarderPortInUse(q.sport)) { puntToForwarder(p, ctx, l3); return; }
    p.dropWith(DROP['no-service']);
    return;
  }
  const ct = l3.ct;
  const newDst = ct.xDst(h);
  // An error sent by the connection's far end itself (outer source = the quoted destination,
  // e.g. a container refusing a published-port connection) gets its outer source translated
  // like the quoted one, as Linux's nf_nat_icmp_reply_translation does: the container's
  // private address must not leave. An error from a router on the way keeps its source.
  const outerSrc = d.src === q.dst ? ct.xSrc(h) : -1;
  if (!natRewriteIcmpError(p.buf, p.l3Off, d.end, newDst, ct.xDst(h), ct.xSrc(h), ct.xDport(h), ct.xSport(h), outerSrc)) {
    p.dropWith(DROP['bad-ip']);
    return;
  }
  p.l3 = L3_ICMP_ERROR;
  if (!ttlOk(p, ctx, l3, d)) return;
  routeTo(p, ctx, l3, d, newDst, true);
}

/** Rewrite addresses/ports for connection handle h and account the packet. */
export function translate(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram, h: number): void {
  const ct = l3.ct;
  if (!ctx.dryRun) ct.seen(h, d.tcpFlags, d.end - p.l3Off, ctx.now);
  if (!natRewrite(p.buf, p.l3Off, d.end, ct.xSrc(h), ct.xDst(h), ct.xSport(h), ct.xDport(h), d.partial(p))) {
    p.dropWith(DROP['bad-ip']);
  }
}

/** Translate by h, then route to the new destination (TTL checked first). */
function forwardTranslated(p: Packet, ctx: StageContext, l3: L3Context, d: Datagram, h: number): void {
  if (!ttlOk(p, ctx, l3, d)) return;
  translate(p, ctx, l3, d, h);
  if (p.out !== OUT_NONE) return;
  routeTo(p, ctx, l3, d, l3.ct.xDst(h), true);
}

/** Dry run: the connection is not created; the frame goes no further. */
export function wouldCreate(p: Packet): void {
  p.l3 = L3_NO_CT;
  p.out = OUT_LOCAL;
}

/** Drop a frame whose connection the table refused (err: a CT_ERR_* of Conntrack.create). */
export function refuse(p: Packet, err: number): void {
  p.dropWith(refusalReason(err));
}

/**
 * The drop reason for a refused connection. CT_ERR_FULL also stands for an original tuple
 * that another worker has just created (a race): that is reported as conntrack-full too.
 */
export function refusalReason(err: number): number {
  return err === CT_ERR_NO_PORT ? DROP['nat-ports-exhausted']
    : err === CT_ERR_SOURCE_LIMIT ? DROP['conntrack-source-limit']
    : err === CT_ERR_PORT_LIMIT ? DROP['conntrack-port-limit']
    : DROP['conntrack-full'];
}

// ------------------------------------------------------------------ trace wording

/** The connection a dry run would have created, in words (the same checks as above and local.ts). */
function wouldCreateText(t: OutcomeTrace): string {
  const f = t.before;
  if (!f.ok) return 'a connection';
  const flow = f.text();
  const l3 = t.ctx.l3;
  if (l3 === null) return flow;
  const p = t.p;
  const tbl = l3.table;
  const net = tbl.byNet[p.netId];
  if (p.netId !== UPLINK_NET && net !== undefined && f.proto === IPPROTO_TCP && f.dst === net.gwIp && f.dport === DNS_PORT) {
    return `dns over tcp ${flow} to ${ipToString(net.hostIp)}:${DNS_PORT}`;
  }
  if (p.netId === UPLINK_NET || tbl.isSwitchIp(f.dst)) {
    const m = f.proto === IPPROTO_ICMP ? undefined : tbl.mapping(f.proto, f.dst, f.dport);
    return m !== undefined ? `published port ${flow} to ${ipToString(m.ip)}:${m.port}` : `published port ${flow}`;
  }
  return tbl.uplink !== null ? `masquerade ${flow} as ${ipToString(tbl.uplink.ip)}` : `masquerade ${flow}`;
}
