// IPv4 addresses as uint32 numbers (network order value: 10.0.0.1 = 0x0a000001).

export { readU32, writeU32 } from './bytes';

export function ipToString(n: number): string {
  return `${(n >>> 24) & 0xff}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

// Strict dotted quad: exactly four decimal octets, no leading zeros (inet_aton would read
// "010" as octal 8; we refuse rather than guess), no whitespace, no shorthand.
const OCTET = '(0|[1-9][0-9]{0,2})';
const IP_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** Parse "a.b.c.d" into a uint32. Throws a RangeError on anything else. */
export function parseIp(text: string): number {
  const m = typeof text === 'string' ? IP_RE.exec(text) : null;
  if (m === null) throw new RangeError(`invalid IPv4 address: ${JSON.stringify(text)}`);
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) throw new RangeError(`invalid IPv4 address: ${JSON.stringify(text)} (octet ${o} > 255)`);
    n = n * 256 + o;
  }
  return n;
}

/** An IPv4 address given either as text or as a uint32 (builders and fixtures accept both). */
export type IpLike = string | number;

export function toIpNumber(ip: IpLike): number {
  if (typeof ip === 'string') return parseIp(ip);
  if (!Number.isInteger(ip) || ip < 0 || ip > 0xffffffff) throw new RangeError(`invalid IPv4 address number: ${ip}`);
  return ip;
}
