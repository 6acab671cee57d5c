// IPv4 header (RFC 791):
//   0 version(4)|ihl(4)  1 tos  2 total length  4 id  6 flags(3)|fragment offset(13)
//   8 ttl  9 protocol  10 header checksum  12 src  16 dst  20 options (ihl*4 - 20 bytes)
//
// reset() checks the buffer holds the 20-byte fixed header; check() then validates version,
// ihl and total length against the buffer. After check() passes, the header (options
// included) and [payloadOffset, payloadOffset+payloadLength) lie inside the buffer.
// The buffer may extend past totalLength (Ethernet padding): lengths come from totalLength.

import { EMPTY_BUF, readU16, readU32, writeU16, writeU32 } from './bytes';
import { fold, onesSum } from './checksum';
import { IpLike, toIpNumber } from './ip';

export const IPV4_MIN_HDR_LEN = 20;
export const IPV4_MAX_HDR_LEN = 60;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** flags field (3 bits, as in (flagsFrag >> 13)) */
export const IPV4_FLAG_DF = 2;
export const IPV4_FLAG_MF = 1;

/** Results of Ipv4View.checkReason(). */
export const IPV4_OK = 0;
export const IPV4_BAD_VERSION = 1;
export const IPV4_BAD_IHL = 2;
export const IPV4_HDR_TRUNCATED = 3;
export const IPV4_BAD_TOTAL_LENGTH = 4;

const VER_IHL = 0;
const TOS = 1;
const TOTAL_LEN = 2;
const ID = 4;
const FLAGS_FRAG = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC = 12;
const DST = 16;

// Field offsets, for code that reads a header without a view (the filters' per-frame decode).
export const IPV4_FLAGS_FRAG_OFF = FLAGS_FRAG;
export const IPV4_PROTOCOL_OFF = PROTOCOL;
export const IPV4_SRC_OFF = SRC;
export const IPV4_DST_OFF = DST;
/** The fragment offset's bits of the flags/fragment word. */
export const IPV4_FRAG_MASK = 0x1fff;

/** Header length in bytes (ihl * 4) of the header at buf[off]. */
export function ipv4HeaderLength(buf: Uint8Array, off: number): number {
  return (buf[off + VER_IHL] & 0xf) << 2;
}

export function ipv4TotalLength(buf: Uint8Array, off: number): number {
  return readU16(buf, off + TOTAL_LEN);
}

/**
 * IPV4_OK, or why the header at buf[off] does not describe a packet inside the len bytes
 * there (Ipv4View.checkReason, for code without a view).
 */
export function ipv4CheckReason(buf: Uint8Array, off: number, len: number): number {
  if (len < IPV4_MIN_HDR_LEN) return IPV4_HDR_TRUNCATED;
  const b = buf[off + VER_IHL];
  if (b >>> 4 !== 4) return IPV4_BAD_VERSION;
  const hl = (b & 0xf) << 2;
  if (hl < IPV4_MIN_HDR_LEN) return IPV4_BAD_IHL;
  if (hl > len) return IPV4_HDR_TRUNCATED;
  const tl = readU16(buf, off + TOTAL_LEN);
  if (tl < hl || tl > len) return IPV4_BAD_TOTAL_LENGTH;
  return IPV4_OK;
}

/** Reusable view of an IPv4 header. Offsets it returns are absolute (into buf). */
export class Ipv4View {
  buf: Uint8Array = EMPTY_BUF;
  off = 0;
  len = 0;

  /** false (view unusable) when len < IPV4_MIN_HDR_LEN. Call check() before trusting lengths. */
  reset(buf: Uint8Array, off: number, len: number): boolean {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return len >= IPV4_MIN_HDR_LEN;
  }

  /** IPV4_OK, or why the header does not describe a packet inside the buffer. */
  checkReason(): number { return ipv4CheckReason(this.buf, this.off, this.len); }

  /** Version 4, ihl >= 5, header inside the buffer, ihl*4 <= totalLength <= buffer length. */
  check(): boolean { return this.checkReason() === IPV4_OK; }

  get version(): number { return this.buf[this.off + VER_IHL] >>> 4; }
  get ihl(): number { return this.buf[this.off + VER_IHL] & 0xf; }
  get headerLength(): number { return ipv4HeaderLength(this.buf, this.off); }
  get tos(): number { return this.buf[this.off + TOS]; }
  get totalLength(): number { return ipv4TotalLength(this.buf, this.off); }
  get id(): number { return readU16(this.buf, this.off + ID); }
  /** 3 bits: IPV4_FLAG_DF | IPV4_FLAG_MF */
  get flags(): number { return this.buf[this.off + FLAGS_FRAG] >>> 5; }
  get dontFragment(): boolean { return (this.buf[this.off + FLAGS_FRAG] & 0x40) !== 0; }
  get moreFragments(): boolean { return (this.buf[this.off + FLAGS_FRAG] & 0x20) !== 0; }
  /** In 8-byte units, as on the wire. */
  get fragOffset(): number { return readU16(this.buf, this.off + FLAGS_FRAG) & 0x1fff; }
  /** Part of a fragmented datagram (MF set or nonzero offset). */
  get isFragment(): boolean { return (readU16(this.buf, this.off + FLAGS_FRAG) & 0x3fff) !== 0; }
  get ttl(): number { return this.buf[this.off + TTL]; }
  get protocol(): number { return this.buf[this.off + PROTOCOL]; }
  get checksum(): number { return readU16(this.buf, this.off + CHECKSUM); }
  get src(): number { return readU32(this.buf, this.off + SRC); }
  get dst(): number { return readU32(this.buf, this.off + DST); }
  get payloadOffset(): number { return this.off + this.headerLength; }
  /** totalLength - headerLength (valid after check()). */
  get payloadLength(): number { return this.totalLength - this.headerLength; }

  /** True when the stored header checksum is right (the sum over the header folds to 0xffff). */
  verifyChecksum(): boolean {
    return fold(onesSum(this.buf, this.off, this.headerLength)) === 0xffff;
  }

  /** The checksum the header should carry (computed as if the field were zero). */
  computeChecksum(): number {
    const sum = onesSum(this.buf, this.off, this.headerLength) - readU16(this.buf, this.off + CHECKSUM);
    return ~fold(sum) & 0xffff;
  }

  fillChecksum(): void { writeU16(this.buf, this.off + CHECKSUM, this.computeChecksum()); }

  // Plain setters: the header checksum is not touched (use csumUpdate16/32 or fillChecksum).
  setSrc(ip: number): void { writeU32(this.buf, this.off + SRC, ip); }
  setDst(ip: number): void { writeU32(this.buf, this.off + DST, ip); }
  setTtl(v: number): void { this.buf[this.off + TTL] = v; }
  setTos(v: number): void { this.buf[this.off + TOS] = v; }
  setId(v: number): void { writeU16(this.buf, this.off + ID, v); }
  setTotalLength(v: number): void { writeU16(this.buf, this.off + TOTAL_LEN, v); }
  setProtocol(v: number): void { this.buf[this.off + PROTOCOL] = v; }
  setChecksum(v: number): void { writeU16(this.buf, this.off + CHECKSUM, v); }
}

/** Sum of the IPv4 pseudo-header (src, dst, zero+protocol, L4 length), unfolded. */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, l4Len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + l4Len;
}

/**
 * TCP/UDP checksum over the pseudo-header (addresses and protocol read from the IPv4 header at
 * ipOff) and the l4Len bytes at l4Off, with the checksum field as stored. Returns 0 when the
 * stored checksum is right; with the field zeroed, returns the value to store (UDP: store 0 as 0xffff).
 */
export function l4Checksum(buf: Uint8Array, ipOff: number, l4Off: number, l4Len: number): number {
  const ph = pseudoHeaderSum(readU32(buf, ipOff + SRC), readU32(buf, ipOff + DST), buf[ipOff + PROTOCOL], l4Len);
  return ~fold(onesSum(buf, l4Off, l4Len, ph)) & 0xffff;
}

/** Write a 20-byte IPv4 header (no options) with its checksum at buf[off]. No allocation. */
export function writeIpv4Header(
  buf: Uint8Array, off: number, src: number, dst: number, protocol: number, totalLength: number,
  ttl = 64, id = 0, flags = 0, tos = 0,
): void {
  buf[off + VER_IHL] = 0x45;
  buf[off + TOS] = tos;
  writeU16(buf, off + TOTAL_LEN, totalLength);
  writeU16(buf, off + ID, id);
  writeU16(buf, off + FLAGS_FRAG, (flags & 7) << 13);
  buf[off + TTL] = ttl;
  buf[off + PROTOCOL] = protocol;
  writeU16(buf, off + CHECKSUM, 0);
  writeU32(buf, off + SRC, src);
  writeU32(buf, off + DST, dst);
  writeU16(buf, off + CHECKSUM, ~fold(onesSum(buf, off, IPV4_MIN_HDR_LEN)) & 0xffff);
}

export interface Ipv4Fields {
  src: IpLike;
  dst: IpLike;
  protocol: number;
  payload?: Uint8Array;
  ttl?: number;
  id?: number;
  /** IPV4_FLAG_DF | IPV4_FLAG_MF */
  flags?: number;
  /** in 8-byte units */
  fragOffset?: number;
  tos?: number;
  /** options bytes, length a multiple of 4, at most 40 */
  options?: Uint8Array;
}

/** A new IPv4 packet with a correct header checksum. For tests and fixtures. */
export function buildIpv4(f: Ipv4Fields): Uint8Array {
  const options = f.options ?? EMPTY_BUF;
  if (options.length % 4 !== 0 || options.length > IPV4_MAX_HDR_LEN - IPV4_MIN_HDR_LEN) {
    throw new RangeError(`IPv4 options must be a multiple of 4 bytes, at most 40 (got ${options.length})`);
  }
  const payload = f.payload ?? EMPTY_BUF;
  const hl = IPV4_MIN_HDR_LEN + options.length;
  const out = new Uint8Array(hl + payload.length);
  out[VER_IHL] = 0x40 | (hl >>> 2);
  out[TOS] = f.tos ?? 0;
  writeU16(out, TOTAL_LEN, out.length);
  writeU16(out, ID, f.id ?? 0);
  writeU16(out, FLAGS_FRAG, (((f.flags ?? 0) & 7) << 13) | ((f.fragOffset ?? 0) & 0x1fff));
  out[TTL] = f.ttl ?? 64;
  out[PROTOCOL] = f.protocol;
  writeU32(out, SRC, toIpNumber(f.src));
  writeU32(out, DST, toIpNumber(f.dst));
  out.set(options, IPV4_MIN_HDR_LEN);
  out.set(payload, hl);
  writeU16(out, CHECKSUM, ~fold(onesSum(out, 0, hl)) & 0xffff);
  return out;
}
