// Reading captures as a stream (vsw inject, vsw replay, trace --dry-run --pcap):
// - classic pcap: a 24-byte global header in either byte order, microsecond (0xa1b2c3d4) or
//   nanosecond (0xa1b23c4d) timestamps, then 16-byte record headers and the bytes;
// - pcapng (what tshark and Wireshark write): blocks; a Section Header sets the byte order,
//   each Interface Description its link type and timestamp resolution (if_tsresol), and
//   Enhanced and Simple Packet blocks carry the frames; other blocks are skipped.
// The file is read in chunks into one buffer (memory stays bounded whatever the file's size)
// and each record's bytes are a view into that buffer, valid until the next call to next().
//
// What is wrong with a file is an InvalidArgumentError naming the file and the byte offset:
// not a capture, a classic file whose link type is not Ethernet, a header, block or frame
// cut short, a record claiming more than PCAP_SNAPLEN bytes. Whether one frame can be sent
// (cut by the snap length, not Ethernet in a pcapng with several link types, oversize) is
// the caller's question: uncarriable() names the reason.
//
// control/pcap.ts writes the same format (and its readPcap reads a whole file through this).

import * as fs from 'fs';
import { InvalidArgumentError } from './errors';
import { LINKTYPE_ETHERNET, PCAP_SNAPLEN } from './pcap';

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const GLOBAL_LEN = 24;
const RECORD_LEN = 16;
const CHUNK = 1 << 20;
/** The largest pcapng block read: a frame of PCAP_SNAPLEN bytes and room for its options. */
const MAX_BLOCK = PCAP_SNAPLEN + 4096;
const NG_SHB = 0x0a0d0d0a;
const NG_IDB = 1;
const NG_SPB = 3;
const NG_EPB = 6;
const NG_BYTE_ORDER = 0x1a2b3c4d;
const NG_OPT_TSRESOL = 9;

/** A pcapng interface: its link type, snap length and timestamp units per second. */
interface NgInterface { linkType: number; snaplen: number; perSec: number }

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
  /** The frame's link type (a classic file has one; a pcapng one per interface). */
  linkType = LINKTYPE_ETHERNET;

  get data(): Uint8Array {
    return this.buf.subarray(this.at, this.at + this.len);
  }
}

export interface PcapFileHeader {
  /** 'pcapng' for a pcapng file (its byte order and interfaces are per section). */
  kind: 'pcap' | 'pcapng';
  littleEndian: boolean;
  nano: boolean;
  snaplen: number;
  linkType: number;
}

export class PcapReader {
  readonly header: PcapFileHeader;
  private readonly buf = Buffer.allocUnsafe(CHUNK + MAX_BLOCK);
  /** pcapng: the current section's byte order and interfaces. */
  private le = true;
  private ifaces: NgInterface[] = [];
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
    else if (m === NG_SHB) {
      this.header = { kind: 'pcapng', littleEndian: true, nano: false, snaplen: 0, linkType: LINKTYPE_ETHERNET };
      this.readSection();
      return;
    } else throw new InvalidArgumentError(`${name}: not a pcap file (magic 0x${m.toString(16)})`);
    const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const linkType = u32(20) & 0x0fffffff;
    if (linkType !== LINKTYPE_ETHERNET) throw new InvalidArgumentError(`${name}: link type ${linkType} is not Ethernet (1): vsw moves Ethernet frames only`);
    this.header = { kind: 'pcap', littleEndian: le, nano: u32(0) === MAGIC_NS, snaplen: u32(16), linkType };
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
    if (this.header.kind === 'pcapng') return this.nextNg();
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

  /** pcapng: a Section Header Block at start (its byte-order magic says the order). */
  private readSection(): void {
    this.fill(28);
    if (this.end - this.start < 28) throw new InvalidArgumentError(`${this.name}: pcapng section header cut short at byte ${this.pos}`);
    const b = this.buf;
    const s = this.start;
    if (b.readUInt32LE(s + 8) === NG_BYTE_ORDER) this.le = true;
    else if (b.readUInt32BE(s + 8) === NG_BYTE_ORDER) this.le = false;
    else throw new InvalidArgumentError(`${this.name}: pcapng section at byte ${this.pos} has no byte-order magic`);
    const len = this.u32(s + 4);
    this.block(len);
    this.ifaces = [];
    this.skip(len);
  }

  private u32(o: number): number {
    return this.le ? this.buf.readUInt32LE(o) : this.buf.readUInt32BE(o);
  }

  /** Check a block's length and make it all available. */
  private block(len: number): void {
    if (len < 12 || len % 4 !== 0 || len > MAX_BLOCK) throw new InvalidArgumentError(`${this.name}: pcapng block at byte ${this.pos} claims ${len} bytes: a damaged file`);
    this.fill(len);
    if (this.end - this.start < len) throw new InvalidArgumentError(`${this.name}: truncated block at byte ${this.pos}`);
  }

  private skip(len: number): void {
    this.start += len;
    this.pos += len;
  }

  private nextNg(): PcapRecord | null {
    for (;;) {
      if (this.end - this.start < 8) this.fill(8);
      const avail = this.end - this.start;
      if (avail === 0) return null;
      if (avail < 8) throw new InvalidArgumentError(`${this.name}: truncated block header at byte ${this.pos}`);
      const s = this.start;
      const type = this.u32(s);
      if (type === NG_SHB) { this.readSection(); continue; }
      const len = this.u32(s + 4);
      this.block(len);
      if (type === NG_IDB) {
        this.ifaces.push(this.readInterface(s, len));
        this.skip(len);
        continue;
      }
      if (type !== NG_EPB && type !== NG_SPB) { this.skip(len); continue; }
      const r = this.rec;
      const epb = type === NG_EPB;
      const ifc = this.ifaces[epb ? this.u32(s + 8) : 0];
      if (ifc === undefined) throw new InvalidArgumentError(`${this.name}: packet block at byte ${this.pos} names an interface not described before it`);
      const orig = this.u32(s + (epb ? 24 : 8));
      const incl = epb ? this.u32(s + 20) : Math.min(orig, ifc.snaplen > 0 ? ifc.snaplen : orig, len - 16);
      const at = s + (epb ? 28 : 12);
      if (at + incl > s + len - 4 || incl > PCAP_SNAPLEN) throw new InvalidArgumentError(`${this.name}: packet block at byte ${this.pos} holds ${incl} bytes in a ${len}-byte block`);
      if (epb) this.setTime(r, this.u32(s + 12), this.u32(s + 16), ifc.perSec);
      else { r.sec = 0; r.nsec = 0; } // a Simple Packet Block has no time
      r.buf = this.buf;
      r.at = at;
      r.len = incl;
      r.origLen = orig;
      r.offset = this.pos;
      r.linkType = ifc.linkType;
      this.skip(len);
      return r;
    }
  }

  private readInterface(s: number, len: number): NgInterface {
    const linkType = this.le ? this.buf.readUInt16LE(s + 8) : this.buf.readUInt16BE(s + 8);
    const ifc: NgInterface = { linkType, snaplen: this.u32(s + 12), perSec: 1e6 };
    // Options: code, length, value padded to 4 bytes; if_tsresol is 10^-v, or 2^-v with the top bit set.
    for (let o = s + 16; o + 4 <= s + len - 4;) {
      const code = this.le ? this.buf.readUInt16LE(o) : this.buf.readUInt16BE(o);
      const olen = this.le ? this.buf.readUInt16LE(o + 2) : this.buf.readUInt16BE(o + 2);
      if (code === 0) break;
      if (code === NG_OPT_TSRESOL && olen >= 1) {
        const v = this.buf[o + 4];
        ifc.perSec = (v & 0x80) !== 0 ? 2 ** (v & 0x7f) : 10 ** v;
      }
      o += 4 + ((olen + 3) & ~3);
    }
    if (!(ifc.perSec >= 1 && ifc.perSec <= 1e18)) throw new InvalidArgumentError(`${this.name}: interface at byte ${this.pos} has a timestamp resolution vsw cannot read`);
    return ifc;
  }

  /** A 64-bit timestamp in units of 1/perSec s, as seconds and nanoseconds (exact). */
  private setTime(r: PcapRecord, hi: number, lo: number, perSec: number): void {
    const t = hi * 4294967296 + lo;
    if (t <= Number.MAX_SAFE_INTEGER && perSec <= 1e6) {
      r.sec = Math.floor(t / perSec);
      r.nsec = Math.floor(((t - r.sec * perSec) * 1e9) / perSec);
      return;
    }
    const big = (BigInt(hi) << 32n) | BigInt(lo);
    const per = BigInt(perSec);
    r.sec = Number(big / per);
    r.nsec = Number(((big % per) * 1_000_000_000n) / per);
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
export type Uncarriable = 'snap-cut' | 'not-ethernet' | 'runt' | 'oversize';

/** A record vsw cannot send: cut by the capture's snap length, not Ethernet, shorter than an Ethernet header, or over `max` bytes. */
export function uncarriable(r: Pick<PcapRecord, 'len' | 'origLen' | 'linkType'>, max: number): Uncarriable | undefined {
  if (r.len < r.origLen) return 'snap-cut';
  if (r.linkType !== LINKTYPE_ETHERNET) return 'not-ethernet';
  if (r.len < 14) return 'runt';
  if (r.len > max) return 'oversize';
  return undefined;
}

/** Counts of records not sent, by reason, all zero. */
export function noneUncarriable(): Record<Uncarriable, number> {
  return { 'snap-cut': 0, 'not-ethernet': 0, runt: 0, oversize: 0 };
}

/** The summary line for records not sent, or '' when there were none. */
export function uncarriableText(n: Record<Uncarriable, number>): string {
  const total = n['snap-cut'] + n['not-ethernet'] + n.runt + n.oversize;
  if (total === 0) return '';
  return `not sent (the capture cannot carry them): ${n['snap-cut']} cut by the snap length, ${n['not-ethernet']} not Ethernet, ${n.runt} runts, ${n.oversize} oversize`;
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
    while (scanStep(r, s, Infinity)) { /* to the end */ }
    return s;
  } finally {
    r.close();
  }
}

/** scanPcap for the daemon: the event loop gets a turn every SCAN_YIELD records. */
export async function scanPcapAsync(file: string): Promise<PcapScan> {
  const r = PcapReader.open(file);
  try {
    const s: PcapScan = { records: 0, firstMs: 0, lastMs: 0 };
    while (scanStep(r, s, SCAN_YIELD)) await new Promise((res) => setImmediate(res));
    return s;
  } finally {
    r.close();
  }
}

/** Records read between two turns of the event loop (the daemon reads files on its main thread). */
export const SCAN_YIELD = 50_000;

/** Read up to n records into s; false at the end of the file. */
function scanStep(r: PcapReader, s: PcapScan, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const f = r.next();
    if (f === null) return false;
    const t = f.sec * 1000 + f.nsec / 1e6;
    if (s.records++ === 0) s.firstMs = t;
    s.lastMs = Math.max(s.lastMs, t);
  }
  return true;
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
