// TCP header (RFC 9293):
//   0 src port  2 dst port  4 seq  8 ack  12 data offset(4)|reserved(3)|NS(1)  13 flags
//   14 window  16 checksum  18 urgent pointer  20 options (dataOffset*4 - 20 bytes)

import { EMPTY_BUF, readU16, readU32, writeU16, writeU32 } from './bytes';
import { fold, onesSum } from './checksum';
import { IpLike, toIpNumber } from './ip';
import { IPPROTO_TCP, l4Checksum, pseudoHeaderSum } from './ipv4';

export const TCP_MIN_HDR_LEN = 20;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ = 4;
const ACK = 8;
const DATA_OFF = 12;
const FLAGS = 13;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT = 18;

/** Reusable view of a TCP segment. len = bytes of the segment (the IPv4 payload length). */
export class TcpView {
  buf: Uint8Array = EMPTY_BUF;
  off = 0;
  len = 0;

  /** false (view unusable) when len < TCP_MIN_HDR_LEN. */
  reset(buf: Uint8Array, off: number, len: number): boolean {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return len >= TCP_MIN_HDR_LEN;
  }

  /** Data offset >= 5 and the header (options included) inside the segment. */
  check(): boolean {
    const hl = this.headerLength;
    return this.len >= TCP_MIN_HDR_LEN && hl >= TCP_MIN_HDR_LEN && hl <= this.len;
  }

  get srcPort(): number { return readU16(this.buf, this.off + SRC_PORT); }
  get dstPort(): number { return readU16(this.buf, this.off + DST_PORT); }
  get seq(): number { return readU32(this.buf, this.off + SEQ); }
  get ack(): number { return readU32(this.buf, this.off + ACK); }
  /** In 32-bit words. */
  get dataOffset(): number { return this.buf[this.off + DATA_OFF] >>> 4; }
  get headerLength(): number { return (this.buf[this.off + DATA_OFF] >>> 4) << 2; }
  /** The 8 flag bits (TCP_FIN..TCP_CWR); NS is not included. */
  get flags(): number { return this.buf[this.off + FLAGS]; }
  get window(): number { return readU16(this.buf, this.off + WINDOW); }
  get checksum(): number { return readU16(this.buf, this.off + CHECKSUM); }
  get urgentPointer(): number { return readU16(this.buf, this.off + URGENT); }
  get payloadOffset(): number { return this.off + this.headerLength; }
  /** len - headerLength (valid after check()). */
  get payloadLength(): number { return this.len - this.headerLength; }
  /** Absolute offset of the checksum field (for incremental updates). */
  get checksumOffset(): number { return this.off + CHECKSUM; }

  /** True when the checksum over the `len` bytes of the segment is right. */
  verifyChecksum(ipOff: number): boolean {
    return l4Checksum(this.buf, ipOff, this.off, this.len) === 0;
  }

  fillChecksum(ipOff: number): void {
    writeU16(this.buf, this.off + CHECKSUM, 0);
    writeU16(this.buf, this.off + CHECKSUM, l4Checksum(this.buf, ipOff, this.off, this.len));
  }

  setSrcPort(v: number): void { writeU16(this.buf, this.off + SRC_PORT, v); }
  setDstPort(v: number): void { writeU16(this.buf, this.off + DST_PORT, v); }
  setSeq(v: number): void { writeU32(this.buf, this.off + SEQ, v); }
  setAck(v: number): void { writeU32(this.buf, this.off + ACK, v); }
  setFlags(v: number): void { this.buf[this.off + FLAGS] = v; }
  setWindow(v: number): void { writeU16(this.buf, this.off + WINDOW, v); }
  setChecksum(v: number): void { writeU16(this.buf, this.off + CHECKSUM, v); }
}

/** tcpdump's flag letters, in its order: F S R P . U E W; "none" when no flag is set. */
export function tcpFlagsToString(flags: number): string {
  let s = '';
  if (flags & TCP_FIN) s += 'F';
  if (flags & TCP_SYN) s += 'S';
  if (flags & TCP_RST) s += 'R';
  if (flags & TCP_PSH) s += 'P';
  if (flags & TCP_ACK) s += '.';
  if (flags & TCP_URG) s += 'U';
  if (flags & TCP_ECE) s += 'E';
  if (flags & TCP_CWR) s += 'W';
  return s === '' ? 'none' : s;
}

export interface TcpFields {
  /** IPv4 addresses, for the pseudo-header checksum */
  src: IpLike;
  dst: IpLike;
  srcPort: number;
  dstPort: number;
  seq?: number;
  ack?: number;
  flags: number;
  /** default 65535 */
  window?: number;
  urgentPointer?: number;
  /** options bytes, length a multiple of 4, at most 40 */
  options?: Uint8Array;
  payload?: Uint8Array;
}

/** A new TCP segment (header + payload) with a correct checksum. For tests and fixtures. */
export function buildTcp(f: TcpFields): Uint8Array {
  const options = f.options ?? EMPTY_BUF;
  if (options.length % 4 !== 0 || options.length > 40) {
    throw new RangeError(`TCP options must be a multiple of 4 bytes, at most 40 (got ${options.length})`);
  }
  const payload = f.payload ?? EMPTY_BUF;
  const hl = TCP_MIN_HDR_LEN + options.length;
  const out = new Uint8Array(hl + payload.length);
  writeU16(out, SRC_PORT, f.srcPort);
  writeU16(out, DST_PORT, f.dstPort);
  writeU32(out, SEQ, f.seq ?? 0);
  writeU32(out, ACK, f.ack ?? 0);
  out[DATA_OFF] = (hl >>> 2) << 4;
  out[FLAGS] = f.flags;
  writeU16(out, WINDOW, f.window ?? 65535);
  writeU16(out, URGENT, f.urgentPointer ?? 0);
  out.set(options, TCP_MIN_HDR_LEN);
  out.set(payload, hl);
  const ph = pseudoHeaderSum(toIpNumber(f.src), toIpNumber(f.dst), IPPROTO_TCP, out.length);
  writeU16(out, CHECKSUM, ~fold(onesSum(out, 0, out.length, ph)) & 0xffff);
  return out;
}
