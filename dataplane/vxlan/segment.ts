// Software TCP segmentation (GSO) for frames that leave through a VXLAN segment.
//
// Containers keep their default offloads: their veth hands vsw 64 KB TCP "super frames"
// (virtio-net GSO_TCPV4, with a partial checksum) and frames whose TCP/UDP checksum is only
// partial (NEEDS_CSUM). A local port takes them as they are (the receiving kernel finishes
// the work), but a VXLAN peer receives a plain datagram: vsw must finish them before
// encapsulation, as the kernel's vxlan device does (skb_gso_segment / skb_checksum_help).
//
// Segmentation follows tcp_gso_segment: every segment carries a copy of the Ethernet, IPv4
// and TCP headers; the payload is cut every gso_size bytes; the IPv4 total length, id (+1 per
// segment) and header checksum, the TCP sequence number and checksum are rewritten; FIN and
// PSH stay on the last segment only, CWR on the first only. IPv6 (GSO_TCPV6) and UDP GSO are
// not segmented here (the caller drops them under a named reason).
//
// Nothing allocates: a caller-owned SegPlan is filled once per frame, then each segment is
// written straight into the caller's buffer (the egress scratch area).

import { readU16, readU32, writeU16, writeU32 } from '../wire/bytes';
import { fold, onesSum, finishPartialChecksum } from '../wire/checksum';
import { ETH_HDR_LEN, ETHERTYPE_IPV4 } from '../wire/ethernet';
import { IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4';
import { TCP_CWR, TCP_FIN, TCP_PSH } from '../wire/tcp';

/**
 * The folded one's-complement sum used for segment checksums: wire/checksum.ts by default;
 * the worker loop installs the native addon's (workers/io.ts onesSum), ~10x faster.
 */
let sum16 = (buf: Uint8Array, off: number, len: number, initial: number): number => fold(onesSum(buf, off, len, initial));

/** fold(onesSum(...)) with the installed implementation (segments here, coalescing in gro.ts). */
export function sum16Of(buf: Uint8Array, off: number, len: number, initial: number): number {
  return sum16(buf, off, len, initial);
}

/** Use `fn` (same contract as fold(onesSum(...))) for segment checksums. */
export function useChecksum(fn: (buf: Uint8Array, off: number, len: number, initial: number) => number): void {
  sum16 = fn;
}

/** How one TCPv4 super frame is cut. */
export class SegPlan {
  /** Ethernet + IPv4 + TCP header bytes copied into every segment. */
  hdrLen = 0;
  ipLen = 0;
  tcpLen = 0;
  /** Payload bytes in the super frame, and per segment (the last may be shorter). */
  payload = 0;
  mss = 0;
  segments = 0;
}

/**
 * Plan the segmentation of the TCPv4 frame buf[eth, eth+len) into segments of at most `mss`
 * payload bytes. false when it is not an (untagged) IPv4 TCP frame with sane headers, or mss
 * is 0.
 */
export function planTcp4(buf: Uint8Array, eth: number, len: number, mss: number, plan: SegPlan): boolean {
  if (mss <= 0 || len < ETH_HDR_LEN + 40 || readU16(buf, eth + 12) !== ETHERTYPE_IPV4) return false;
  const ip = eth + ETH_HDR_LEN;
  if (buf[ip] >> 4 !== 4 || buf[ip + 9] !== IPPROTO_TCP) return false;
  const ihl = (buf[ip] & 0x0f) * 4;
  if (ihl < 20 || len < ETH_HDR_LEN + ihl + 20) return false;
  const doff = (buf[ip + ihl + 12] >> 4) * 4;
  const hdr = ETH_HDR_LEN + ihl + doff;
  if (doff < 20 || len < hdr) return false;
  plan.hdrLen = hdr;
  plan.ipLen = ihl;
  plan.tcpLen = doff;
  plan.payload = len - hdr;
  plan.mss = mss;
  plan.segments = plan.payload === 0 ? 1 : Math.ceil(plan.payload / mss);
  return true;
}

/** Bytes segment k of the plan takes (headers included). */
export function segmentLength(plan: SegPlan, k: number): number {
  const rest = plan.payload - k * plan.mss;
  return plan.hdrLen + (rest < plan.mss ? rest : plan.mss);
}

/**
 * Write segment k of the super frame at src[eth, ...) to dst[at, ...): headers, payload
 * slice, fixed lengths, ids, sequence, flags and full checksums. Returns its length.
 * `dst` may be `src` (a disjoint area of the same buffer).
 */
export function writeSegment(src: Uint8Array, eth: number, plan: SegPlan, k: number, dst: Uint8Array, at: number): number {
  const len = segmentLength(plan, k);
  const n = len - plan.hdrLen;
  const from = eth + plan.hdrLen + k * plan.mss;
  if (dst === src) {
    dst.copyWithin(at, eth, eth + plan.hdrLen);
    dst.copyWithin(at + plan.hdrLen, from, from + n);
  } else {
    dst.set(src.subarray(eth, eth + plan.hdrLen), at);
    dst.set(src.subarray(from, from + n), at + plan.hdrLen);
  }
  const ip = at + ETH_HDR_LEN;
  writeU16(dst, ip + 2, plan.ipLen + plan.tcpLen + n);
  writeU16(dst, ip + 4, (readU16(src, eth + ETH_HDR_LEN + 4) + k) & 0xffff);
  writeU16(dst, ip + 10, 0);
  writeU16(dst, ip + 10, ~fold(onesSum(dst, ip, plan.ipLen)) & 0xffff);
  const tcp = ip + plan.ipLen;
  writeU32(dst, tcp + 4, (readU32(src, eth + ETH_HDR_LEN + plan.ipLen + 4) + k * plan.mss) >>> 0);
  let flags = dst[tcp + 13];
  if (k !== plan.segments - 1) flags &= ~(TCP_FIN | TCP_PSH);
  if (k !== 0) flags &= ~TCP_CWR;
  dst[tcp + 13] = flags;
  writeU16(dst, tcp + 16, 0);
  const srcIp = readU32(dst, ip + 12);
  const dstIp = readU32(dst, ip + 16);
  const ph = (srcIp >>> 16) + (srcIp & 0xffff) + (dstIp >>> 16) + (dstIp & 0xffff) + IPPROTO_TCP + plan.tcpLen + n;
  writeU16(dst, tcp + 16, ~sum16(dst, tcp, plan.tcpLen + n, ph) & 0xffff);
  return len;
}

/**
 * Finish a partial (NEEDS_CSUM) checksum of the frame buf[eth, eth+len) in place, from the
 * virtio-net header's csum_start / csum_offset. false when they do not fit the frame.
 */
export function finishChecksum(buf: Uint8Array, eth: number, len: number, csumStart: number, csumOffset: number): boolean {
  return finishPartialChecksum(buf, eth, csumStart, csumOffset, len);
}

/**
 * A decapsulated IPv4 TCP/UDP frame whose checksum field still holds only the
 * pseudo-header sum (the sender left it to an offload that never ran: e.g. a kernel vxlan
 * whose underlay is a veth hands the datagram over CHECKSUM_PARTIAL, and a UDP socket gets
 * the bytes as they are) gets its checksum finished here. A field that merely happens to
 * equal that sum but verifies as a complete checksum is left alone. Cheap for every other
 * frame (a few header reads). Returns true when it finished one.
 */
export function repairPartialChecksum(buf: Uint8Array, eth: number, len: number): boolean {
  if (len < ETH_HDR_LEN + 28 || readU16(buf, eth + 12) !== ETHERTYPE_IPV4) return false;
  const ip = eth + ETH_HDR_LEN;
  const ihl = (buf[ip] & 0x0f) * 4;
  const proto = buf[ip + 9];
  if ((readU16(buf, ip + 6) & 0x3fff) !== 0 || ihl < 20) return false; // fragments: no L4 header to trust
  const total = readU16(buf, ip + 2);
  if (total > len - ETH_HDR_LEN || total < ihl + 8) return false;
  const l4 = ip + ihl;
  const l4Len = total - ihl;
  const field = proto === IPPROTO_TCP ? l4 + 16 : proto === IPPROTO_UDP ? l4 + 6 : -1;
  if (field < 0 || field + 2 > ip + total) return false;
  const stored = readU16(buf, field);
  if (proto === IPPROTO_UDP && stored === 0) return false;
  const src = readU32(buf, ip + 12);
  const dst = readU32(buf, ip + 16);
  const pseudo = fold((src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4Len);
  if (stored !== pseudo) return false;
  const body = onesSum(buf, l4, l4Len);
  // Complete after all? (pseudo-header + segment, checksum included, sums to 0xffff)
  if (fold(body + pseudo) === 0xffff) return false;
  const c = ~fold(body) & 0xffff;
  writeU16(buf, field, c === 0 && proto === IPPROTO_UDP ? 0xffff : c);
  return true;
}


/**
 * A decapsulated IPv4 TCP frame larger than the overlay MTU: a kernel vxlan peer whose
 * underlay is a veth hands over its TSO super frames whole (64 KB UDP datagrams; a NIC would
 * have cut them). Instead of dropping them, write a virtio-net GSO header at buf[vnet]
 * (TCPV4, segments of mtu - headers, the partial checksum the sender left) so the receiving
 * port's kernel takes it as it takes any super frame. false (nothing written) when it is not
 * such a frame: then it is vxlan-oversize.
 */
export function markTcpGso(buf: Uint8Array, vnet: number, eth: number, len: number, mtu: number): boolean {
  if (len < ETH_HDR_LEN + 40 || readU16(buf, eth + 12) !== ETHERTYPE_IPV4) return false;
  const ip = eth + ETH_HDR_LEN;
  if (buf[ip] >> 4 !== 4 || buf[ip + 9] !== IPPROTO_TCP || (readU16(buf, ip + 6) & 0x3fff) !== 0) return false;
  const ihl = (buf[ip] & 0x0f) * 4;
  if (ihl < 20 || readU16(buf, ip + 2) !== len - ETH_HDR_LEN) return false;
  const doff = (buf[ip + ihl + 12] >> 4) * 4;
  const mss = mtu - ihl - doff;
  if (doff < 20 || mss <= 0 || len < ETH_HDR_LEN + ihl + doff) return false;
  const le16 = (at: number, v: number): void => { buf[at] = v & 0xff; buf[at + 1] = (v >>> 8) & 0xff; };
  buf[vnet] = 1; // VNET_F_NEEDS_CSUM
  buf[vnet + 1] = 1; // VNET_GSO_TCPV4
  le16(vnet + 2, ETH_HDR_LEN + ihl + doff);
  le16(vnet + 4, mss);
  le16(vnet + 6, ETH_HDR_LEN + ihl);
  le16(vnet + 8, 16);
  return true;
}
