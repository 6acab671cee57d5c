import { describe, it, expect } from 'vitest';
import { ipToString, parseIp, readU16, readU32, toIpNumber, writeU16, writeU32 } from '../../../dataplane/wire';
import { rng } from '../../fixtures/frames';

describe('ip', () => {
  it('parses dotted quads to uint32', () => {
    expect(parseIp('10.0.0.1')).toBe(0x0a000001);
    expect(parseIp('192.168.0.199')).toBe(0xc0a800c7);
    expect(parseIp('255.255.255.255')).toBe(0xffffffff);
    expect(parseIp('0.0.0.0')).toBe(0);
    expect(parseIp('128.0.0.0')).toBe(0x80000000);
  });

  it('prints uint32 as dotted quad and round-trips', () => {
    expect(ipToString(0x0a000001)).toBe('10.0.0.1');
    expect(ipToString(0xffffffff)).toBe('255.255.255.255');
    expect(ipToString(0)).toBe('0.0.0.0');
    const r = rng(7);
    for (let i = 0; i < 2000; i++) {
      const n = Math.floor(r() * 0x100000000);
      expect(parseIp(ipToString(n))).toBe(n);
    }
  });

  it('rejects anything but four decimal octets 0-255', () => {
    const bad = [
      '', '256.0.0.1', '1.2.3.256', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.00', '1.2.3.-4', ' 1.2.3.4',
      '1.2.3.4 ', 'a.b.c.d', '1..2.3', '1.2.3.4/24', '0x1.2.3.4', '1000.1.1.1', '1.2.3.4\n', '１.2.3.4',
    ];
    for (const t of bad) expect(() => parseIp(t), JSON.stringify(t)).toThrow(RangeError);
    expect(() => parseIp('300.1.1.1')).toThrow(/invalid IPv4 address: "300.1.1.1"/);
  });

  it('toIpNumber accepts text or uint32 only', () => {
    expect(toIpNumber('10.0.0.3')).toBe(0x0a000003);
    expect(toIpNumber(0x0a000003)).toBe(0x0a000003);
    expect(() => toIpNumber(-1)).toThrow(RangeError);
    expect(() => toIpNumber(2 ** 32)).toThrow(RangeError);
    expect(() => toIpNumber(1.5)).toThrow(RangeError);
  });

  it('reads and writes big-endian integers at an offset', () => {
    const buf = new Uint8Array(12).fill(0xee);
    writeU32(buf, 3, 0xdeadbeef);
    writeU16(buf, 8, 0xcafe);
    expect(Array.from(buf)).toEqual([0xee, 0xee, 0xee, 0xde, 0xad, 0xbe, 0xef, 0xee, 0xca, 0xfe, 0xee, 0xee]);
    expect(readU32(buf, 3)).toBe(0xdeadbeef);
    expect(readU16(buf, 8)).toBe(0xcafe);
    expect(readU32(buf, 4)).toBe(0xadbeefee);
  });
});
