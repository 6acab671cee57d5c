// ARP for Ethernet/IPv4 (RFC 826), 28 bytes:
//   0 htype(2)=1  2 ptype(2)=0x0800  4 hlen=6  5 plen=4  6 op(2)
//   8 sha(6)  14 spa(4)  18 tha(6)  24 tpa(4)

import { EMPTY_BUF, readU16, readU32, writeU16, writeU32 } from './bytes';
import { ETHERTYPE_IPV4 } from './ethernet';
import { IpLike, toIpNumber } from './ip';
import { MacLike, macHi, macLo, toMacBytes, writeMac, writeMacHiLo } from './mac';

export const ARP_LEN = 28;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;
export const ARP_HTYPE_ETHERNET = 1;

const HTYPE = 0;
const PTYPE = 2;
const HLEN = 4;
const PLEN = 5;
const OP = 6;
const SHA = 8;
const SPA = 14;
const THA = 18;
const TPA = 24;

// Field offsets, for code that reads a packet without a view (the filters' per-frame decode).
export const ARP_SPA_OFF = SPA;
export const ARP_TPA_OFF = TPA;

/** The fixed fields say Ethernet/IPv4 (ArpView.isEthernetIpv4, for code without a view). */
export function arpIsEthernetIpv4(buf: Uint8Array, off: number): boolean {
  return readU16(buf, off + HTYPE) === ARP_HTYPE_ETHERNET && readU16(buf, off + PTYPE) === ETHERTYPE_IPV4
    && buf[off + HLEN] === 6 && buf[off + PLEN] === 4;
}

/** Reusable view of an ARP packet. MAC offsets it returns are absolute (into buf). */
export class ArpView {
  buf: Uint8Array = EMPTY_BUF;
  off = 0;

  /** false (view unusable) when len < ARP_LEN. */
  reset(buf: Uint8Array, off: number, len: number): boolean {
    this.buf = buf;
    this.off = off;
    return len >= ARP_LEN;
  }

  get htype(): number { return readU16(this.buf, this.off + HTYPE); }
  get ptype(): number { return readU16(this.buf, this.off + PTYPE); }
  get hlen(): number { return this.buf[this.off + HLEN]; }
  get plen(): number { return this.buf[this.off + PLEN]; }
  /** True when the fixed fields say Ethernet/IPv4 (the only kind the accessors below fit). */
  get isEthernetIpv4(): boolean { return arpIsEthernetIpv4(this.buf, this.off); }
  get op(): number { return readU16(this.buf, this.off + OP); }
  get shaOffset(): number { return this.off + SHA; }
  get shaHi(): number { return macHi(this.buf, this.off + SHA); }
  get shaLo(): number { return macLo(this.buf, this.off + SHA); }
  get spa(): number { return readU32(this.buf, this.off + SPA); }
  get thaOffset(): number { return this.off + THA; }
  get thaHi(): number { return macHi(this.buf, this.off + THA); }
  get thaLo(): number { return macLo(this.buf, this.off + THA); }
  get tpa(): number { return readU32(this.buf, this.off + TPA); }

  setOp(v: number): void { writeU16(this.buf, this.off + OP, v); }
  setSha(mac: Uint8Array): void { writeMac(this.buf, this.off + SHA, mac); }
  setShaHiLo(hi: number, lo: number): void { writeMacHiLo(this.buf, this.off + SHA, hi, lo); }
  setSpa(ip: number): void { writeU32(this.buf, this.off + SPA, ip); }
  setTha(mac: Uint8Array): void { writeMac(this.buf, this.off + THA, mac); }
  setThaHiLo(hi: number, lo: number): void { writeMacHiLo(this.buf, this.off + THA, hi, lo); }
  setTpa(ip: number): void { writeU32(this.buf, this.off + TPA, ip); }
}

/** Write a whole Ethernet/IPv4 ARP packet (28 bytes) at buf[off]. No allocation. */
export function writeArp(
  buf: Uint8Array, off: number, op: number,
  sha: Uint8Array, spa: number, tha: Uint8Array, tpa: number,
): void {
  writeU16(buf, off + HTYPE, ARP_HTYPE_ETHERNET);
  writeU16(buf, off + PTYPE, ETHERTYPE_IPV4);
  buf[off + HLEN] = 6;
  buf[off + PLEN] = 4;
  writeU16(buf, off + OP, op);
  writeMac(buf, off + SHA, sha);
  writeU32(buf, off + SPA, spa);
  writeMac(buf, off + THA, tha);
  writeU32(buf, off + TPA, tpa);
}

export interface ArpFields {
  op: number;
  sha: MacLike;
  spa: IpLike;
  /** default 00:00:00:00:00:00 */
  tha?: MacLike;
  tpa: IpLike;
}

/** A new 28-byte ARP packet (the Ethernet payload). For tests and fixtures. */
export function buildArp(f: ArpFields): Uint8Array {
  const out = new Uint8Array(ARP_LEN);
  writeArp(out, 0, f.op, toMacBytes(f.sha), toIpNumber(f.spa),
    f.tha === undefined ? new Uint8Array(6) : toMacBytes(f.tha), toIpNumber(f.tpa));
  return out;
}
