// gateway: the switch's router (docs/L3.md). It ends the frames that are the switch's own
// business — ARP and ping for its addresses, DNS to the gateway, everything sent to the
// gateway MAC to be routed (masquerade out of the uplink, published ports in, replies of
// tracked connections), everything arriving on the uplink — and lets the rest go on to L2
// forwarding. With no L3 context (ctx.l3 === null: pure L2 tests and tools) it passes all.
//
// What it did is left in p.l3 (an L3_* code) for traces. In a dry run it learns nothing,
// creates no connection and sends nothing: a new flow is reported as what would happen.

import { DROP } from '../drops';
import { OUT_FLOOD, OUT_LOCAL, OUT_NONE, type Packet } from '../packet';
import type { L3Context, Stage, StageContext } from './stage';
import type { L3NetSpec } from '../tables/l3';
import { UPLINK_NET } from '../tables/neigh';
import {
  CT_DIR_REPLY, CT_ERR_FULL, CT_ERR_NO_PORT, CT_ERR_SOURCE_LIMIT, CT_KIND_DNAT, CT_KIND_DNS, CT_KIND_MASQ,
} from '../tables/conntrack';
import { decTtl, icmpErrorInner, natRewrite, natRewriteIcmpError } from '../nat';
import { DNS_ANSWERED, DNS_DROPPED } from '../l3/dns';
import { arpReplyInPlace, icmpEchoReplyInPlace, writeArpRequest, writeIcmpError } from '../l3/frames';
import { ArpView, ARP_OP_REPLY, ARP_OP_REQUEST } from '../wire/arp';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../wire/ethernet';
import { Ipv4View, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4';
import { writeMacHiLo } from '../wire/mac';
import { readU16 } from '../wire/bytes';

/** What the gateway did (Packet.l3), for traces. */
export const L3_NONE = 0;          // not the router's business: L2 forwarding
export const L3_ARP_REPLY = 1;     // answered ARP for a switch address
export const L3_ARP_CONSUMED = 2;  // ARP addressed to the switch (a reply to our request)
export const L3_PING = 3;          // answered an echo request to a switch address
export const L3_DNS_PUNT = 4;      // DNS query handed to the main thread
export const L3_CT = 5;            // translated by an existing connection
export const L3_CT_NEW = 6;        // translated by a connection created now
export const L3_ROUTED = 7;        // routed without translation
export const L3_ICMP_ERROR = 8;    // an ICMP error translated back along its connection
export const L3_ARP_LEARNED = 9;   // ARP seen (sender learned), forwarded at L2
export const L3_NO_CT = 10;        // dry run: would create a connection
export const L3_HOST_CT = 11;      // from the host TAP: reply of a DNS-over-TCP connection
export const L3_DNS_ANSWER = 12;   // DNS query for a local name answered here, in place

export const L3_NAMES = [
  'none', 'arp-reply', 'arp-consumed', 'ping', 'dns-punt', 'conntrack', 'conntrack-new', 'routed',
  'icmp-error', 'arp-learned', 'would-create', 'host-conntrack', 'dns-answer',
] as const;

const VNET_F_NEEDS_CSUM = 1;
const VNET_HDR_LEN = 10;
const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
const ICMP_TIME_EXCEEDED = 11;
const DNS_PORT = 53;

function isIcmpError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

export class GatewayStage implements Stage {
  readonly name = 'gateway';
  private readonly arp = new ArpView();
  private readonly ip = new Ipv4View();
  private readonly inner = { proto: 0, src: 0, dst: 0, sport: 0, dport: 0 };
  // The packet being routed (set by readIp).
  private proto = 0;
  private src = 0;
  private dst = 0;
  private sport = 0;
  private dport = 0;
  private tcpFlags = 0;
  private icmpType = -1;
  private l4Off = 0;
  private end = 0;

  process(p: Packet, ctx: StageContext): boolean {
    const l3 = ctx.l3;
    p.l3 = L3_NONE;
    if (l3 === null) return true;
    if (p.netId === UPLINK_NET) return this.fromUplink(p, ctx, l3);
    const net = l3.table.byNet[p.netId];
    if (net === undefined) return true;
    if (p.etherType === ETHERTYPE_ARP) return this.arpIn(p, ctx, l3, net);
    if (p.dstHi === net.gwMacHi && p.dstLo === net.gwMacLo) {
      if (p.etherType !== ETHERTYPE_IPV4) { p.dropWith(DROP['not-routed']); return false; }
      this.routeFromNet(p, ctx, l3, net);
      return false;
    }
    if (p.etherType !== ETHERTYPE_IPV4) return true;
    if (p.inPort === net.hostPort) return this.fromHostPort(p, ctx, l3, net);
    // Fix: with no host port (hostPort -1), an unknown destination (lookup -1) used to
    // compare equal to it and pass; only a known host port is exempt.
    if (!net.icc && (net.hostPort < 0 || ctx.fdb.lookup(p.netId, p.vlan, p.dstHi, p.dstLo) !== net.hostPort)) {
      p.dropWith(DROP['icc-disabled']);
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ ARP

  private arpIn(p: Packet, ctx: StageContext, l3: L3Context, net: L3NetSpec): boolean {
    const a = this.arp;
    if (!a.reset(p.buf, p.l3Off, p.ethOff + p.ethLen - p.l3Off) || !a.isEthernetIpv4) return true;
    const spa = a.spa;
    if (((spa & net.mask) >>> 0) === net.subnet && spa !== net.gwIp && spa !== 0 && !ctx.dryRun) {
      l3.neigh.learn(net.id, spa, a.shaHi, a.shaLo, ctx.now);
    }
    const op = a.op;
    if (op === ARP_OP_REQUEST && a.tpa === net.gwIp) {
      this.replyArp(p, ctx, net.gwMacHi, net.gwMacLo, net.gwIp);
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

  private replyArp(p: Packet, ctx: StageContext, macHi: number, macLo: number, ip: number): void {
    p.l3 = L3_ARP_REPLY;
    if (!ctx.dryRun) {
      const n = arpReplyInPlace(p.buf, p.ethOff, p.ethLen, macHi, macLo, ip);
      if (n === 0) { p.dropWith(DROP['bad-arp']); return; }
      this.setLength(p, n);
    }
    p.out = p.inPort;
  }

  /** The frame changed length (answered in place): fix the lengths and clear offloads. */
  private setLength(p: Packet, ethLen: number): void {
    p.ethLen = ethLen;
    p.len = ethLen + (p.vnet ? VNET_HDR_LEN : 0);
    if (p.vnet) p.buf.fill(0, p.off, p.off + VNET_HDR_LEN);
  }

  // ------------------------------------------------------------------ IPv4 parsing

  /** Parse the IPv4 packet and its ports into this.*; false = dropped (reason set). */
  private readIp(p: Packet): boolean {
    const ip = this.ip;
    const frameEnd = p.ethOff + p.ethLen;
    if (!ip.reset(p.buf, p.l3Off, frameEnd - p.l3Off) || !ip.check()) { p.dropWith(DROP['bad-ip']); return false; }
    this.end = p.l3Off + ip.totalLength;
    this.proto = ip.protocol;
    this.src = ip.src;
    this.dst = ip.dst;
    this.sport = 0;
    this.dport = 0;
    this.tcpFlags = 0;
    this.icmpType = -1;
    this.l4Off = ip.payloadOffset;
    const b = p.buf;
    const l4 = this.l4Off;
    const l4Len = this.end - l4;
    if (ip.isFragment) { p.dropWith(DROP['ip-fragment']); return false; }
    if (this.proto === IPPROTO_TCP || this.proto === IPPROTO_UDP) {
      if (l4Len < (this.proto === IPPROTO_TCP ? 20 : 8)) { p.dropWith(DROP['bad-ip']); return false; }
      this.sport = readU16(b, l4);
      this.dport = readU16(b, l4 + 2);
      if (this.proto === IPPROTO_TCP) this.tcpFlags = b[l4 + 13];
    } else if (this.proto === IPPROTO_ICMP) {
      if (l4Len < 8) { p.dropWith(DROP['bad-ip']); return false; }
      this.icmpType = b[l4];
      if (this.icmpType === ICMP_ECHO_REQUEST || this.icmpType === ICMP_ECHO_REPLY) {
        this.sport = this.dport = readU16(b, l4 + 4);
      }
    }
    return true;
  }

  private partial(p: Packet): boolean {
    return p.vnet && (p.buf[p.off] & VNET_F_NEEDS_CSUM) !== 0;
  }

  // ------------------------------------------------------------------ from a network

  private routeFromNet(p: Packet, ctx: StageContext, l3: L3Context, net: L3NetSpec): void {
    if (!this.readIp(p)) return;
    const src = this.src;
    const dst = this.dst;
    if (((src & net.mask) >>> 0) === net.subnet && src !== net.gwIp && !ctx.dryRun) {
      l3.neigh.learn(net.id, src, p.srcHi, p.srcLo, ctx.now);
    }
    const toSwitch = l3.table.isSwitchIp(dst);
    if (toSwitch && this.icmpType === ICMP_ECHO_REQUEST) { this.answerPing(p, ctx, net.gwMacHi, net.gwMacLo); return; }
    if (dst === net.gwIp && this.dport === DNS_PORT) {
      if (this.proto === IPPROTO_UDP) {
        // A local name is answered here; anything else goes to the main thread (forwarding).
        if (!ctx.dryRun && l3.dns !== null) {
          const r = l3.dns.answer(p, this.l4Off, this.end, net.gwMacHi, net.gwMacLo);
          if (r === DNS_ANSWERED) { p.l3 = L3_DNS_ANSWER; return; }
          if (r === DNS_DROPPED) { p.l3 = L3_DNS_ANSWER; p.out = OUT_LOCAL; return; }
        }
        p.l3 = L3_DNS_PUNT;
        p.out = OUT_LOCAL;
        if (!ctx.dryRun && !l3.emit.punt(p)) p.dropWith(DROP['punt-full']);
        return;
      }
      if (this.proto === IPPROTO_TCP && net.hostPort >= 0) {
        // DNS over TCP: to the daemon's listener on the host TAP address (docs/L3.md).
        let h = l3.ct.find(this.proto, src, dst, this.sport, this.dport, ctx.now);
        if (h < 0) {
          if (ctx.dryRun) { this.wouldCreate(p); return; }
          h = l3.ct.create(this.proto, src, dst, this.sport, this.dport, net.hostIp, src, DNS_PORT, this.sport,
            false, net.id, -1, CT_KIND_DNS, ctx.now);
          if (h < 0) { this.ctError(p, h); return; }
          p.l3 = L3_CT_NEW;
        } else p.l3 = L3_CT;
        this.translate(p, ctx, l3, h);
        if (p.out !== OUT_NONE) return;
        writeMacHiLo(p.buf, p.ethOff, net.hostMacHi, net.hostMacLo);
        writeMacHiLo(p.buf, p.ethOff + 6, net.gwMacHi, net.gwMacLo);
        p.out = net.hostPort;
        return;
      }
    }
    if (this.icmpType >= 0 && isIcmpError(this.icmpType)) { this.icmpErrorIn(p, ctx, l3); return; }
    let h = l3.ct.find(this.proto, src, dst, this.sport, this.dport, ctx.now);
    if (h >= 0) {
      p.l3 = L3_CT;
      this.forwardTranslated(p, ctx, l3, h);
      return;
    }
    if (toSwitch) {
      // A published port reached from inside (the host through its TAP, or a container:
      // hairpin): DNAT to the container, and SNAT the client to the target network's
      // gateway so that the answer comes back through the switch.
      const m = l3.table.mapping(this.proto, dst, this.dport);
      if (m === undefined) { p.dropWith(DROP['no-service']); return; }
      const target = l3.table.byNet[m.net];
      if (target === undefined) { p.dropWith(DROP['no-service']); return; }
      if (!this.ttlOk(p, ctx, l3)) return; // before create: see the masquerade below
      if (ctx.dryRun) { this.wouldCreate(p); return; }
      h = l3.ct.create(this.proto, src, dst, this.sport, this.dport, m.ip, target.gwIp, m.port, this.sport,
        true, m.net, m.id, CT_KIND_DNAT, ctx.now);
      if (h < 0) { this.ctError(p, h); return; }
      p.l3 = L3_CT_NEW;
      this.forwardTranslated(p, ctx, l3, h);
      return;
    }
    const target = l3.table.netOfIp(dst);
    if (target !== undefined) {
      if (target !== net) { p.dropWith(DROP['inter-network']); return; }
      // Sent to the gateway for an address of its own network: route it back in.
      p.l3 = L3_ROUTED;
      this.egress(p, ctx, l3, dst, false);
      return;
    }
    if (net.internal) { p.dropWith(DROP['internal-network']); return; }
    const u = l3.table.uplink;
    if (u === null) { p.dropWith(DROP['no-route']); return; }
    if (this.proto !== IPPROTO_TCP && this.proto !== IPPROTO_UDP
      && !(this.proto === IPPROTO_ICMP && this.icmpType === ICMP_ECHO_REQUEST)) {
      p.dropWith(DROP['not-routed']);
      return;
    }
    // Fix: TTL before creating the connection. A packet that dies here (a traceroute
    // probe) must not leave a connection behind (Linux never confirms it), or every
    // probe held an entry for its whole timeout.
    if (!this.ttlOk(p, ctx, l3)) return;
    if (ctx.dryRun) { this.wouldCreate(p); return; }
    h = l3.ct.create(this.proto, src, dst, this.sport, this.dport, dst, u.ip, this.dport, this.sport,
      true, net.id, -1, CT_KIND_MASQ, ctx.now);
    if (h < 0) { this.ctError(p, h); return; }
    p.l3 = L3_CT_NEW;
    this.forwardTranslated(p, ctx, l3, h);
  }

  /** From the host TAP, not to the gateway: the replies of DNS-over-TCP connections. */
  private fromHostPort(p: Packet, ctx: StageContext, l3: L3Context, net: L3NetSpec): boolean {
    const b = p.buf;
    // Cheap pre-check before parsing: TCP from the host address, source port 53.
    const l3Off = p.l3Off;
    if (p.ethOff + p.ethLen - l3Off < 40 || b[l3Off + 9] !== IPPROTO_TCP) return true;
    // Fix: a fragment (MF or an offset) is never a DNS-over-TCP reply we translate: bridge
    // it, as any other host-to-container traffic (readIp used to drop it as ip-fragment).
    if ((readU16(b, l3Off + 6) & 0x3fff) !== 0) return true;
    if (!this.readIp(p)) return false;
    if (this.src !== net.hostIp || this.sport !== DNS_PORT) return true;
    const h = l3.ct.find(this.proto, this.src, this.dst, this.sport, this.dport, ctx.now);
    if (h < 0 || (h & 1) !== CT_DIR_REPLY) return true;
    p.l3 = L3_HOST_CT;
    this.translate(p, ctx, l3, h);
    if (p.out !== OUT_NONE) return false;
    writeMacHiLo(p.buf, p.ethOff + 6, net.gwMacHi, net.gwMacLo);
    p.srcHi = net.gwMacHi;
    p.srcLo = net.gwMacLo;
    return true; // on to L2 forwarding, to the container's MAC
  }

  // ------------------------------------------------------------------ from the uplink

  private fromUplink(p: Packet, ctx: StageContext, l3: L3Context): boolean {
    const u = l3.table.uplink;
    if (u === null) { p.dropWith(DROP['uplink-not-ours']); return false; }
    if (p.etherType === ETHERTYPE_ARP) {
      const a = this.arp;
      if (!a.reset(p.buf, p.l3Off, p.ethOff + p.ethLen - p.l3Off) || !a.isEthernetIpv4) {
        p.dropWith(DROP['bad-arp']);
        return false;
      }
      const forUs = a.tpa === u.ip;
      const spa = a.spa;
      if (forUs && spa !== 0 && l3.table.inUplinkSubnet(spa) && !ctx.dryRun) {
        l3.neigh.learn(UPLINK_NET, spa, a.shaHi, a.shaLo, ctx.now);
      }
      if (forUs && a.op === ARP_OP_REQUEST) { this.replyArp(p, ctx, u.macHi, u.macLo, u.ip); return false; }
      if (forUs && a.op === ARP_OP_REPLY) { p.l3 = L3_ARP_CONSUMED; p.out = OUT_LOCAL; return false; }
      p.dropWith(DROP['uplink-not-ours']);
      return false;
    }
    if (p.dstHi !== u.macHi || p.dstLo !== u.macLo) { p.dropWith(DROP['uplink-not-ours']); return false; }
    if (p.etherType !== ETHERTYPE_IPV4) { p.dropWith(DROP['not-routed']); return false; }
    if (!this.readIp(p)) return false;
    if (this.dst !== u.ip) { p.dropWith(DROP['uplink-not-ours']); return false; }
    if (l3.table.inUplinkSubnet(this.src) && !ctx.dryRun) l3.neigh.learn(UPLINK_NET, this.src, p.srcHi, p.srcLo, ctx.now);
    if (this.icmpType === ICMP_ECHO_REQUEST) { this.answerPing(p, ctx, u.macHi, u.macLo); return false; }
    if (this.icmpType >= 0 && isIcmpError(this.icmpType)) { this.icmpErrorIn(p, ctx, l3); return false; }
    let h = l3.ct.find(this.proto, this.src, this.dst, this.sport, this.dport, ctx.now);
    if (h >= 0) {
      p.l3 = L3_CT;
      this.forwardTranslated(p, ctx, l3, h);
      return false;
    }
    const m = this.proto === IPPROTO_ICMP ? undefined : l3.table.mapping(this.proto, this.dst, this.dport);
    if (m === undefined) { p.dropWith(DROP['no-service']); return false; }
    if (!this.ttlOk(p, ctx, l3)) return false; // before create: see routeFromNet
    if (ctx.dryRun) { this.wouldCreate(p); return false; }
    // From outside: the container sees the real client address (DNAT only), like Docker.
    h = l3.ct.create(this.proto, this.src, this.dst, this.sport, this.dport, m.ip, this.src, m.port, this.sport,
      false, m.net, m.id, CT_KIND_DNAT, ctx.now);
    if (h < 0) { this.ctError(p, h); return false; }
    p.l3 = L3_CT_NEW;
    this.forwardTranslated(p, ctx, l3, h);
    return false;
  }

  // ------------------------------------------------------------------ helpers

  private answerPing(p: Packet, ctx: StageContext, macHi: number, macLo: number): void {
    p.l3 = L3_PING;
    if (!ctx.dryRun) {
      if (!icmpEchoReplyInPlace(p.buf, p.ethOff, p.l3Off, this.end, macHi, macLo)) { p.dropWith(DROP['bad-ip']); return; }
      // The reply keeps the request's length; offloads (if any) no longer apply.
      if (p.vnet) p.buf.fill(0, p.off, p.off + VNET_HDR_LEN);
    }
    p.out = p.inPort;
  }

  private wouldCreate(p: Packet): void {
    p.l3 = L3_NO_CT;
    p.out = OUT_LOCAL;
  }

  private ctError(p: Packet, err: number): void {
    p.dropWith(err === CT_ERR_NO_PORT ? DROP['nat-ports-exhausted']
      : err === CT_ERR_SOURCE_LIMIT ? DROP['conntrack-source-limit']
      : err === CT_ERR_FULL ? DROP['conntrack-full'] : DROP['conntrack-full']);
  }

  /** Rewrite addresses/ports for connection handle h and account the packet. */
  private translate(p: Packet, ctx: StageContext, l3: L3Context, h: number): void {
    const ct = l3.ct;
    if (!ctx.dryRun) ct.seen(h, this.tcpFlags, this.end - p.l3Off, ctx.now);
    if (!natRewrite(p.buf, p.l3Off, this.end, ct.xSrc(h), ct.xDst(h), ct.xSport(h), ct.xDport(h), this.partial(p))) {
      p.dropWith(DROP['bad-ip']);
    }
  }

  /** Translate by h, then route to the new destination (TTL checked first). */
  private forwardTranslated(p: Packet, ctx: StageContext, l3: L3Context, h: number): void {
    if (!this.ttlOk(p, ctx, l3)) return;
    this.translate(p, ctx, l3, h);
    if (p.out !== OUT_NONE) return;
    this.egress(p, ctx, l3, l3.ct.xDst(h), true);
  }

  /** An ICMP error about a tracked connection: translate outer and quoted headers, route. */
  private icmpErrorIn(p: Packet, ctx: StageContext, l3: L3Context): void {
    const q = this.inner;
    if (!icmpErrorInner(p.buf, p.l3Off, this.end, q)) { p.dropWith(DROP['no-service']); return; }
    // The error travels against the quoted packet: look it up as the reverse of it.
    const h = l3.ct.find(q.proto, q.dst, q.src, q.dport, q.sport, ctx.now);
    if (h < 0) { p.dropWith(DROP['no-service']); return; }
    const ct = l3.ct;
    const newDst = ct.xDst(h);
    // Fix: an error sent by the connection's far end itself (outer source = the quoted
    // destination, e.g. a container refusing a published-port connection) gets its outer
    // source translated like the quoted one (as Linux's nf_nat_icmp_reply_translation
    // does); it used to leave with the container's private address. An error from a router
    // on the way keeps its source.
    const outerSrc = this.src === q.dst ? ct.xSrc(h) : -1;
    if (!natRewriteIcmpError(p.buf, p.l3Off, this.end, newDst, ct.xDst(h), ct.xSrc(h), ct.xDport(h), ct.xSport(h), outerSrc)) {
      p.dropWith(DROP['bad-ip']);
      return;
    }
    p.l3 = L3_ICMP_ERROR;
    if (!this.ttlOk(p, ctx, l3)) return;
    this.egress(p, ctx, l3, newDst, true);
  }

  private ttlOk(p: Packet, ctx: StageContext, l3: L3Context): boolean {
    if (p.buf[p.l3Off + 8] > 1) return true;
    // Time exceeded back to the sender (never about an ICMP error), from the gateway of
    // the network it came from (from the uplink address when it came from the uplink).
    if (!ctx.dryRun && !(this.icmpType >= 0 && isIcmpError(this.icmpType))) {
      const net = l3.table.byNet[p.netId];
      // Fix: from the uplink (published ports) there is no network gateway; the error
      // comes from the uplink address (it used to be dropped silently).
      const u = p.netId === UPLINK_NET ? l3.table.uplink : null;
      const from = net !== undefined ? { hi: net.gwMacHi, lo: net.gwMacLo, ip: net.gwIp }
        : u !== null ? { hi: u.macHi, lo: u.macLo, ip: u.ip } : null; // rare path: allocation is fine
      if (from !== null) {
        const e = l3.emit;
        const off = e.alloc();
        if (off >= 0) {
          const n = writeIcmpError(e.buf, off, from.hi, from.lo, p.srcHi, p.srcLo, from.ip,
            ICMP_TIME_EXCEEDED, 0, p.buf, p.l3Off, this.end);
          if (n > 0) e.send(off, n, p.inPort, p.netId);
        }
      }
    }
    p.dropWith(DROP['ttl-exceeded']);
    return false;
  }

  /**
   * Send the (already translated) packet to dstIp: into the vsw network that holds it, or
   * out of the uplink (to dstIp when on-link, else to the uplink gateway). Sets MACs,
   * p.netId and p.out; a neighbour miss asks by ARP and drops the frame (neigh-miss).
   */
  private egress(p: Packet, ctx: StageContext, l3: L3Context, dstIp: number, ttlDone: boolean): void {
    if (!ttlDone && !this.ttlOk(p, ctx, l3)) return;
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
    writeMacHiLo(p.buf, p.ethOff, hi, lo);
    writeMacHiLo(p.buf, p.ethOff + 6, srcHi, srcLo);
    p.dstHi = hi; p.dstLo = lo; p.srcHi = srcHi; p.srcLo = srcLo;
    p.netId = net;
    if (port >= 0) { p.out = port; return; }
    // The MAC table is keyed by VLAN too: the target network's (0 for an untagged network).
    const fdbPort = ctx.fdb.lookup(net, ctx.ports.vlanOfNet[net], hi, lo);
    p.out = fdbPort >= 0 ? fdbPort : OUT_FLOOD;
    if (p.l3 === L3_NONE) p.l3 = L3_ROUTED;
  }
}
