// struct virtio_net_hdr (10 bytes, little-endian fields), as the kernel puts in front of every
// frame on a TAP with IFF_VNET_HDR or an AF_PACKET socket with PACKET_VNET_HDR.
//
//   0 flags u8   1 gso_type u8   2 hdr_len u16   4 gso_size u16   6 csum_start u16   8 csum_offset u16
//
// csum_start is relative to the start of the Ethernet header (the byte after this header);
// csum_offset is relative to csum_start.

import { EMPTY_BUF } from './bytes';

export const VNET_HDR_LEN = 10;

/** flags: the L4 checksum is partial; finish it over [csum_start, end). */
export const VNET_F_NEEDS_CSUM = 1;
/** flags: the checksum has been verified already. */
export const VNET_F_DATA_VALID = 2;

export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
/** gso_type bit: the TCP segments carry ECN (CWR) */
export const VNET_GSO_ECN = 0x80;

const FLAGS = 0;
const GSO_TYPE = 1;
const HDR_LEN = 2;
const GSO_SIZE = 4;
const CSUM_START = 6;
const CSUM_OFFSET = 8;

function readLe16(buf: Uint8Array, off: number): number {
  return buf[off] | (buf[off + 1] << 8);
}

function writeLe16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v & 0xff;
  buf[off + 1] = (v >>> 8) & 0xff;
}

/** Reusable view of a virtio_net_hdr at buf[off]. */
export class VnetHdrView {
  buf: Uint8Array = EMPTY_BUF;
  off = 0;

  /** false (view unusable) when len < VNET_HDR_LEN. */
  reset(buf: Uint8Array, off: number, len: number): boolean {
    this.buf = buf;
    this.off = off;
    return len >= VNET_HDR_LEN;
  }

  get flags(): number { return this.buf[this.off + FLAGS]; }
  get gsoType(): number { return this.buf[this.off + GSO_TYPE]; }
  get hdrLen(): number { return readLe16(this.buf, this.off + HDR_LEN); }
  get gsoSize(): number { return readLe16(this.buf, this.off + GSO_SIZE); }
  get csumStart(): number { return readLe16(this.buf, this.off + CSUM_START); }
  get csumOffset(): number { return readLe16(this.buf, this.off + CSUM_OFFSET); }
  get needsCsum(): boolean { return (this.buf[this.off + FLAGS] & VNET_F_NEEDS_CSUM) !== 0; }
  /** gso_type without the ECN bit. */
  get gsoKind(): number { return this.buf[this.off + GSO_TYPE] & ~VNET_GSO_ECN; }
  /** Start of the Ethernet header. */
  get frameOffset(): number { return this.off + VNET_HDR_LEN; }

  setFlags(v: number): void { this.buf[this.off + FLAGS] = v; }
  setGsoType(v: number): void { this.buf[this.off + GSO_TYPE] = v; }
  setHdrLen(v: number): void { writeLe16(this.buf, this.off + HDR_LEN, v); }
  setGsoSize(v: number): void { writeLe16(this.buf, this.off + GSO_SIZE, v); }
  setCsumStart(v: number): void { writeLe16(this.buf, this.off + CSUM_START, v); }
  setCsumOffset(v: number): void { writeLe16(this.buf, this.off + CSUM_OFFSET, v); }
}

/** All-zero header: no offloads, checksum complete. */
export function writeEmptyVnetHdr(buf: Uint8Array, off: number): void {
  buf.fill(0, off, off + VNET_HDR_LEN);
}

/** The fields of a virtio_net_hdr as plain values (builders, tests). */
export interface VnetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function writeVnetHdr(buf: Uint8Array, off: number, h: Partial<VnetHdr>): void {
  buf[off + FLAGS] = h.flags ?? 0;
  buf[off + GSO_TYPE] = h.gsoType ?? 0;
  writeLe16(buf, off + HDR_LEN, h.hdrLen ?? 0);
  writeLe16(buf, off + GSO_SIZE, h.gsoSize ?? 0);
  writeLe16(buf, off + CSUM_START, h.csumStart ?? 0);
  writeLe16(buf, off + CSUM_OFFSET, h.csumOffset ?? 0);
}

/**
 * Move csum_start (and hdr_len when nonzero) by delta after bytes were inserted (+4) or
 * removed (-4) in front of the L4 header. csum_start only when NEEDS_CSUM is set: otherwise
 * the field means nothing.
 */
export function vnetShift(buf: Uint8Array, off: number, delta: number): void {
  if ((buf[off + FLAGS] & VNET_F_NEEDS_CSUM) !== 0) {
    writeLe16(buf, off + CSUM_START, readLe16(buf, off + CSUM_START) + delta);
  }
  const hl = readLe16(buf, off + HDR_LEN);
  if (hl !== 0) writeLe16(buf, off + HDR_LEN, hl + delta);
}
