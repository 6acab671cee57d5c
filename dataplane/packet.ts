// Per-frame metadata: where the frame sits in the receive buffer, what parsing found, and
// the verdict. One Packet object per batch slot, reused across batches (no allocation per
// frame). Stages read what earlier stages recorded instead of parsing again.

import { VNET_HDR_LEN } from './wire/vnet';

/** Verdicts (Packet.out): a port id >= 0, or one of these. */
export const OUT_NONE = -1;   // not decided yet
export const OUT_FLOOD = -2;  // every other port of the network
export const OUT_DROP = -3;   // dropped; Packet.drop holds the reason index
export const OUT_LOCAL = -4;  // consumed by the switch itself (an ARP reply to us, a DNS query)

export class Packet {
  /** The receive buffer holding the frame. */
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the frame in buf, including the virtio-net header when `vnet`. */
  off = 0;
  /** Length from `off`, including the virtio-net header when `vnet`. */
  len = 0;
  /** Whether a virtio-net header (VNET_HDR_LEN bytes) precedes the Ethernet header. */
  vnet = false;
  /** Offset and length of the Ethernet frame itself. */
  ethOff = 0;
  ethLen = 0;
  /** Receive flags from the I/O layer (FLAG_TRUNCATED, FLAG_VLAN). */
  ioFlags = 0;

  inPort = -1;
  netId = -1;
  /** VLAN id of the frame's network (0 = untagged network). */
  vlan = 0;
  /** The TCI of the tag the frame arrived with (removed at ingress), -1 when it had none. */
  inTci = -1;
  /** PCP and DEI bits to send the frame with when it leaves tagged (TCI & TCI_PRIO_MASK). */
  prio = 0;

  dstHi = 0;
  dstLo = 0;
  srcHi = 0;
  srcLo = 0;
  dstMulticast = false;
  etherType = 0;
  /** Offset of the payload after the Ethernet (and any VLAN) header. */
  l3Off = 0;

  out = OUT_NONE;
  drop = -1;
  /** What the gateway stage did (an outcome of dataplane/router/outcome.ts), for traces. */
  l3 = 0;
  /** What learning did (LEARN_* of tables/fdb.ts; -1 nothing), for live traces. */
  learned = -1;
  /** The remote VTEP (IPv4, signed 32-bit) a decapsulated VXLAN frame came from; 0 otherwise (traces). */
  vtep = 0;

  reset(buf: Uint8Array, off: number, len: number, vnet: boolean, inPort: number, ioFlags: number): void {
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.vnet = vnet;
    const hdr = vnet ? VNET_HDR_LEN : 0;
    this.ethOff = off + hdr;
    this.ethLen = len - hdr;
    this.ioFlags = ioFlags;
    this.inPort = inPort;
    this.netId = -1;
    this.vlan = 0;
    this.inTci = -1;
    this.prio = 0;
    this.out = OUT_NONE;
    this.drop = -1;
    this.l3 = 0;
    this.learned = -1;
    this.vtep = 0;
  }

  /** End the frame with a drop reason (an index from dataplane/drops.ts). */
  dropWith(reason: number): void {
    this.out = OUT_DROP;
    this.drop = reason;
  }
}
