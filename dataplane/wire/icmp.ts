// ICMP (RFC 792): 0 type  1 code  2 checksum  4 rest of header (echo: id(2), seq(2))  8 data.
// The checksum covers the whole ICMP message (no pseudo-header).

import { EMPTY_BUF, readU16, readU32, writeU16 } from './bytes';
import { fold, onesSum } from './checksum';

export const ICMP_HDR_LEN = 8;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;

const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const ID = 4;
const SEQ = 6;
const REST = 4;

/** Offset of the type, for code that reads a message without a view (the filters). */
export const ICMP_TYPE_OFF = TYPE;

/** Reusable view of an ICMP message. len = bytes of the message (the IPv4 payload length). */
export class IcmpView {
  buf: Uint8Array = EMPTY_BUF;
  off = 0;
  len = 0;

  /** false (view unusable) when len < ICMP_HDR_LEN. */
  reset(buf: Uint8Array, off: number, len: number): boolean {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return len >= ICMP_HDR_LEN;
  }

  get type(): number { return this.buf[this.off + TYPE]; }
  get code(): number { return this.buf[this.off + CODE]; }
  get checksum(): number { return readU16(this.buf, this.off + CHECKSUM); }
  /** Echo identifier (meaningful for echo request/reply). */
  get id(): number { return readU16(this.buf, this.off + ID); }
  /** Echo sequence number (meaningful for echo request/reply). */
  get seq(): number { return readU16(this.buf, this.off + SEQ); }
  get restOfHeader(): number { return readU32(this.buf, this.off + REST); }
  get payloadOffset(): number { return this.off + ICMP_HDR_LEN; }
  get payloadLength(): number { return this.len - ICMP_HDR_LEN; }
  get checksumOffset(): number { return this.off + CHECKSUM; }

  /** True when the checksum over the `len` bytes of the message is right. */
  verifyChecksum(): boolean {
    return fold(onesSum(this.buf, this.off, this.len)) === 0xffff;
  }

  fillChecksum(): void {
    writeU16(this.buf, this.off + CHECKSUM, 0);
    writeU16(this.buf, this.off + CHECKSUM, ~fold(onesSum(this.buf, this.off, this.len)) & 0xffff);
  }

  setType(v: number): void { this.buf[this.off + TYPE] = v; }
  setCode(v: number): void { this.buf[this.off + CODE] = v; }
  setChecksum(v: number): void { writeU16(this.buf, this.off + CHECKSUM, v); }
  setId(v: number): void { writeU16(this.buf, this.off + ID, v); }
  setSeq(v: number): void { writeU16(this.buf, this.off + SEQ, v); }
}

export interface IcmpEchoFields {
  /** ICMP_ECHO_REQUEST (default) or ICMP_ECHO_REPLY */
  type?: number;
  id: number;
  seq: number;
  payload?: Uint8Array;
}

/** A new ICMP echo message with a correct checksum. For tests and fixtures. */
export function buildIcmpEcho(f: IcmpEchoFields): Uint8Array {
  const payload = f.payload ?? EMPTY_BUF;
  const out = new Uint8Array(ICMP_HDR_LEN + payload.length);
  out[TYPE] = f.type ?? ICMP_ECHO_REQUEST;
  out[CODE] = 0;
  writeU16(out, ID, f.id);
  writeU16(out, SEQ, f.seq);
  out.set(payload, ICMP_HDR_LEN);
  writeU16(out, CHECKSUM, ~fold(onesSum(out, 0, out.length)) & 0xffff);
  return out;
}

export interface IcmpFields {
  type: number;
  code: number;
  /** the 4 bytes after the checksum, as a uint32 */
  rest?: number;
  payload?: Uint8Array;
}

/** A new ICMP message of any type with a correct checksum. For tests and fixtures. */
export function buildIcmp(f: IcmpFields): Uint8Array {
  const payload = f.payload ?? EMPTY_BUF;
  const out = new Uint8Array(ICMP_HDR_LEN + payload.length);
  out[TYPE] = f.type;
  out[CODE] = f.code;
  const rest = f.rest ?? 0;
  writeU16(out, ID, (rest >>> 16) & 0xffff);
  writeU16(out, SEQ, rest & 0xffff);
  out.set(payload, ICMP_HDR_LEN);
  writeU16(out, CHECKSUM, ~fold(onesSum(out, 0, out.length)) & 0xffff);
  return out;
}
