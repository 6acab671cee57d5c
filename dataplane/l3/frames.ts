// Frames the router answers or generates, written into a caller's buffer (docs/L3.md): ARP
// replies (in place) and requests, ICMP echo replies (in place), ICMP errors, and UDP frames
// (the DNS server's answers).
//
// Offsets are where the Ethernet header starts (no virtio-net header: the caller writes or
// keeps that). MACs are (hi, lo) numbers as in fdb.ts, IPv4 addresses uint32. Frames shorter
// than the 60-byte Ethernet minimum are padded with zeros, and the padded length is returned.
// A builder that cannot write its frame (input not what it expects, no room in buf) writes
// nothing that matters and returns 0 / false. No allocation per call: the views are module
// level (each worker has its own module instance) and reused.

import { csumUpdate16 } from '../wire/checksum';
import { ETH_HDR_LEN, ETH_MIN_FRAME_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetView } from '../wire/ethernet';
import { ARP_LEN, ARP_OP_REPLY, ARP_OP_REQUEST, ArpView, writeArp } from '../wire/arp';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_HDR_LEN, IcmpView } from '../wire/icmp';
import { IPPROTO_ICMP, IPPROTO_UDP, IPV4_MIN_HDR_LEN, Ipv4View, writeIpv4Header } from '../wire/ipv4';
import { UDP_HDR_LEN, UdpView } from '../wire/udp';
import { MAC_LEN, isMulticastHi } from '../wire/mac';

/** ICMP errors (RFC 1812 4.3.2.3): the whole error datagram stays within 576 bytes. */
export const ICMP_ERROR_MAX_IP_LEN = 576;
/** ICMP error types other than ICMP_DEST_UNREACH (3) and ICMP_TIME_EXCEEDED (11), in wire/icmp.ts. */
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_PARAMETER_PROBLEM = 12;
/** Destination unreachable codes. */
export const ICMP_NET_UNREACH = 0;
export const ICMP_HOST_UNREACH = 1;
export const ICMP_PROT_UNREACH = 2;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;
/** Time exceeded code: TTL exceeded in transit. */
export const ICMP_EXC_TTL = 0;

/** TOS of the ICMP errors we send: precedence "internetwork control", as Linux does. */
const TOS_INTERNETCONTROL = 0xc0;
const DEFAULT_TTL = 64;

const ethView = new EthernetView();
const arpView = new ArpView();
const ipView = new Ipv4View();
const icmpView = new IcmpView();
const udpView = new UdpView();
const ZERO_MAC = new Uint8Array(MAC_LEN);

function writeEth(buf: Uint8Array, off: number, dstHi: number, dstLo: number, srcHi: number, srcLo: number, type: number): void {
  const e = ethView;
  e.reset(buf, off, ETH_HDR_LEN);
  e.setDstHiLo(dstHi, dstLo);
  e.setSrcHiLo(srcHi, srcLo);
  e.setEtherType(type);
}

/** Zero [off+len, off+60) when len < 60; returns the padded length. */
function pad(buf: Uint8Array, off: number, len: number): number {
  if (len >= ETH_MIN_FRAME_LEN) return len;
  buf.fill(0, off + len, off + ETH_MIN_FRAME_LEN);
  return ETH_MIN_FRAME_LEN;
}

/** A source address a reply or an ICMP error may be sent to: not 0/8, 127/8, multicast, class E or broadcast. */
function unicastIp(ip: number): boolean {
  const a = ip >>> 24;
  return a !== 0 && a !== 127 && a < 224;
}

/**
 * Turn the ARP request at ethOff (len bytes, untagged) into the reply from (myMac, myIp) in
 * place: Ethernet dst = requester's MAC (the ARP sender hardware address), src = myMac; ARP
 * op = reply, target = the requester's sender fields, sender = ours. Whether the request is for
 * myIp is the caller's decision (this also serves proxy ARP). Returns the frame length (60:
 * bytes after the ARP packet are zeroed) or 0 if it is not a valid Ethernet/IPv4 ARP request
 * (or its sender MAC is multicast, or buf has no room for 60 bytes at ethOff).
 */
export function arpReplyInPlace(
  buf: Uint8Array, ethOff: number, len: number, myMacHi: number, myMacLo: number, myIp: number,
): number {
  if (len < ETH_HDR_LEN + ARP_LEN || ethOff + len > buf.length || ethOff + ETH_MIN_FRAME_LEN > buf.length) return 0;
  const e = ethView;
  e.reset(buf, ethOff, len);
  if (e.etherType !== ETHERTYPE_ARP) return 0;
  const a = arpView;
  a.reset(buf, e.payloadOffset, len - ETH_HDR_LEN);
  if (!a.isEthernetIpv4 || a.op !== ARP_OP_REQUEST) return 0;
  const askerHi = a.shaHi;
  const askerLo = a.shaLo;
  if (isMulticastHi(askerHi)) return 0; // a multicast sender cannot be answered
  // Target <- the requester's sender fields; Ethernet dst <- its MAC.
  a.setThaHiLo(askerHi, askerLo);
  a.setTpa(a.spa);
  e.setDstHiLo(askerHi, askerLo);
  e.setSrcHiLo(myMacHi, myMacLo);
  a.setOp(ARP_OP_REPLY);
  a.setShaHiLo(myMacHi, myMacLo);
  a.setSpa(myIp);
  return pad(buf, ethOff, ETH_HDR_LEN + ARP_LEN);
}

/**
 * A broadcast ARP request who-has targetIp tell srcIp (from srcMac), at buf[off]. Returns the
 * frame length (60), or 0 when buf has no room.
 */
export function writeArpRequest(
  buf: Uint8Array, off: number, srcMacHi: number, srcMacLo: number, srcIp: number, targetIp: number,
): number {
  if (off < 0 || off + ETH_MIN_FRAME_LEN > buf.length) return 0;
  writeEth(buf, off, 0xffff, 0xffffffff, srcMacHi, srcMacLo, ETHERTYPE_ARP);
  const a = off + ETH_HDR_LEN;
  writeArp(buf, a, ARP_OP_REQUEST, ZERO_MAC, srcIp, ZERO_MAC, targetIp);
  arpView.reset(buf, a, ARP_LEN);
  arpView.setShaHiLo(srcMacHi, srcMacLo);
  return pad(buf, off, ETH_HDR_LEN + ARP_LEN);
}

/**
 * Turn the ICMP echo request (Ethernet at ethOff, IPv4 at ipOff, frame ending at end) into the
 * echo reply in place: Ethernet dst = the old source, src = myMac; IP addresses swapped, TTL
 * 64, header checksum recomputed (id, flags, TOS and options kept); ICMP type 0 (code kept, as
 * Linux does) with the checksum updated incrementally. The frame keeps its length.
 * Returns false, changing nothing, if it is not a valid echo request: IPv4 header or total
 * length bad, header or ICMP checksum wrong, a fragment, not ICMP type 8, or a source that
 * cannot be answered (0/8, 127/8, multicast, broadcast; a multicast Ethernet source).
 * Whether the destination is one of ours is the caller's decision.
 */
export function icmpEchoReplyInPlace(
  buf: Uint8Array, ethOff: number, ipOff: number, end: number, myMacHi: number, myMacLo: number,
): boolean {
  if (ipOff - ethOff < ETH_HDR_LEN || end > buf.length) return false;
  const ip = ipView;
  if (!ip.reset(buf, ipOff, end - ipOff) || !ip.check() || ip.isFragment || ip.protocol !== IPPROTO_ICMP) return false;
  const src = ip.src;
  const e = ethView;
  e.reset(buf, ethOff, ipOff - ethOff);
  if (!unicastIp(src) || e.srcIsMulticast || !ip.verifyChecksum()) return false;
  const c = icmpView;
  if (!c.reset(buf, ip.payloadOffset, ip.payloadLength) || c.type !== ICMP_ECHO_REQUEST) return false;
  if (!c.verifyChecksum()) return false;

  e.setDstHiLo(e.srcHi, e.srcLo);
  e.setSrcHiLo(myMacHi, myMacLo);
  ip.setSrc(ip.dst);
  ip.setDst(src);
  ip.setTtl(DEFAULT_TTL);
  ip.fillChecksum();
  // Type and code share one 16-bit word of the checksum.
  const code = c.code;
  c.setType(ICMP_ECHO_REPLY);
  c.setChecksum(csumUpdate16(c.checksum, (ICMP_ECHO_REQUEST << 8) | code, (ICMP_ECHO_REPLY << 8) | code));
  return true;
}

/**
 * True when an ICMP message of this type is an error (or unknown, treated as an error, as
 * Linux does): no ICMP error is ever sent about it.
 */
function icmpTypeIsError(type: number): boolean {
  // Informational: echo reply 0, echo 8, router advert/solicit 9/10, timestamp 13/14,
  // information 15/16, address mask 17/18.
  return !(type === 0 || type === 8 || type === 9 || type === 10 || (type >= 13 && type <= 18));
}

/**
 * An ICMP error (type/code, e.g. 3/3 port unreachable, 3/1 host unreachable, 11/0 TTL
 * exceeded) about the IPv4 packet at [origIpOff, origEnd) in origBuf, written at buf[off]:
 * Ethernet srcMac -> dstMac (the original Ethernet source, passed in), IPv4 srcIp -> the
 * original source (TTL 64, id 0, TOS 0xc0 as Linux), ICMP header (`rest`: the 4 bytes after
 * the checksum, e.g. the next-hop MTU for 3/4; default 0), then as much of the original as
 * fits in 576 bytes of IP total length (RFC 1812 4.3.2.3). Returns the frame length, or 0
 * (nothing sent) when the original is not a valid IPv4 packet (header checksum included), is
 * an ICMP error (or of an unknown ICMP type), a non-first fragment, from a source that is not
 * unicast (0/8, 127/8, multicast, broadcast) or to a broadcast/multicast destination (RFC 1812
 * 4.3.2.7; a subnet-directed broadcast or a link-layer broadcast is the caller's to check), or
 * when buf has no room. buf and origBuf may be the same buffer (the regions may overlap).
 */
export function writeIcmpError(
  buf: Uint8Array, off: number, srcMacHi: number, srcMacLo: number, dstMacHi: number, dstMacLo: number,
  srcIp: number, type: number, code: number, origBuf: Uint8Array, origIpOff: number, origEnd: number,
  rest = 0,
): number {
  if (origEnd > origBuf.length) return 0;
  const ip = ipView;
  if (!ip.reset(origBuf, origIpOff, origEnd - origIpOff) || !ip.check() || !ip.verifyChecksum()) return 0;
  if (ip.fragOffset !== 0) return 0;
  const origSrc = ip.src;
  const origDst = ip.dst;
  if (!unicastIp(origSrc) || origDst >>> 28 >= 0xe) return 0; // multicast, class E, 255.255.255.255
  if (ip.protocol === IPPROTO_ICMP) {
    // Only the type is needed: it is the first byte.
    if (ip.payloadLength < 1) return 0;
    icmpView.reset(origBuf, ip.payloadOffset, ip.payloadLength);
    if (icmpTypeIsError(icmpView.type)) return 0;
  }
  let quoted = ip.totalLength;
  const room = ICMP_ERROR_MAX_IP_LEN - IPV4_MIN_HDR_LEN - ICMP_HDR_LEN;
  if (quoted > room) quoted = room;
  const ipLen = IPV4_MIN_HDR_LEN + ICMP_HDR_LEN + quoted;
  const len = ETH_HDR_LEN + ipLen;
  if (off < 0 || off + (len < ETH_MIN_FRAME_LEN ? ETH_MIN_FRAME_LEN : len) > buf.length) return 0;
  const tos = TOS_INTERNETCONTROL | (ip.tos & 0x1e);

  // The quote first: the output may overlap the original (same buffer).
  const ipo = off + ETH_HDR_LEN;
  const c = ipo + IPV4_MIN_HDR_LEN;
  copyBytes(buf, c + ICMP_HDR_LEN, origBuf, origIpOff, quoted);
  writeEth(buf, off, dstMacHi, dstMacLo, srcMacHi, srcMacLo, ETHERTYPE_IPV4);
  writeIpv4Header(buf, ipo, srcIp, origSrc, IPPROTO_ICMP, ipLen, DEFAULT_TTL, 0, 0, tos);
  const m = icmpView;
  m.reset(buf, c, ICMP_HDR_LEN + quoted);
  m.setType(type);
  m.setCode(code);
  // `rest` is the 4 bytes the echo view calls id and sequence.
  m.setId(rest >>> 16);
  m.setSeq(rest & 0xffff);
  m.fillChecksum();
  return pad(buf, off, len);
}

/** memmove from src[sOff, sOff+n) to dst[dOff, ...), correct when both view one buffer. */
function copyBytes(dst: Uint8Array, dOff: number, src: Uint8Array, sOff: number, n: number): void {
  if (dst.buffer === src.buffer) {
    const d = dst.byteOffset + dOff;
    const s = src.byteOffset + sOff;
    if (d === s) return;
    const sIn = s - dst.byteOffset; // the source, as an index into dst
    if (sIn >= 0 && sIn + n <= dst.length) { dst.copyWithin(dOff, sIn, sIn + n); return; }
    if (d > s) { for (let i = n - 1; i >= 0; i--) dst[dOff + i] = src[sOff + i]; return; }
  }
  for (let i = 0; i < n; i++) dst[dOff + i] = src[sOff + i];
}

/**
 * A UDP/IPv4 frame (for DNS answers the main thread sends) at buf[off]: full IP and UDP
 * checksums (a computed 0 is sent as 0xffff), TTL 64, DF clear, id 0, TOS 0. Returns the frame
 * length, or 0 when the datagram would exceed 65535 bytes of IP or buf has no room.
 */
export function writeUdpFrame(
  buf: Uint8Array, off: number, srcMacHi: number, srcMacLo: number, dstMacHi: number, dstMacLo: number,
  srcIp: number, dstIp: number, sport: number, dport: number, payload: Uint8Array,
): number {
  const udpLen = UDP_HDR_LEN + payload.length;
  const ipLen = IPV4_MIN_HDR_LEN + udpLen;
  const len = ETH_HDR_LEN + ipLen;
  if (ipLen > 0xffff || off < 0 || off + (len < ETH_MIN_FRAME_LEN ? ETH_MIN_FRAME_LEN : len) > buf.length) return 0;
  const ipo = off + ETH_HDR_LEN;
  const u = ipo + IPV4_MIN_HDR_LEN;
  copyBytes(buf, u + UDP_HDR_LEN, payload, 0, payload.length);
  writeEth(buf, off, dstMacHi, dstMacLo, srcMacHi, srcMacLo, ETHERTYPE_IPV4);
  writeIpv4Header(buf, ipo, srcIp, dstIp, IPPROTO_UDP, ipLen);
  const v = udpView;
  v.reset(buf, u, udpLen);
  v.setSrcPort(sport);
  v.setDstPort(dport);
  v.setLength(udpLen);
  v.fillChecksum(ipo);
  return pad(buf, off, len);
}
