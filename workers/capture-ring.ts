// A single-producer, single-consumer ring of captured frames in a SharedArrayBuffer: a
// worker writes the frames of ports under capture, the main thread drains them into pcap
// streams. When it is full, frames are counted as lost rather than blocking the worker.
//
// Layout: Int32Array header [write offset, read offset, lost], then the data area. A record
// is 24 bytes of header (length u32, port id u32, direction u32, tag u32, time in ms as
// float64) and the frame, padded to 8 bytes. A record never wraps: when it does not fit before the end, a length of
// WRAP marks the rest of the area unused and the record starts at offset 0.

const H_WRITE = 0;
const H_READ = 1;
const H_LOST = 2;
const HEADER_BYTES = 16;
const REC_HDR = 24;
const WRAP = 0x7fffffff;

export const DIR_RX = 0;
export const DIR_TX = 1;
/** A record that is not a frame but a live trace (UTF-8 JSON of a TraceResult). */
export const DIR_TRACE = 2;

export interface CapturedFrame {
  port: number;
  dir: number;
  timeMs: number;
  /** What the producer tagged the record with (e.g. the tap sessions it is for, as bits). */
  tag: number;
  data: Uint8Array;
}

export function captureRingBytes(dataBytes: number): number {
  return HEADER_BYTES + dataBytes;
}

export class CaptureRing {
  private readonly h: Int32Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private readonly size: number;

  constructor(sab: SharedArrayBuffer) {
    this.h = new Int32Array(sab, 0, 4);
    this.size = sab.byteLength - HEADER_BYTES;
    this.data = new Uint8Array(sab, HEADER_BYTES, this.size);
    this.view = new DataView(sab, HEADER_BYTES, this.size);
  }

  /** Producer: append a frame, or count it lost when the ring is full (then false). */
  push(buf: Uint8Array, off: number, len: number, port: number, dir: number, timeMs: number, tag = 0): boolean {
    const need = (REC_HDR + len + 7) & ~7;
    if (need > this.size / 2) { Atomics.add(this.h, H_LOST, 1); return false; }
    const w = Atomics.load(this.h, H_WRITE);
    const r = Atomics.load(this.h, H_READ);
    const used = (w - r + this.size) % this.size;
    let pos = w;
    let wrapWaste = 0;
    if (pos + need > this.size) { wrapWaste = this.size - pos; pos = 0; }
    if (used + wrapWaste + need >= this.size) { Atomics.add(this.h, H_LOST, 1); return false; }
    if (wrapWaste > 0) this.view.setUint32(w, WRAP, true); // records are 8-aligned: it fits
    this.view.setUint32(pos, len, true);
    this.view.setUint32(pos + 4, port, true);
    this.view.setUint32(pos + 8, dir, true);
    this.view.setUint32(pos + 12, tag >>> 0, true);
    this.view.setFloat64(pos + 16, timeMs, true);
    this.data.set(buf.subarray(off, off + len), pos + REC_HDR);
    Atomics.store(this.h, H_WRITE, (pos + need) % this.size);
    return true;
  }

  /** Consumer: everything written since the last drain. */
  drain(): CapturedFrame[] {
    const out: CapturedFrame[] = [];
    let r = Atomics.load(this.h, H_READ);
    const w = Atomics.load(this.h, H_WRITE);
    while (r !== w) {
      if (this.size - r < REC_HDR || this.view.getUint32(r, true) === WRAP) { r = 0; continue; }
      const len = this.view.getUint32(r, true);
      const port = this.view.getUint32(r + 4, true);
      out.push({
        port, dir: this.view.getUint32(r + 8, true), timeMs: this.view.getFloat64(r + 16, true), tag: this.view.getUint32(r + 12, true),
        data: this.data.slice(r + REC_HDR, r + REC_HDR + len),
      });
      r = (r + ((REC_HDR + len + 7) & ~7)) % this.size;
    }
    Atomics.store(this.h, H_READ, r);
    return out;
  }

  /** Frames the producer could not store, since the start. */
  lost(): number {
    return Atomics.load(this.h, H_LOST);
  }
}
