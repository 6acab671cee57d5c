// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// Sums are plain JS numbers: a 64 KiB frame adds at most 32768 words of 0xffff (< 2^31),
// and callers add a few such sums, so nothing approaches 2^53. fold() reduces any such sum
// to 16 bits. A sum built from several pieces is only correct if every piece but the last
// starts at an even distance from the first (the usual case: headers have even lengths).

/**
 * One's-complement style sum of the 16-bit big-endian words in buf[off, off+len), added to
 * `initial`. An odd trailing byte counts as the high byte of a word padded with zero.
 * Not folded: pass the result to fold(), or as `initial` of the next piece.
 */
export function onesSum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + len - 1;
  let i = off;
  for (; i < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i === end) sum += buf[i] << 8;
  return sum;
}

/** Fold a sum to 16 bits with end-around carry. */
export function fold(sum: number): number {
  // `& 0xffff` is exact for any integer below 2^53 (ToInt32 keeps the low 32 bits).
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum to store: complement of the folded sum. 0 when a correct packet is verified. */
export function internetChecksum(buf: Uint8Array, off: number, len: number): number {
  return ~fold(onesSum(buf, off, len)) & 0xffff;
}

/**
 * RFC 1624 eqn 3: HC' = ~(~HC + ~m + m'). Returns the new stored checksum after a 16-bit
 * field changes from old16 to new16. Gives the same value as recomputing from scratch.
 * (UDP: a stored 0 means "no checksum" — leave it alone, and store a 0 result as 0xffff.)
 */
export function csumUpdate16(csum: number, old16: number, new16: number): number {
  const sum = (~csum & 0xffff) + (~old16 & 0xffff) + (new16 & 0xffff);
  return ~fold(sum) & 0xffff;
}

/** Same as csumUpdate16 for a 32-bit field (an IPv4 address). */
export function csumUpdate32(csum: number, old32: number, new32: number): number {
  const sum = (~csum & 0xffff)
    + (~(old32 >>> 16) & 0xffff) + (~old32 & 0xffff)
    + ((new32 >>> 16) & 0xffff) + (new32 & 0xffff);
  return ~fold(sum) & 0xffff;
}

/**
 * Update a *partial* (not complemented) sum, as held in the L4 checksum field of a
 * CHECKSUM_PARTIAL frame (virtio-net NEEDS_CSUM: the field holds the pseudo-header sum), after
 * a pseudo-header field changes (NAT of an address or a length).
 */
export function partialUpdate16(partial: number, old16: number, new16: number): number {
  return fold((partial & 0xffff) + (~old16 & 0xffff) + (new16 & 0xffff));
}

export function partialUpdate32(partial: number, old32: number, new32: number): number {
  return fold((partial & 0xffff)
    + (~(old32 >>> 16) & 0xffff) + (~old32 & 0xffff)
    + ((new32 >>> 16) & 0xffff) + (new32 & 0xffff));
}

/**
 * Finish the checksum of a CHECKSUM_PARTIAL frame (what the kernel's skb_checksum_help does
 * for a virtio-net header with NEEDS_CSUM). frameOff is the start of the Ethernet header
 * (after any virtio-net header); csumStart and end are relative to it, csumOffset relative to
 * csumStart (all as in virtio_net_hdr). The field at csumStart+csumOffset already holds the
 * pseudo-header sum; the sum over [csumStart, end) is folded, complemented and stored there
 * (0 is stored as 0xffff, as Linux does). Returns false, writing nothing, when the offsets
 * do not fit inside [0, end).
 */
export function finishPartialChecksum(
  buf: Uint8Array, frameOff: number, csumStart: number, csumOffset: number, end: number,
): boolean {
  if (csumStart < 0 || csumOffset < 0 || csumStart + csumOffset + 2 > end || frameOff + end > buf.length) {
    return false;
  }
  const start = frameOff + csumStart;
  const at = start + csumOffset;
  const c = ~fold(onesSum(buf, start, end - csumStart)) & 0xffff;
  const v = c === 0 ? 0xffff : c;
  buf[at] = v >>> 8;
  buf[at + 1] = v & 0xff;
  return true;
}
