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

const IP_TOTAL_LEN = 2;
const IP_FRAG = 6;
const IP_TTL = 8;
const IP_PROTO = 9;
const IP_CSUM = 10;
const IP_SRC = 12;
const IP_DST = 16;

const PROTO_ICMP = 1;
const PROTO_TCP = 6;
const PROTO_UDP = 17;

const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;

function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

function rd32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

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
 * >= header length) and sets hdrEnd and dataEnd = min(ipOff + total length, end).
 */
function ipLimit(buf: Uint8Array, ipOff: number, end: number): boolean {
  if (ipOff < 0 || end > buf.length || ipOff + 20 > end) return false;
  const vihl = buf[ipOff];
  if (vihl >>> 4 !== 4) return false;
  const hl = (vihl & 0xf) << 2;
  if (hl < 20) return false;
  const tl = rd16(buf, ipOff + IP_TOTAL_LEN);
  if (tl < hl) return false;
  hdrEnd = ipOff + hl;
  dataEnd = ipOff + tl < end ? ipOff + tl : end;
  return hdrEnd <= dataEnd;
}

/**
 * Write an IPv4 header's addresses, updating its checksum incrementally; returns the sum of
 * the changes (for the L4 pseudo-header checksum).
 */
function setAddrs(buf: Uint8Array, ipOff: number, src: number, dst: number): number {
  const addr = delta32(rd32(buf, ipOff + IP_SRC), src) + delta32(rd32(buf, ipOff + IP_DST), dst);
  wr32(buf, ipOff + IP_SRC, src);
  wr32(buf, ipOff + IP_DST, dst);
  wr16(buf, ipOff + IP_CSUM, update(rd16(buf, ipOff + IP_CSUM), addr));
  return addr;
}

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
  const proto = buf[ipOff + IP_PROTO];
  const firstFrag = (rd16(buf, ipOff + IP_FRAG) & 0x1fff) === 0;
  // What the L4 header holds that changes: 1 TCP/UDP ports, 2 ICMP echo id, 0 nothing.
  let l4Kind = 0;
  let csumAt = 0;
  if (firstFrag) {
    if (proto === PROTO_TCP) {
      if (l4 + 20 > dataEnd) return false;
      l4Kind = 1;
      csumAt = l4 + 16;
    } else if (proto === PROTO_UDP) {
      if (l4 + 8 > dataEnd) return false;
      l4Kind = 1;
      csumAt = l4 + 6;
    } else if (proto === PROTO_ICMP) {
      if (l4 + 8 > dataEnd) return false;
      const type = buf[l4];
      if (type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY) { l4Kind = 2; csumAt = l4 + 2; }
    }
  }

  src >>>= 0;
  dst >>>= 0;
  const oldSrc = rd32(buf, ipOff + IP_SRC);
  const oldDst = rd32(buf, ipOff + IP_DST);
  const addr = setAddrs(buf, ipOff, src, dst);

  if (l4Kind === 1) {
    const oldSport = rd16(buf, l4);
    const oldDport = rd16(buf, l4 + 2);
    wr16(buf, l4, sport);
    wr16(buf, l4 + 2, dport);
    const c = rd16(buf, csumAt);
    if (partial) {
      wr16(buf, csumAt, partialUpdate32(partialUpdate32(c, oldSrc, src), oldDst, dst));
    } else if (proto === PROTO_TCP || c !== 0) {
      let n = update(c, addr + delta16(oldSport, sport) + delta16(oldDport, dport));
      if (n === 0 && proto === PROTO_UDP) n = 0xffff;
      wr16(buf, csumAt, n);
    }
  } else if (l4Kind === 2) {
    const oldId = rd16(buf, l4 + 4);
    wr16(buf, l4 + 4, sport);
    if (!partial) wr16(buf, csumAt, update(rd16(buf, csumAt), delta16(oldId, sport)));
  }
  return true;
}

/** ICMP types that quote the packet they are about. */
export function isIcmpErrorType(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/**
 * Offset of the quoted IPv4 header of the ICMP error at ipOff, or -1 (not an ICMP error; a
 * non-first fragment; the quoted header and 8 bytes of its L4 header not all present; the
 * quoted packet not TCP, UDP or ICMP echo, or a non-first fragment). Sets hdrEnd/dataEnd for
 * the outer packet.
 */
function icmpErrorQuoted(buf: Uint8Array, ipOff: number, end: number): number {
  if (!ipLimit(buf, ipOff, end)) return -1;
  if (buf[ipOff + IP_PROTO] !== PROTO_ICMP || (rd16(buf, ipOff + IP_FRAG) & 0x1fff) !== 0) return -1;
  const icmp = hdrEnd;
  const lim = dataEnd;
  if (icmp + 8 > lim || !isIcmpErrorType(buf[icmp])) return -1;
  const inner = icmp + 8;
  if (inner + 20 > lim) return -1;
  const vihl = buf[inner];
  if (vihl >>> 4 !== 4) return -1;
  const hl = (vihl & 0xf) << 2;
  if (hl < 20 || inner + hl + 8 > lim) return -1;
  if ((rd16(buf, inner + IP_FRAG) & 0x1fff) !== 0) return -1;
  const proto = buf[inner + IP_PROTO];
  if (proto === PROTO_TCP || proto === PROTO_UDP) return inner;
  if (proto === PROTO_ICMP) {
    const t = buf[inner + hl];
    if (t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY) return inner;
  }
  return -1;
}

/** A reusable tuple (icmpErrorInner's output). */
export interface NatTuple { proto: number; src: number; dst: number; sport: number; dport: number }

/**
 * For an ICMP error (dest unreachable 3, source quench 4, redirect 5, time exceeded 11,
 * parameter problem 12) at ipOff: the tuple of the packet it quotes, written into `out`,
 * oriented as the quoted packet was sent (ICMP echo: sport = dport = identifier). Returns
 * false when it is not an ICMP error or the quoted packet is incomplete (its IP header and 8
 * bytes of L4 are needed) or not TCP/UDP/ICMP echo. The error travels against the quoted
 * packet: look its connection up as find(proto, out.dst, out.src, out.dport, out.sport).
 */
export function icmpErrorInner(buf: Uint8Array, ipOff: number, end: number,
  out: { proto: number; src: number; dst: number; sport: number; dport: number }): boolean {
  const inner = icmpErrorQuoted(buf, ipOff, end);
  if (inner < 0) return false;
  const proto = buf[inner + IP_PROTO];
  const l4 = inner + ((buf[inner] & 0xf) << 2);
  out.proto = proto;
  out.src = rd32(buf, inner + IP_SRC);
  out.dst = rd32(buf, inner + IP_DST);
  if (proto === PROTO_ICMP) {
    out.sport = out.dport = rd16(buf, l4 + 4);
  } else {
    out.sport = rd16(buf, l4);
    out.dport = rd16(buf, l4 + 2);
  }
  return true;
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
  const icmp = hdrEnd;
  const lim = dataEnd;
  if (ipOff + rd16(buf, ipOff + IP_TOTAL_LEN) > end) return false;

  // The quoted packet.
  const proto = buf[inner + IP_PROTO];
  const l4 = inner + ((buf[inner] & 0xf) << 2);
  const addr = setAddrs(buf, inner, inSrc >>> 0, inDst >>> 0);
  if (proto === PROTO_ICMP) {
    const oldId = rd16(buf, l4 + 4);
    wr16(buf, l4 + 4, inSport);
    wr16(buf, l4 + 2, update(rd16(buf, l4 + 2), delta16(oldId, inSport)));
  } else {
    const oldSport = rd16(buf, l4);
    const oldDport = rd16(buf, l4 + 2);
    wr16(buf, l4, inSport);
    wr16(buf, l4 + 2, inDport);
    const csumAt = proto === PROTO_TCP ? l4 + 16 : l4 + 6;
    if (csumAt + 2 <= lim) {
      const c = rd16(buf, csumAt);
      if (proto === PROTO_TCP || c !== 0) {
        let n = update(c, addr + delta16(oldSport, inSport) + delta16(oldDport, inDport));
        if (n === 0 && proto === PROTO_UDP) n = 0xffff;
        wr16(buf, csumAt, n);
      }
    }
  }

  // The ICMP message, over everything it holds.
  buf[icmp + 2] = 0;
  buf[icmp + 3] = 0;
  let sum = 0;
  let i = icmp;
  const last = lim - 1;
  for (; i < last; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i === last) sum += buf[i] << 8;
  wr16(buf, icmp + 2, ~fold(sum) & 0xffff);

  // The outer header.
  outerDst >>>= 0;
  const oldOuterDst = rd32(buf, ipOff + IP_DST);
  let outer = delta32(oldOuterDst, outerDst);
  wr32(buf, ipOff + IP_DST, outerDst);
  if (outerSrc >= 0) {
    const oldOuterSrc = rd32(buf, ipOff + IP_SRC);
    outer += delta32(oldOuterSrc, outerSrc);
    wr32(buf, ipOff + IP_SRC, outerSrc);
  }
  wr16(buf, ipOff + IP_CSUM, update(rd16(buf, ipOff + IP_CSUM), outer));
  return true;
}

/**
 * Decrement the TTL of the IPv4 header at ipOff, updating its checksum incrementally. Returns
 * the new TTL. A TTL of 0 or 1 is left as it is and 0 is returned: the caller sends time
 * exceeded (quoting the header as received) instead of forwarding.
 */
export function decTtl(buf: Uint8Array, ipOff: number): number {
  const ttl = buf[ipOff + IP_TTL];
  if (ttl <= 1) return 0;
  const proto = buf[ipOff + IP_PROTO];
  buf[ipOff + IP_TTL] = ttl - 1;
  wr16(buf, ipOff + IP_CSUM, update(rd16(buf, ipOff + IP_CSUM), delta16((ttl << 8) | proto, ((ttl - 1) << 8) | proto)));
  return ttl - 1;
}
