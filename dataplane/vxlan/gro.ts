// Receive coalescing (GRO) for decapsulated frames. A TCP stream from a remote container
// arrives as one datagram per MSS-size segment; handing each to the local container costs a
// send and a pass through its kernel's TCP receive path. Consecutive in-order segments of one
// flow in a receive batch are merged, as the kernel's GRO does, into one super frame with a
// virtio-net GSO header (GSO_TCPV4, gso_size = the first segment's payload, the checksum
// left partial): the receiving port's kernel takes it as it takes any GRO'd packet.
//
// Merged only when (tcp_gro_receive's rules, simplified): same port, same Ethernet header,
// IPv4 without options or fragments, same addresses, TOS and TTL, TCP with the same ports,
// ack, window and options, flags ACK (PSH on the last one only), sequence numbers that
// follow, every segment but the last of the run exactly gso_size long, the run below 64 KB
// and inside the first frame's receive slot. Every merged segment's TCP checksum is verified
// first (a corrupt one is not merged; it goes on alone and its receiver drops it), so the
// partial checksum of the result does not hide corruption.
//
// In place and without allocation: payloads are appended to the first frame of the run in
// its own receive slot (64 KiB); merged-away frames get port -1. The datagrams of one UDP GRO
// read (recvUdp, FLAG_PACKED) lie back to back in one slot: appending moves bytes backward
// only, so a run over them is merged in place too.

import { readU16, readU32, writeU16 } from '../wire/bytes';
import { fold, onesSum } from '../wire/checksum';
import { ETH_HDR_LEN, ETHERTYPE_IPV4 } from '../wire/ethernet';
import { IPPROTO_TCP } from '../wire/ipv4';
import { VNET_HDR_LEN } from '../wire/vnet';
import { sum16Of } from './segment';

const IP = ETH_HDR_LEN;
const TCP = IP + 20;
const MAX_IP_LEN = 65535;

/** Does the frame at eth qualify (IPv4/TCP, no IP options or fragments, ACK[|PSH], payload > 0)? Its payload length, or 0. */
function candidate(buf: Uint8Array, eth: number, len: number): number {
  if (len < TCP + 20 || readU16(buf, eth + 12) !== ETHERTYPE_IPV4 || buf[eth + IP] !== 0x45 || buf[eth + IP + 9] !== IPPROTO_TCP) return 0;
  if ((readU16(buf, eth + IP + 6) & 0x3fff) !== 0) return 0;
  const total = readU16(buf, eth + IP + 2);
  if (total + ETH_HDR_LEN > len) return 0;
  const flags = buf[eth + TCP + 13];
  if (flags !== 0x10 && flags !== 0x18) return 0;
  const doff = (buf[eth + TCP + 12] >> 4) * 4;
  const payload = total - 20 - doff;
  return doff >= 20 && payload > 0 ? payload : 0;
}

/** The TCP checksum of the frame verifies (pseudo-header + segment sums to 0xffff). */
function verifies(buf: Uint8Array, eth: number): boolean {
  const ip = eth + IP;
  const total = readU16(buf, ip + 2);
  const src = readU32(buf, ip + 12);
  const dst = readU32(buf, ip + 16);
  const ph = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + IPPROTO_TCP + (total - 20);
  return sum16Of(buf, ip + 20, total - 20, ph) === 0xffff;
}

/** Same flow, and j follows the run's bytes: headers equal but for length, id, checksums, seq and PSH. */
function follows(buf: Uint8Array, h: number, j: number, seq: number): boolean {
  for (let k = 0; k < 14; k++) if (buf[h + k] !== buf[j + k]) return false;
  if (buf[h + IP + 1] !== buf[j + IP + 1] || buf[h + IP + 8] !== buf[j + IP + 8]) return false;
  if (readU32(buf, h + IP + 12) !== readU32(buf, j + IP + 12) || readU32(buf, h + IP + 16) !== readU32(buf, j + IP + 16)) return false;
  if (readU32(buf, h + TCP) !== readU32(buf, j + TCP)) return false;
  if (readU32(buf, j + TCP + 4) !== seq) return false;
  if (readU32(buf, h + TCP + 8) !== readU32(buf, j + TCP + 8)) return false;
  if (buf[h + TCP + 12] !== buf[j + TCP + 12] || readU16(buf, h + TCP + 14) !== readU16(buf, j + TCP + 14)) return false;
  const doff = (buf[h + TCP + 12] >> 4) * 4;
  for (let k = 20; k < doff; k++) if (buf[h + TCP + k] !== buf[j + TCP + k]) return false;
  return true;
}

/**
 * Merge runs of frames [0, n). vnet[i]: offset of frame i's (all-zero) virtio-net header,
 * the Ethernet frame follows; len[i]: its Ethernet length (updated for a run's head);
 * port[i]: its port (-1: skip; merged-away frames are set to -1); gso[i]: 1 when it already
 * has a GSO header (never merged). slotEnd(i): the first byte after frame i's slot. Returns
 * how many frames were merged away.
 */
export function coalesce(buf: Uint8Array, vnet: Int32Array, len: Int32Array, port: Int32Array, gso: Uint8Array, n: number,
  slotEnd: (i: number) => number, packed?: Uint8Array): number {
  let merged = 0;
  let i = 0;
  while (i < n) {
    const hp = port[i] >= 0 && gso[i] === 0 ? candidate(buf, vnet[i] + VNET_HDR_LEN, len[i]) : 0;
    if (hp === 0 || buf[vnet[i] + VNET_HDR_LEN + TCP + 13] !== 0x10) { i++; continue; }
    // A datagram split from a UDP GRO buffer (packed[i]): its header would overwrite the
    // previous datagram's tail, so it heads a run only when that one was merged away.
    if (packed !== undefined && packed[i] !== 0 && i > 0 && port[i - 1] >= 0) { i++; continue; }
    const h = vnet[i] + VNET_HDR_LEN;
    let verified = false;
    let total = readU16(buf, h + IP + 2);
    let seq = (readU32(buf, h + TCP + 4) + hp) >>> 0;
    let last = hp;
    let end = h + ETH_HDR_LEN + total;
    let j = i + 1;
    let count = 0;
    for (; j < n; j++) {
      if (port[j] !== port[i] || gso[j] !== 0 || last !== hp) break;
      const e = vnet[j] + VNET_HDR_LEN;
      const pj = candidate(buf, e, len[j]);
      if (pj === 0 || pj > hp || !follows(buf, h, e, seq)) break;
      if (total + pj > MAX_IP_LEN || end + pj > slotEnd(i)) break;
      if (!verified) { if (!verifies(buf, h)) break; verified = true; }
      if (!verifies(buf, e)) break;
      const doff = (buf[e + TCP + 12] >> 4) * 4;
      const from = e + TCP + doff;
      buf.copyWithin(end, from, from + pj);
      end += pj;
      total += pj;
      seq = (seq + pj) >>> 0;
      last = pj;
      port[j] = -1;
      count++;
      const psh = buf[e + TCP + 13] === 0x18;
      if (psh) { buf[h + TCP + 13] = 0x18; j++; break; }
    }
    if (count > 0) {
      merged += count;
      writeU16(buf, h + IP + 2, total);
      writeU16(buf, h + IP + 10, 0);
      writeU16(buf, h + IP + 10, ~fold(onesSum(buf, h + IP, 20)) & 0xffff);
      const src = readU32(buf, h + IP + 12);
      const dst = readU32(buf, h + IP + 16);
      // Partial: the pseudo-header sum (not complemented), as a TSO sender leaves it.
      writeU16(buf, h + TCP + 16, fold((src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + IPPROTO_TCP + (total - 20)));
      const v = vnet[i];
      const doff = (buf[h + TCP + 12] >> 4) * 4;
      buf[v] = 1; buf[v + 1] = 1; // NEEDS_CSUM, GSO_TCPV4
      const le16 = (at: number, x: number): void => { buf[at] = x & 0xff; buf[at + 1] = x >>> 8; };
      le16(v + 2, TCP + doff);
      le16(v + 4, hp);
      le16(v + 6, TCP);
      le16(v + 8, 16);
      len[i] = ETH_HDR_LEN + total;
      gso[i] = 1; // it has its GSO header now
    }
    i = j;
  }
  return merged;
}
