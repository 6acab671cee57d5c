// NAT packet rewrites, in place, per packet: addresses and ports of IPv4 TCP/UDP/ICMP echo,
// ICMP errors (outer and quoted headers), TTL. Checksums are updated incrementally (RFC 1624
// eqn 3: HC' = ~(~HC + ~m + m')), which gives exactly what a recomputation from scratch gives
// for a packet whose checksum was right (and keeps a wrong one wrong). CHECKSUM_PARTIAL frames
// (virtio-net NEEDS_CSUM) carry the pseudo-header sum, not complemented, in the L4 checksum
// field: only the address changes are folded into it (the ports lie inside the range the
// checksum will be finished over).
//
// No allocation: numbers only, module-level scratch for the ICMP error parser (one copy per
// thread, as every worker loads its own modules).

import { fold, partialUpdate32 } from './wire/checksum';
import { ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED, IcmpView } from './wire/icmp';
import { ICMP_PARAMETER_PROBLEM, ICMP_REDIRECT, ICMP_SOURCE_QUENCH } from './l3/frames';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HDR_LEN, Ipv4View } from './wire/ipv4';
import { TcpView } from './wire/tcp';
import { UdpView } from './wire/udp';

// The views every rewrite goes through (module level: one set per thread, reset per call).
const ip = new Ipv4View();     // the packet's own IPv4 header
const quoted = new Ipv4View(); // the IPv4 header an ICMP error quotes
const tcp = new TcpView();
const udp = new UdpView();
const icmp = new IcmpView();
const quotedIcmp = new IcmpView();

/** ~old + new of a 32-bit field, as two 16-bit words (unfolded, < 2^18). */
function delta32(old: number, now: number): number {
  return (~(old >>> 16) & 0xffff) + (~old & 0xffff) + ((now >>> 16) & 0xffff) + (now & 0xffff);
}

/** ~old + new of a 16-bit field. */
function delta16(old: number, now: number): number {
  return (~old & 0xffff) + (now & 0xffff);
}

/** Checksum field `c` after the fields it covers changed by `delta` (sum of delta16/32). */
function update(c: number, delta: number): number {
  return ~fold((~c & 0xffff) + delta) & 0xffff;
}

// Set by ipLimit(): the end of the IPv4 header and of the packet data present in the buffer.
let hdrEnd = 0;
let dataEnd = 0;

/**
 * Checks the IPv4 header at ipOff lies inside [ipOff, end) (version 4, ihl >= 5, total length
 * >= header length), points `ip` at it and sets hdrEnd and dataEnd = min(ipOff + total
 * length, end).
 */
function ipLimit(buf: Uint8Array, ipOff: number, end: number): boolean {
  if (ipOff < 0 || end > buf.length || !ip.reset(buf, ipOff, end - ipOff)) return false;
  if (ip.version !== 4) return false;
  const hl = ip.headerLength;
  if (hl < IPV4_MIN_HDR_LEN) return false;
  const tl = ip.totalLength;
  if (tl < hl) return false;
  hdrEnd = ipOff + hl;
  dataEnd = ipOff + tl < end ? ipOff + tl : end;
  return hdrEnd <= dataEnd;
}

/**
 * Write an IPv4 header's addresses, updating its checksum incrementally; returns the sum of
 * the changes (for the L4 pseudo-header checksum).
 */
function setAddrs(v: Ipv4View, src: number, dst: number): number {
  const addr = delta32(v.src, src) + delta32(v.dst, dst);
  v.setSrc(src);
  v.setDst(dst);
  v.setChecksum(update(v.checksum, addr));
  return addr;
}

/** The L4 header natRewrite changes. */
const L4_NONE = 0;
const L4_TCP = 1;
const L4_UDP = 2;
const L4_ECHO = 3;

/**
 * Rewrite an IPv4 packet in place to (src, dst, sport, dport): the addresses and header
 * checksum; for TCP/UDP the ports and L4 checksum (UDP checksum 0 = none: stays 0; a result
 * of 0 is stored as 0xffff); for ICMP echo request/reply the identifier (= sport; dport is
 * ignored) and the ICMP checksum; other ICMP types and protocols: the IP header only.
 * partial: the L4 checksum field holds a CHECKSUM_PARTIAL pseudo-header sum: only the address
 * changes are folded into it (partialUpdate32), the port changes are not (ICMP: the field is
 * left alone). Fragments other than the first: the IP header only. Returns false, changing
 * nothing, when the headers are not all inside [ipOff, end) (a first fragment too short to
 * hold its L4 header included). No allocation.
 */
export function natRewrite(buf: Uint8Array, ipOff: number, end: number,
  src: number, dst: number, sport: number, dport: number, partial: boolean): boolean {
  if (!ipLimit(buf, ipOff, end)) return false;
  const l4 = hdrEnd;
  const l4Len = dataEnd - l4;
  let kind = L4_NONE;
  if (ip.fragOffset === 0) {
    const proto = ip.protocol;
    if (proto === IPPROTO_TCP) {
      if (!tcp.reset(buf, l4, l4Len)) return false;
      kind = L4_TCP;
    } else if (proto === IPPROTO_UDP) {
      if (!udp.reset(buf, l4, l4Len)) return false;
      kind = L4_UDP;
    } else if (proto === IPPROTO_ICMP) {
      if (!icmp.reset(buf, l4, l4Len)) return false;
      const type = icmp.type;
      if (type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY) kind = L4_ECHO;
    }
  }

  src >>>= 0;
  dst >>>= 0;
  const oldSrc = ip.src;
  const oldDst = ip.dst;
  const addr = setAddrs(ip, src, dst);

  if (kind === L4_TCP) {
    const ports = delta16(tcp.srcPort, sport) + delta16(tcp.dstPort, dport);
    tcp.setSrcPort(sport);
    tcp.setDstPort(dport);
    const c = tcp.checksum;
    tcp.setChecksum(partial ? partialUpdate32(partialUpdate32(c, oldSrc, src), oldDst, dst) : update(c, addr + ports));
  } else if (kind === L4_UDP) {
    const ports = delta16(udp.srcPort, sport) + delta16(udp.dstPort, dport);
    udp.setSrcPort(sport);
    udp.setDstPort(dport);
    const c = udp.checksum;
    if (partial) {
      udp.setChecksum(partialUpdate32(partialUpdate32(c, oldSrc, src), oldDst, dst));
    } else if (c !== 0) {
      const n = update(c, addr + ports);
      udp.setChecksum(n === 0 ? 0xffff : n);
    }
  } else if (kind === L4_ECHO) {
    const oldId = icmp.id;
    icmp.setId(sport);
    if (!partial) icmp.setChecksum(update(icmp.checksum, delta16(oldId, sport)));
  }
  return true;
}

/** ICMP types that quote the packet they are about. */
export function isIcmpErrorType(type: number): boolean {
  return type === ICMP_DEST_UNREACH || type === ICMP_SOURCE_QUENCH || type === ICMP_REDIRECT
    || type === ICMP_TIME_EXCEEDED || type === ICMP_PARAMETER_PROBLEM;
}

/** What an ICMP error must quote of the L4 header after the IPv4 header (RFC 792): the ports. */
const QUOTED_L4_LEN = 8;

/** Results of icmpErrorQuote(). OK: the quoted packet's tuple is in `out`. */
export const ICMP_QUOTE_OK = 0;
/**
 * Nothing a connection can match: not an ICMP error (or a non-first fragment of one), or it
 * quotes a protocol other than TCP, UDP and ICMP echo, or a non-first fragment (no ports).
 */
export const ICMP_QUOTE_UNTRACKED = 1;
/**
 * Malformed or cut short: the ICMP header, or the quoted IPv4 header and the 8 bytes of its
 * L4 header that are needed, are not all there (or the outer IPv4 header is broken).
 */
export const ICMP_QUOTE_MALFORMED = 2;

/**
 * Offset of the quoted IPv4 header of the ICMP error at ipOff (>= 0), or -ICMP_QUOTE_UNTRACKED
 * / -ICMP_QUOTE_MALFORMED. Leaves `ip` on the outer header, `icmp` on the ICMP header, `quoted`
 * on the quoted one (and `quotedIcmp` on its ICMP header when it is an echo), and
 * hdrEnd/dataEnd for the outer packet.
 */
function icmpErrorQuoted(buf: Uint8Array, ipOff: number, end: number): number {
  if (!ipLimit(buf, ipOff, end)) return -ICMP_QUOTE_MALFORMED;
  if (ip.protocol !== IPPROTO_ICMP || ip.fragOffset !== 0) return -ICMP_QUOTE_UNTRACKED;
  const c = hdrEnd;
  const lim = dataEnd;
  if (!icmp.reset(buf, c, lim - c)) return -ICMP_QUOTE_MALFORMED;
  if (!isIcmpErrorType(icmp.type)) return -ICMP_QUOTE_UNTRACKED;
  const inner = icmp.payloadOffset;
  if (!quoted.reset(buf, inner, lim - inner) || quoted.version !== 4) return -ICMP_QUOTE_MALFORMED;
  const hl = quoted.headerLength;
  if (hl < IPV4_MIN_HDR_LEN || inner + hl + QUOTED_L4_LEN > lim) return -ICMP_QUOTE_MALFORMED;
  if (quoted.fragOffset !== 0) return -ICMP_QUOTE_UNTRACKED;
  const proto = quoted.protocol;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) return inner;
  if (proto === IPPROTO_ICMP) {
    quotedIcmp.reset(buf, inner + hl, lim - inner - hl);
    const t = quotedIcmp.type;
    if (t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY) return inner;
  }
  return -ICMP_QUOTE_UNTRACKED;
}

/** A reusable tuple (icmpErrorQuote's output). */
export interface NatTuple { proto: number; src: number; dst: number; sport: number; dport: number }

/**
 * For an ICMP error (dest unreachable 3, source quench 4, redirect 5, time exceeded 11,
 * parameter problem 12) at ipOff: the tuple of the packet it quotes, written into `out`,
 * oriented as the quoted packet was sent (ICMP echo: sport = dport = identifier). Returns
 * ICMP_QUOTE_OK, or why there is no tuple: ICMP_QUOTE_UNTRACKED (not an ICMP error, or the
 * quoted packet is not TCP/UDP/ICMP echo or not a first fragment) or ICMP_QUOTE_MALFORMED
 * (the quoted IP header and 8 bytes of L4 are needed). The error travels against the quoted
 * packet: look its connection up as find(proto, out.dst, out.src, out.dport, out.sport).
 */
export function icmpErrorQuote(buf: Uint8Array, ipOff: number, end: number, out: NatTuple): number {
  const inner = icmpErrorQuoted(buf, ipOff, end);
  if (inner < 0) return -inner;
  const proto = quoted.protocol;
  out.proto = proto;
  out.src = quoted.src;
  out.dst = quoted.dst;
  // The quote holds 8 bytes of L4: a TCP header is cut short, but its ports are there.
  const l4 = quoted.payloadOffset;
  if (proto === IPPROTO_ICMP) {
    out.sport = out.dport = quotedIcmp.id;
  } else if (proto === IPPROTO_TCP) {
    tcp.reset(buf, l4, dataEnd - l4);
    out.sport = tcp.srcPort;
    out.dport = tcp.dstPort;
  } else {
    udp.reset(buf, l4, dataEnd - l4);
    out.sport = udp.srcPort;
    out.dport = udp.dstPort;
  }
  return ICMP_QUOTE_OK;
}

/** icmpErrorQuote() === ICMP_QUOTE_OK: the quoted packet's tuple is in `out`. */
export function icmpErrorInner(buf: Uint8Array, ipOff: number, end: number, out: NatTuple): boolean {
  return icmpErrorQuote(buf, ipOff, end, out) === ICMP_QUOTE_OK;
}

/**
 * Translate an ICMP error in place: the outer destination becomes outerDst (the outer source
 * stays: it is the router or host that reported, unless outerSrc >= 0 is given), the quoted
 * packet's addresses and ports become inSrc/inDst/inSport/inDport (ICMP echo: the identifier
 * becomes inSport). Fixes the quoted IP header checksum, the quoted L4 checksum when it lies
 * within the quoted bytes (incrementally; a UDP checksum of 0 stays 0), the ICMP checksum
 * (recomputed over the whole message) and the outer IP header checksum. Returns false,
 * changing nothing, when icmpErrorInner would, or when the buffer does not hold the whole
 * ICMP message (ipOff + total length > end).
 */
export function natRewriteIcmpError(buf: Uint8Array, ipOff: number, end: number, outerDst: number,
  inSrc: number, inDst: number, inSport: number, inDport: number, outerSrc = -1): boolean {
  const inner = icmpErrorQuoted(buf, ipOff, end);
  if (inner < 0) return false;
  const lim = dataEnd;
  if (ipOff + ip.totalLength > end) return false;

  // The quoted packet.
  const proto = quoted.protocol;
  const l4 = quoted.payloadOffset;
  const addr = setAddrs(quoted, inSrc >>> 0, inDst >>> 0);
  if (proto === IPPROTO_ICMP) {
    const oldId = quotedIcmp.id;
    quotedIcmp.setId(inSport);
    quotedIcmp.setChecksum(update(quotedIcmp.checksum, delta16(oldId, inSport)));
  } else if (proto === IPPROTO_TCP) {
    tcp.reset(buf, l4, lim - l4);
    const ports = delta16(tcp.srcPort, inSport) + delta16(tcp.dstPort, inDport);
    tcp.setSrcPort(inSport);
    tcp.setDstPort(inDport);
    // The checksum only when the quote reaches it.
    if (tcp.checksumOffset + 2 <= lim) tcp.setChecksum(update(tcp.checksum, addr + ports));
  } else {
    udp.reset(buf, l4, lim - l4);
    const ports = delta16(udp.srcPort, inSport) + delta16(udp.dstPort, inDport);
    udp.setSrcPort(inSport);
    udp.setDstPort(inDport);
    const c = udp.checksum;
    if (c !== 0) {
      const n = update(c, addr + ports);
      udp.setChecksum(n === 0 ? 0xffff : n);
    }
  }

  // The ICMP message, over everything it holds (icmpErrorQuoted left `icmp` spanning it).
  icmp.fillChecksum();

  // The outer header.
  outerDst >>>= 0;
  let outer = delta32(ip.dst, outerDst);
  ip.setDst(outerDst);
  if (outerSrc >= 0) {
    outer += delta32(ip.src, outerSrc);
    ip.setSrc(outerSrc);
  }
  ip.setChecksum(update(ip.checksum, outer));
  return true;
}

/**
 * Decrement the TTL of the IPv4 header at ipOff, updating its checksum incrementally. Returns
 * the new TTL. A TTL of 0 or 1 is left as it is and 0 is returned: the caller sends time
 * exceeded (quoting the header as received) instead of forwarding.
 */
export function decTtl(buf: Uint8Array, ipOff: number): number {
  ip.reset(buf, ipOff, IPV4_MIN_HDR_LEN);
  const ttl = ip.ttl;
  if (ttl <= 1) return 0;
  const proto = ip.protocol;
  ip.setTtl(ttl - 1);
  // TTL and protocol share one 16-bit word of the checksum.
  ip.setChecksum(update(ip.checksum, delta16((ttl << 8) | proto, ((ttl - 1) << 8) | proto)));
  return ttl - 1;
}
