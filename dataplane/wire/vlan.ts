// IEEE 802.1Q tag: after the two MACs, TPID (2) and TCI (2), then the inner EtherType.
// TCI = PCP (3 bits) | DEI (1 bit) | VID (12 bits).
//
// pushTag()/popTag() work in place, moving the bytes in front of the tag (the virtio-net
// header, when the port has one, and the 12 MAC bytes) by 4 bytes, so the payload never moves.
// Receive slots keep 4 bytes of headroom before each frame for exactly this.

import { EMPTY_BUF, readU16, writeU16 } from './bytes';
import { ETHERTYPE_QINQ, ETHERTYPE_VLAN } from './ethernet';
import { VNET_HDR_LEN, vnetShift } from './vnet';

export const VLAN_TAG_LEN = 4;
/** Ethernet header with one tag. */
export const VLAN_HDR_LEN = 18;
export const VID_MAX = 4095;
/** Highest VID a VLAN may have (4095 is reserved). */
export const VID_LAST = 4094;

const MACS_LEN = 12;
const TPID = 12;
const TCI = 14;
const INNER_ETHERTYPE = 16;

// Field offsets from the start of a tagged Ethernet header, for code without a view.
export const VLAN_TCI_OFF = TCI;
export const VLAN_INNER_TYPE_OFF = INNER_ETHERTYPE;

/** TCI bits that are not the VID: PCP and DEI (kept across a pop and a push). */
export const TCI_PRIO_MASK = 0xf000;

/** An 802.1Q (0x8100) or 802.1ad (0x88a8) TPID where an EtherType would be: a tag follows. */
export function isVlanTpid(etherType: number): boolean {
  return etherType === ETHERTYPE_VLAN || etherType === ETHERTYPE_QINQ;
}

export function makeTci(vid: number, pcp = 0, dei = 0): number {
  return ((pcp & 7) << 13) | ((dei & 1) << 12) | (vid & 0xfff);
}
export function tciPcp(tci: number): number { return (tci >>> 13) & 7; }
export function tciDei(tci: number): number { return (tci >>> 12) & 1; }
export function tciVid(tci: number): number { return tci & VID_MAX; }

/** Reusable view of a tagged Ethernet header (one tag). Offsets it returns are absolute. */
export class VlanView {
  buf: Uint8Array = EMPTY_BUF;
  off = 0;
  len = 0;

  /** off = start of the Ethernet header. false (view unusable) when len < VLAN_HDR_LEN. */
  reset(buf: Uint8Array, off: number, len: number): boolean {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return len >= VLAN_HDR_LEN;
  }

  /** 0x8100 or 0x88a8 on a tagged frame; the caller decides what to accept. */
  get tpid(): number { return readU16(this.buf, this.off + TPID); }
  get tci(): number { return readU16(this.buf, this.off + TCI); }
  get pcp(): number { return this.buf[this.off + TCI] >>> 5; }
  get dei(): number { return (this.buf[this.off + TCI] >>> 4) & 1; }
  get vid(): number { return readU16(this.buf, this.off + TCI) & 0xfff; }
  get innerEtherType(): number { return readU16(this.buf, this.off + INNER_ETHERTYPE); }
  get payloadOffset(): number { return this.off + VLAN_HDR_LEN; }
  get payloadLength(): number { return this.len - VLAN_HDR_LEN; }

  setTpid(v: number): void { writeU16(this.buf, this.off + TPID, v); }
  setTci(v: number): void { writeU16(this.buf, this.off + TCI, v); }
  setVid(vid: number): void {
    const o = this.off + TCI;
    writeU16(this.buf, o, (readU16(this.buf, o) & 0xf000) | (vid & 0xfff));
  }
  setInnerEtherType(v: number): void { writeU16(this.buf, this.off + INNER_ETHERTYPE, v); }
}

/**
 * Insert a tag (tpid, tci) after the MACs of the frame at buf[frameOff, frameOff+len), where
 * the frame starts with a virtio-net header when `vnet`. Uses the 4 bytes before frameOff:
 * the vnet header and MACs move 4 bytes toward the buffer start. With NEEDS_CSUM, csum_start
 * grows by 4 (and hdr_len, when nonzero). Returns the new frame offset (frameOff - 4; the new
 * length is len + 4), or -1, changing nothing, when frameOff < 4 or the frame has no MACs.
 */
export function pushTag(buf: Uint8Array, frameOff: number, len: number, tpid: number, tci: number, vnet: boolean): number {
  const head = vnet ? VNET_HDR_LEN : 0;
  if (frameOff < VLAN_TAG_LEN || len < head + MACS_LEN) return -1;
  const off = frameOff - VLAN_TAG_LEN;
  buf.copyWithin(off, frameOff, frameOff + head + MACS_LEN);
  const tag = off + head + MACS_LEN;
  writeU16(buf, tag, tpid);
  writeU16(buf, tag + 2, tci);
  if (vnet) vnetShift(buf, off, VLAN_TAG_LEN);
  return off;
}

/**
 * Remove the tag after the MACs (whatever its TPID: read it with VlanView first). The vnet
 * header and MACs move 4 bytes toward the frame's end; with NEEDS_CSUM csum_start shrinks by 4
 * (and hdr_len, when nonzero). Returns the new frame offset (frameOff + 4; the new length is
 * len - 4), or -1, changing nothing, when the frame is too short to hold a tag.
 */
export function popTag(buf: Uint8Array, frameOff: number, len: number, vnet: boolean): number {
  const head = vnet ? VNET_HDR_LEN : 0;
  if (len < head + VLAN_HDR_LEN) return -1;
  const off = frameOff + VLAN_TAG_LEN;
  buf.copyWithin(off, frameOff, frameOff + head + MACS_LEN);
  if (vnet) vnetShift(buf, off, -VLAN_TAG_LEN);
  return off;
}
