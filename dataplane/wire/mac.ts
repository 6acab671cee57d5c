// MAC addresses. On the hot path a MAC is two numbers: `hi` = the first 2 bytes (16 bits),
// `lo` = the last 4 bytes (uint32). Comparing two MACs is then two integer compares and a
// table key needs no allocation. Text forms are for the control plane, tests and traces.

export const MAC_LEN = 6;

/** First 2 bytes as a 16-bit number. */
export function macHi(buf: Uint8Array, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

/** Last 4 bytes as an unsigned 32-bit number. */
export function macLo(buf: Uint8Array, off: number): number {
  return ((buf[off + 2] << 24) | (buf[off + 3] << 16) | (buf[off + 4] << 8) | buf[off + 5]) >>> 0;
}

/** I/G bit: the low bit of the first byte. Broadcast is multicast too. */
export function isMulticast(buf: Uint8Array, off: number): boolean {
  return (buf[off] & 1) !== 0;
}

/** Same test on the `hi` half of a MAC. */
export function isMulticastHi(hi: number): boolean {
  return (hi & 0x0100) !== 0;
}

export function isBroadcast(buf: Uint8Array, off: number): boolean {
  return (buf[off] & buf[off + 1] & buf[off + 2] & buf[off + 3] & buf[off + 4] & buf[off + 5]) === 0xff;
}

export function isZero(buf: Uint8Array, off: number): boolean {
  return (buf[off] | buf[off + 1] | buf[off + 2] | buf[off + 3] | buf[off + 4] | buf[off + 5]) === 0;
}

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

/** "aa:bb:cc:dd:ee:ff" (lower case). */
export function macToString(buf: Uint8Array, off: number): string {
  return `${HEX[buf[off]]}:${HEX[buf[off + 1]]}:${HEX[buf[off + 2]]}:${HEX[buf[off + 3]]}:${HEX[buf[off + 4]]}:${HEX[buf[off + 5]]}`;
}

export function macToStringHiLo(hi: number, lo: number): string {
  return `${HEX[(hi >>> 8) & 0xff]}:${HEX[hi & 0xff]}:${HEX[(lo >>> 24) & 0xff]}:${HEX[(lo >>> 16) & 0xff]}:${HEX[(lo >>> 8) & 0xff]}:${HEX[lo & 0xff]}`;
}

// Exactly six pairs of hex digits, all separated by ':' or all by '-'.
const MAC_RE = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/;

/** Parse "aa:bb:cc:dd:ee:ff" (or with '-'). Throws a RangeError on anything else. */
export function parseMac(text: string): Uint8Array {
  const m = typeof text === 'string' ? MAC_RE.exec(text) : null;
  if (m === null) throw new RangeError(`invalid MAC address: ${JSON.stringify(text)}`);
  const out = new Uint8Array(MAC_LEN);
  out[0] = parseInt(m[1], 16);
  for (let i = 1; i < MAC_LEN; i++) out[i] = parseInt(m[i + 2], 16);
  return out;
}

/** Copy a 6-byte MAC (mac[0..6)) to buf[off..off+6). */
export function writeMac(buf: Uint8Array, off: number, mac: Uint8Array): void {
  for (let i = 0; i < MAC_LEN; i++) buf[off + i] = mac[i];
}

export function writeMacHiLo(buf: Uint8Array, off: number, hi: number, lo: number): void {
  buf[off] = (hi >>> 8) & 0xff;
  buf[off + 1] = hi & 0xff;
  buf[off + 2] = (lo >>> 24) & 0xff;
  buf[off + 3] = (lo >>> 16) & 0xff;
  buf[off + 4] = (lo >>> 8) & 0xff;
  buf[off + 5] = lo & 0xff;
}

/** A MAC given either as text or as 6 bytes (builders and fixtures accept both). */
export type MacLike = string | Uint8Array;

export function toMacBytes(mac: MacLike): Uint8Array {
  if (typeof mac === 'string') return parseMac(mac);
  if (mac.length !== MAC_LEN) throw new RangeError(`MAC must be ${MAC_LEN} bytes, got ${mac.length}`);
  return mac;
}
