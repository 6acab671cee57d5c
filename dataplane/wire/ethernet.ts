// Ethernet II header: dst MAC (6), src MAC (6), EtherType (2).

import { EMPTY_BUF, readU16, writeU16 } from './bytes';
import { MacLike, macHi, macLo, toMacBytes, writeMac, writeMacHiLo } from './mac';

export const ETH_HDR_LEN = 14;
/** Minimum frame on the wire without FCS; shorter frames are padded by the sender's NIC. */
export const ETH_MIN_FRAME_LEN = 60;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_IPV6 = 0x86dd;

const DST = 0;
const SRC = 6;
const ETHERTYPE = 12;

// Field offsets, for code that reads a header without a view (the filters' per-frame decode).
export const ETH_DST_OFF = DST;
export const ETH_SRC_OFF = SRC;
export const ETH_TYPE_OFF = ETHERTYPE;

/** Reusable view of an Ethernet header. Offsets it returns are absolute (into buf). */
export class EthernetView {
  buf: Uint8Array = EMPTY_BUF;
  off = 0;
  len = 0;

  /** false (view unusable) when len < ETH_HDR_LEN. */
  reset(buf: Uint8Array, off: number, len: number): boolean {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return len >= ETH_HDR_LEN;
  }

  get dstOffset(): number { return this.off + DST; }
  get srcOffset(): number { return this.off + SRC; }
  get dstHi(): number { return macHi(this.buf, this.off + DST); }
  get dstLo(): number { return macLo(this.buf, this.off + DST); }
  get srcHi(): number { return macHi(this.buf, this.off + SRC); }
  get srcLo(): number { return macLo(this.buf, this.off + SRC); }
  /** I/G bit of the destination (broadcast included). */
  get dstIsMulticast(): boolean { return (this.buf[this.off + DST] & 1) !== 0; }
  get dstIsBroadcast(): boolean {
    const b = this.buf;
    const o = this.off + DST;
    return (b[o] & b[o + 1] & b[o + 2] & b[o + 3] & b[o + 4] & b[o + 5]) === 0xff;
  }
  /** A multicast source address is invalid: a switch must not learn it. */
  get srcIsMulticast(): boolean { return (this.buf[this.off + SRC] & 1) !== 0; }
  get etherType(): number { return readU16(this.buf, this.off + ETHERTYPE); }
  get payloadOffset(): number { return this.off + ETH_HDR_LEN; }
  get payloadLength(): number { return this.len - ETH_HDR_LEN; }

  setDst(mac: Uint8Array): void { writeMac(this.buf, this.off + DST, mac); }
  setSrc(mac: Uint8Array): void { writeMac(this.buf, this.off + SRC, mac); }
  setDstHiLo(hi: number, lo: number): void { writeMacHiLo(this.buf, this.off + DST, hi, lo); }
  setSrcHiLo(hi: number, lo: number): void { writeMacHiLo(this.buf, this.off + SRC, hi, lo); }
  setEtherType(v: number): void { writeU16(this.buf, this.off + ETHERTYPE, v); }
}

/** Write a 14-byte Ethernet header at buf[off]. */
export function writeEthernet(buf: Uint8Array, off: number, dst: Uint8Array, src: Uint8Array, etherType: number): void {
  writeMac(buf, off + DST, dst);
  writeMac(buf, off + SRC, src);
  writeU16(buf, off + ETHERTYPE, etherType);
}

export interface EthernetFields {
  dst: MacLike;
  src: MacLike;
  etherType: number;
  payload?: Uint8Array;
}

/** A new frame: header + payload (not padded to 60 bytes). For tests and fixtures. */
export function buildEthernet(f: EthernetFields): Uint8Array {
  const payload = f.payload ?? EMPTY_BUF;
  const out = new Uint8Array(ETH_HDR_LEN + payload.length);
  writeEthernet(out, 0, toMacBytes(f.dst), toMacBytes(f.src), f.etherType);
  out.set(payload, ETH_HDR_LEN);
  return out;
}
