// The classic pcap file format (what tcpdump -w writes and tcpdump -r, tshark and Wireshark
// read): a 24-byte global header, then per frame a 16-byte record header and the bytes.
// This file writes it; control/pcap-read.ts reads it (both byte orders, micro- or
// nanosecond timestamps, Ethernet link type only; anything else is a clear error).

import * as fs from 'fs';
import { copyBytes } from '../dataplane/wire/bytes';

export const LINKTYPE_ETHERNET = 1;
const MAGIC_US = 0xa1b2c3d4;
const GLOBAL_LEN = 24;
const RECORD_LEN = 16;
/** Larger than any frame vsw moves (64 KiB GSO + headers). */
export const PCAP_SNAPLEN = 262144;

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

/** Milliseconds since the epoch (with a fraction) as a record's seconds and microseconds. */
export function splitMs(timeMs: number): [number, number] {
  const sec = Math.floor(timeMs / 1000);
  return [sec, Math.min(999_999, Math.floor((timeMs - sec * 1000) * 1000))];
}

/** One record: header and data (cut to snaplen). */
export function pcapRecord(frame: Uint8Array, timeMs: number, snaplen = PCAP_SNAPLEN): Buffer {
  const incl = Math.min(frame.length, snaplen);
  const b = Buffer.alloc(RECORD_LEN + incl);
  const [sec, usec] = splitMs(timeMs);
  b.writeUInt32LE(sec, 0);
  b.writeUInt32LE(usec, 4);
  b.writeUInt32LE(incl, 8);
  b.writeUInt32LE(frame.length, 12);
  b.set(frame.subarray(0, incl), RECORD_LEN);
  return b;
}

/**
 * A pcap file written through one buffer (flushed when full and at close): replay's outputs,
 * capture --all-ports. Timestamps are given as whole seconds and microseconds.
 */
export class PcapWriter {
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private readonly view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private n = 0;
  private readonly fd: number;
  frames = 0;

  constructor(readonly file: string, snaplen = PCAP_SNAPLEN) {
    this.fd = fs.openSync(file, 'w');
    this.put(pcapHeader(snaplen), 0, GLOBAL_LEN);
  }

  /** One record: frame bytes [off, off+len) of `data`. */
  write(data: Uint8Array, off: number, len: number, sec: number, usec: number): void {
    if (this.n + RECORD_LEN + len > this.buf.length) this.flush();
    const b = this.buf;
    const n = this.n;
    const v = this.view;
    v.setUint32(n, sec >>> 0, true);
    v.setUint32(n + 4, usec, true);
    v.setUint32(n + 8, len, true);
    v.setUint32(n + 12, len, true);
    this.n = n + RECORD_LEN;
    this.frames++;
    if (len > b.length - this.n) { this.put(data, off, len); return; }
    copyBytes(b, this.n, data, off, len);
    this.n += len;
  }

  /** One whole frame, stamped in milliseconds since the epoch. */
  writeMs(frame: Uint8Array, timeMs: number): void {
    const [sec, usec] = splitMs(timeMs);
    this.write(frame, 0, frame.length, sec, usec);
  }

  private put(data: Uint8Array, off: number, len: number): void {
    if (this.n + len > this.buf.length) {
      this.flush();
      if (len > this.buf.length) { fs.writeSync(this.fd, data, off, len); return; }
    }
    this.buf.set(data.subarray(off, off + len), this.n);
    this.n += len;
  }

  flush(): void {
    let at = 0;
    while (at < this.n) at += fs.writeSync(this.fd, this.buf, at, this.n - at);
    this.n = 0;
  }

  close(): void {
    this.flush();
    fs.closeSync(this.fd);
  }
}
