// Reading classic pcap files as a stream (vsw inject, vsw replay, trace --dry-run --pcap):
// a 24-byte global header in either byte order, microsecond (0xa1b2c3d4) or nanosecond
// (0xa1b23c4d) timestamps, then 16-byte record headers and the bytes. The file is read in
// chunks into one buffer (memory stays bounded whatever the file's size) and each record's
// bytes are a view into that buffer, valid until the next call to next().
//
// What is wrong with a file is an InvalidArgumentError naming the file and the byte offset:
// not pcap (pcapng is recognised and refused with how to convert it), a link type other than
// Ethernet, a record header or frame cut short, a record claiming more than PCAP_SNAPLEN
// bytes. Whether one frame can be sent (cut by the snap length, oversize) is the caller's
// question: uncarriable() names the reason.
//
// control/pcap.ts writes the same format (and its readPcap reads a whole file through this).

import * as fs from 'fs';
import { InvalidArgumentError } from './errors';
import { LINKTYPE_ETHERNET, PCAP_SNAPLEN } from './pcap';

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const MAGIC_PCAPNG = 0x0a0d0d0a;
const GLOBAL_LEN = 24;
const RECORD_LEN = 16;
const CHUNK = 1 << 20;

/** Where the bytes come from: read up to len bytes into buf at `at`; 0 at the end. */
export type ByteSource = (buf: Buffer, at: number, len: number) => number;

/**
 * One record. Its bytes are buf[at, at + len) of the reader's buffer (`data`: a view made on
 * demand): copy them to keep them past next().
 */
export class PcapRecord {
  /** Seconds since the epoch, and the nanoseconds within that second (exact, either file kind). */
  sec = 0;
  nsec = 0;
  buf: Buffer = Buffer.alloc(0);
  at = 0;
  len = 0;
  /** Length on the wire (len is less when the capture cut it). */
  origLen = 0;
  /** Where the record header starts in the file. */
  offset = 0;

  get data(): Uint8Array {
    return this.buf.subarray(this.at, this.at + this.len);
  }
}

export interface PcapFileHeader {
  littleEndian: boolean;
  nano: boolean;
  snaplen: number;
  linkType: number;
}

export class PcapReader {
  readonly header: PcapFileHeader;
  private readonly buf = Buffer.allocUnsafe(CHUNK + PCAP_SNAPLEN + RECORD_LEN);
  private start = 0;
  private end = 0;
  /** File offset of buf[start]. */
  private pos = 0;
  private eof = false;
  private readonly rec = new PcapRecord();

  constructor(private readonly src: ByteSource, readonly name = 'pcap') {
    this.fill(GLOBAL_LEN);
    const avail = this.end - this.start;
    if (avail < GLOBAL_LEN) throw new InvalidArgumentError(`${name}: not a pcap file (${avail} bytes, no header)`);
    const b = this.buf;
    const m = b.readUInt32LE(0);
    let le: boolean;
    if (m === MAGIC_US || m === MAGIC_NS) le = true;
    else if (b.readUInt32BE(0) === MAGIC_US || b.readUInt32BE(0) === MAGIC_NS) le = false;
    else if (m === MAGIC_PCAPNG) throw new InvalidArgumentError(`${name}: a pcapng file; vsw reads classic pcap: convert it with 'tshark -r ${name} -F pcap -w OUT.pcap' or 'editcap -F pcap'`);
    else throw new InvalidArgumentError(`${name}: not a pcap file (magic 0x${m.toString(16)})`);
    const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const linkType = u32(20) & 0x0fffffff;
    if (linkType !== LINKTYPE_ETHERNET) throw new InvalidArgumentError(`${name}: link type ${linkType} is not Ethernet (1): vsw moves Ethernet frames only`);
    this.header = { littleEndian: le, nano: u32(0) === MAGIC_NS, snaplen: u32(16), linkType };
    this.start = GLOBAL_LEN;
    this.pos = GLOBAL_LEN;
  }

  /** Open a file for reading (an InvalidArgumentError when it cannot be). */
  static open(file: string): PcapReader & { close(): void } {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new InvalidArgumentError(`cannot read ${file}: ${(e as Error).message}`);
    }
    try {
      const r = new PcapReader((buf, at, len) => fs.readSync(fd, buf, at, len, null), file) as PcapReader & { close(): void };
      r.close = () => fs.closeSync(fd);
      return r;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** The next record, or null at the end of the file. */
  next(): PcapRecord | null {
    if (this.end - this.start < RECORD_LEN) this.fill(RECORD_LEN);
    const avail = this.end - this.start;
    if (avail === 0) return null;
    if (avail < RECORD_LEN) throw new InvalidArgumentError(`${this.name}: truncated record header at byte ${this.pos}`);
    const b = this.buf;
    const le = this.header.littleEndian;
    const incl = le ? b.readUInt32LE(this.start + 8) : b.readUInt32BE(this.start + 8);
    if (incl > PCAP_SNAPLEN) throw new InvalidArgumentError(`${this.name}: record at byte ${this.pos} claims ${incl} bytes (more than ${PCAP_SNAPLEN}): a damaged file`);
    if (avail < RECORD_LEN + incl) {
      this.fill(RECORD_LEN + incl);
      if (this.end - this.start < RECORD_LEN + incl) throw new InvalidArgumentError(`${this.name}: truncated frame at byte ${this.pos}`);
    }
    const at = this.start;
    const r = this.rec;
    r.sec = le ? b.readUInt32LE(at) : b.readUInt32BE(at);
    const frac = le ? b.readUInt32LE(at + 4) : b.readUInt32BE(at + 4);
    r.nsec = this.header.nano ? frac : frac * 1000;
    if (r.nsec >= 1e9) throw new InvalidArgumentError(`${this.name}: record at byte ${this.pos} has a fraction of a second out of range (${frac})`);
    r.origLen = le ? b.readUInt32LE(at + 12) : b.readUInt32BE(at + 12);
    r.buf = b;
    r.at = at + RECORD_LEN;
    r.len = incl;
    r.offset = this.pos;
    this.start += RECORD_LEN + incl;
    this.pos += RECORD_LEN + incl;
    return r;
  }

  /** Make at least `need` bytes available from start (fewer only at the end of the file). */
  private fill(need: number): void {
    if (this.end - this.start >= need || this.eof) return;
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    while (this.end < need && !this.eof) {
      const n = this.src(this.buf, this.end, this.buf.length - this.end);
      if (n <= 0) this.eof = true;
      else this.end += n;
    }
  }
}

/** A reader over bytes already in memory. */
export function memorySource(bytes: Uint8Array): ByteSource {
  let off = 0;
  return (buf, at, len) => {
    const n = Math.min(len, bytes.length - off);
    buf.set(bytes.subarray(off, off + n), at);
    off += n;
    return n;
  };
}

/** Why a frame cannot be sent as it is in the capture, or undefined when it can. */
export type Uncarriable = 'snap-cut' | 'runt' | 'oversize';

/** A record vsw cannot send: cut by the capture's snap length, shorter than an Ethernet header, or over `max` bytes. */
export function uncarriable(r: Pick<PcapRecord, 'len' | 'origLen'>, max: number): Uncarriable | undefined {
  if (r.len < r.origLen) return 'snap-cut';
  if (r.len < 14) return 'runt';
  if (r.len > max) return 'oversize';
  return undefined;
}

/** What a whole read of a file found: its records, and the first and last timestamps (ms since the epoch). */
export interface PcapScan {
  records: number;
  firstMs: number;
  lastMs: number;
}

/** Read a file once, in chunks (checking it whole before it is used): for progress and time left. */
export function scanPcap(file: string): PcapScan {
  const r = PcapReader.open(file);
  try {
    const s: PcapScan = { records: 0, firstMs: 0, lastMs: 0 };
    for (let f = r.next(); f !== null; f = r.next()) {
      const t = f.sec * 1000 + f.nsec / 1e6;
      if (s.records++ === 0) s.firstMs = t;
      s.lastMs = Math.max(s.lastMs, t);
    }
    return s;
  } finally {
    r.close();
  }
}

/** A frame of a whole file read at once (trace --dry-run --pcap: a handful of frames). */
export interface PcapFrame {
  /** Seconds since the epoch, with the fraction. */
  time: number;
  data: Uint8Array;
  /** Length on the wire (data may be shorter when the capture cut it). */
  origLen: number;
}

/** Parse a whole pcap file in memory. Throws InvalidArgumentError naming what is wrong and where. */
export function readPcap(file: Uint8Array, name = 'pcap'): PcapFrame[] {
  const r = new PcapReader(memorySource(file), name);
  const out: PcapFrame[] = [];
  for (let f = r.next(); f !== null; f = r.next()) {
    out.push({ time: f.sec + f.nsec / 1e9, data: new Uint8Array(f.data), origLen: f.origLen });
  }
  return out;
}
