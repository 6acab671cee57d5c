// UDP header (RFC 768): 0 src port  2 dst port  4 length (header + data)  6 checksum.
// A checksum of 0 means "none sent" (IPv4 only); a computed 0 is sent as 0xffff.

import { EMPTY_BUF, readU16, writeU16 } from './bytes';
import { fold, onesSum } from './checksum';
import { IpLike, toIpNumber } from './ip';
import { IPPROTO_UDP, l4Checksum, pseudoHeaderSum } from './ipv4';

export const UDP_HDR_LEN = 8;

const SRC_PORT = 0;
const DST_PORT = 2;
const LENGTH = 4;
const CHECKSUM = 6;

/** Reusable view of a UDP datagram. len = bytes available (the IPv4 payload length). */
export class UdpView {
  buf: Uint8Array = EMPTY_BUF;
  off = 0;
  len = 0;

  /** false (view unusable) when len < UDP_HDR_LEN. */
  reset(buf: Uint8Array, off: number, len: number): boolean {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return len >= UDP_HDR_LEN;
  }

  /** UDP_HDR_LEN <= length field <= bytes available. */
  check(): boolean {
    const l = readU16(this.buf, this.off + LENGTH);
    return this.len >= UDP_HDR_LEN && l >= UDP_HDR_LEN && l <= this.len;
  }

  get srcPort(): number { return readU16(this.buf, this.off + SRC_PORT); }
  get dstPort(): number { return readU16(this.buf, this.off + DST_PORT); }
  get length(): number { return readU16(this.buf, this.off + LENGTH); }
  get checksum(): number { return readU16(this.buf, this.off + CHECKSUM); }
  get payloadOffset(): number { return this.off + UDP_HDR_LEN; }
  /** length - 8 (valid after check()). */
  get payloadLength(): number { return readU16(this.buf, this.off + LENGTH) - UDP_HDR_LEN; }
  /** Absolute offset of the checksum field (for incremental updates). */
  get checksumOffset(): number { return this.off + CHECKSUM; }

  /** True when the checksum is absent (0) or right, given the IPv4 header at ipOff. */
  verifyChecksum(ipOff: number): boolean {
    if (this.checksum === 0) return true;
    return l4Checksum(this.buf, ipOff, this.off, this.length) === 0;
  }

  /** Compute and store the checksum (over `length` bytes), given the IPv4 header at ipOff. */
  fillChecksum(ipOff: number): void {
    writeU16(this.buf, this.off + CHECKSUM, 0);
    const c = l4Checksum(this.buf, ipOff, this.off, this.length);
    writeU16(this.buf, this.off + CHECKSUM, c === 0 ? 0xffff : c);
  }

  setSrcPort(v: number): void { writeU16(this.buf, this.off + SRC_PORT, v); }
  setDstPort(v: number): void { writeU16(this.buf, this.off + DST_PORT, v); }
  setLength(v: number): void { writeU16(this.buf, this.off + LENGTH, v); }
  setChecksum(v: number): void { writeU16(this.buf, this.off + CHECKSUM, v); }
}

export interface UdpFields {
  /** IPv4 addresses, for the pseudo-header checksum */
  src: IpLike;
  dst: IpLike;
  srcPort: number;
  dstPort: number;
  payload?: Uint8Array;
  /** false: send checksum 0 (none) */
  checksum?: boolean;
}

/** A new UDP datagram (header + payload) with a correct checksum. For tests and fixtures. */
export function buildUdp(f: UdpFields): Uint8Array {
  const payload = f.payload ?? EMPTY_BUF;
  const out = new Uint8Array(UDP_HDR_LEN + payload.length);
  writeU16(out, SRC_PORT, f.srcPort);
  writeU16(out, DST_PORT, f.dstPort);
  writeU16(out, LENGTH, out.length);
  out.set(payload, UDP_HDR_LEN);
  if (f.checksum !== false) {
    const ph = pseudoHeaderSum(toIpNumber(f.src), toIpNumber(f.dst), IPPROTO_UDP, out.length);
    const c = ~fold(onesSum(out, 0, out.length, ph)) & 0xffff;
    writeU16(out, CHECKSUM, c === 0 ? 0xffff : c);
  }
  return out;
}
