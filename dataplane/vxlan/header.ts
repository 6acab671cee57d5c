// The VXLAN outer headers vsw writes and reads (RFC 7348), as zero-copy functions over a
// buffer. vsw sends through a raw IPPROTO_UDP socket (workers/io.ts openUdp): the kernel
// writes the IP header, vsw the 8-byte UDP header and the 8-byte VXLAN header; it receives
// from a UDP socket, so a received datagram starts at the VXLAN header.
//
// VXLAN header: flags (0x08 = I, "VNI valid"), 24 reserved bits, the 24-bit VNI, 8 reserved
// bits. Reserved bits are written 0 and ignored on receive; a header without the I flag is
// refused (the kernel's vxlan does the same).
// UDP: source port from a hash of the inner flow in 49152..65535 (what Linux uses, so the
// underlay's ECMP/RSS spreads flows), destination the VXLAN port, checksum 0 (allowed over
// IPv4, RFC 7348 section 5).

import { readU16, readU32, writeU16 } from '../wire/bytes';
import { ETH_HDR_LEN, ETHERTYPE_IPV4 } from '../wire/ethernet';
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_FRAG_MASK } from '../wire/ipv4';
import { UDP_HDR_LEN } from '../wire/udp';

export const VXLAN_HDR_LEN = 8;
/** UDP + VXLAN: what vsw writes in front of the inner frame. */
export const VXLAN_OUTER_LEN = UDP_HDR_LEN + VXLAN_HDR_LEN;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14): underlay MTU - 50 = inner MTU. */
export const VXLAN_OVERHEAD = 50;
/** The IANA port (the kernel's own default is 8472 unless `dstport 4789`). */
export const VXLAN_PORT = 4789;
export const VXLAN_FLAG_I = 0x08;
export const VNI_MAX = 0xffffff;
/** The outer UDP source port range (RFC 7348 section 5: the dynamic range; Linux hashes into it the same way). */
export const VXLAN_SPORT_MIN = 49152;
export const VXLAN_SPORT_MAX = 65535;

/** parseVxlan results below zero. */
export const VX_RUNT = -1;
export const VX_BAD_FLAGS = -2;

/**
 * The VNI of the VXLAN datagram buf[off, off+len) (header then inner Ethernet frame), or
 * VX_RUNT (shorter than the header plus an Ethernet header), VX_BAD_FLAGS (I flag unset).
 */
export function parseVxlan(buf: Uint8Array, off: number, len: number): number {
  if (len < VXLAN_HDR_LEN + ETH_HDR_LEN) return VX_RUNT;
  if ((buf[off] & VXLAN_FLAG_I) === 0) return VX_BAD_FLAGS;
  return (readU32(buf, off + 4) >>> 8) & VNI_MAX;
}

/** Write the VXLAN header for `vni` at buf[off] (reserved bits zero). */
export function writeVxlanHeader(buf: Uint8Array, off: number, vni: number): void {
  buf[off] = VXLAN_FLAG_I;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = (vni >>> 16) & 0xff;
  buf[off + 5] = (vni >>> 8) & 0xff;
  buf[off + 6] = vni & 0xff;
  buf[off + 7] = 0;
}

/**
 * Write UDP + VXLAN headers at buf[off, off+16) for an inner frame of innerLen bytes that
 * follows them: source port sport, destination dport, checksum 0.
 */
export function writeOuter(buf: Uint8Array, off: number, sport: number, dport: number, vni: number, innerLen: number): void {
  writeU16(buf, off, sport);
  writeU16(buf, off + 2, dport);
  writeU16(buf, off + 4, VXLAN_OUTER_LEN + innerLen);
  writeU16(buf, off + 6, 0);
  writeVxlanHeader(buf, off + UDP_HDR_LEN, vni);
}

/**
 * The outer source port for the inner frame at buf[eth, eth+len): a hash of its MACs and
 * EtherType, and for IPv4 of the addresses, protocol and (unfragmented TCP/UDP) ports, so
 * one flow keeps one port and different flows spread.
 */
export function flowSourcePort(buf: Uint8Array, eth: number, len: number): number {
  let h = 0x811c9dc5 | 0;
  h = mix(h, readU32(buf, eth) ^ readU32(buf, eth + 6));
  h = mix(h, (readU16(buf, eth + 4) << 16) ^ readU16(buf, eth + 10));
  const type = readU16(buf, eth + 12);
  h = mix(h, type);
  const ip = eth + ETH_HDR_LEN;
  if (type === ETHERTYPE_IPV4 && len >= ETH_HDR_LEN + 20) {
    h = mix(h, readU32(buf, ip + 12));
    h = mix(h, readU32(buf, ip + 16));
    const proto = buf[ip + 9];
    h = mix(h, proto);
    const ihl = (buf[ip] & 0x0f) * 4;
    const frag = readU16(buf, ip + 6) & IPV4_FRAG_MASK;
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && frag === 0 && len >= ETH_HDR_LEN + ihl + 4) {
      h = mix(h, readU32(buf, ip + ihl));
    }
  }
  h ^= h >>> 16;
  return VXLAN_SPORT_MIN + ((h >>> 0) % (VXLAN_SPORT_MAX - VXLAN_SPORT_MIN + 1));
}

function mix(h: number, v: number): number {
  let x = Math.imul(h ^ v, 0x01000193);
  x ^= x >>> 13;
  return Math.imul(x, 0x5bd1e995);
}

/** Dotted text of an IPv4 address held as a (possibly negative) 32-bit number. */
export function ipText(a: number): string {
  return `${(a >>> 24) & 255}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** A dotted IPv4 address as a signed 32-bit number (the form io.recvUdp/sendUdp use); NaN when not one. */
export function ipValue(text: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return NaN;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return NaN;
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) | 0;
}
