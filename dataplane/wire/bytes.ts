// Big-endian (network order) integer access on a Uint8Array. Every view reads and writes
// multi-byte fields through these so byte order is handled in one place. No bounds checks:
// the views check lengths once in reset()/check().

export function readU16(buf: Uint8Array, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

/** Unsigned 32-bit read (>>> 0 keeps it non-negative). */
export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

export function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 8) & 0xff;
  buf[off + 1] = v & 0xff;
}

export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 24) & 0xff;
  buf[off + 1] = (v >>> 16) & 0xff;
  buf[off + 2] = (v >>> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}

/** Shared empty buffer that fresh views point at before their first reset(). */
export const EMPTY_BUF = new Uint8Array(0);

/**
 * Copy len bytes from src[srcOff] to dst[dstOff]: a plain loop for small frames (cheaper
 * than making a subarray view to set()), set() for larger ones.
 */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  if (len > 128) { dst.set(src.subarray(srcOff, srcOff + len), dstOff); return; }
  for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i];
}
