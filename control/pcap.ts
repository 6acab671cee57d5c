// The classic pcap file format (what tcpdump -w writes and tcpdump -r, tshark and Wireshark
// read): a 24-byte global header, then per frame a 16-byte record header and the bytes.
// Reading accepts both byte orders and microsecond or nanosecond timestamps, Ethernet link
// type only; anything else is a clear error, never a crash.

import { InvalidArgumentError } from './errors';

export const LINKTYPE_ETHERNET = 1;
const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const GLOBAL_LEN = 24;
const RECORD_LEN = 16;
/** Larger than any frame vsw moves (64 KiB GSO + headers). */
export const PCAP_SNAPLEN = 262144;

export interface PcapFrame {
  /** Seconds since the epoch, with the fraction. */
  time: number;
  data: Uint8Array;
  /** Length on the wire (data may be shorter when the capture cut it). */
  origLen: number;
}

/** The 24-byte global header (little-endian, microseconds, Ethernet). */
export function pcapHeader(snaplen = PCAP_SNAPLEN): Buffer {
  const b = Buffer.alloc(GLOBAL_LEN);
  b.writeUInt32LE(MAGIC_US, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeInt32LE(0, 8);
  b.writeUInt32LE(0, 12);
  b.writeUInt32LE(snaplen, 16);
  b.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return b;
}

/** One record: header and data (cut to snaplen). */
export function pcapRecord(frame: Uint8Array, timeMs: number, snaplen = PCAP_SNAPLEN): Buffer {
  const incl = Math.min(frame.length, snaplen);
  const b = Buffer.alloc(RECORD_LEN + incl);
  const sec = Math.floor(timeMs / 1000);
  b.writeUInt32LE(sec, 0);
  b.writeUInt32LE(Math.min(999_999, Math.floor((timeMs - sec * 1000) * 1000)), 4);
  b.writeUInt32LE(incl, 8);
  b.writeUInt32LE(frame.length, 12);
  b.set(frame.subarray(0, incl), RECORD_LEN);
  return b;
}

/** Parse a whole pcap file. Throws InvalidArgumentError naming what is wrong and where. */
export function readPcap(file: Uint8Array, name = 'pcap'): PcapFrame[] {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < GLOBAL_LEN) throw new InvalidArgumentError(`${name}: not a pcap file (${buf.length} bytes, no header)`);
  const m = buf.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (m === MAGIC_US || m === MAGIC_NS) { le = true; nano = m === MAGIC_NS; }
  else if (buf.readUInt32BE(0) === MAGIC_US || buf.readUInt32BE(0) === MAGIC_NS) { le = false; nano = buf.readUInt32BE(0) === MAGIC_NS; }
  else throw new InvalidArgumentError(`${name}: not a pcap file (magic 0x${m.toString(16)}; pcapng is not supported: convert with 'tshark -F pcap')`);
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const link = u32(20) & 0x0fffffff;
  if (link !== LINKTYPE_ETHERNET) throw new InvalidArgumentError(`${name}: link type ${link} is not Ethernet (1)`);
  const out: PcapFrame[] = [];
  let off = GLOBAL_LEN;
  while (off < buf.length) {
    if (off + RECORD_LEN > buf.length) throw new InvalidArgumentError(`${name}: truncated record header at byte ${off}`);
    const incl = u32(off + 8);
    const orig = u32(off + 12);
    if (incl > PCAP_SNAPLEN) throw new InvalidArgumentError(`${name}: record at byte ${off} claims ${incl} bytes`);
    if (off + RECORD_LEN + incl > buf.length) throw new InvalidArgumentError(`${name}: truncated frame at byte ${off}`);
    const time = u32(off) + u32(off + 4) / (nano ? 1e9 : 1e6);
    out.push({ time, data: new Uint8Array(buf.subarray(off + RECORD_LEN, off + RECORD_LEN + incl)), origLen: orig });
    off += RECORD_LEN + incl;
  }
  return out;
}
