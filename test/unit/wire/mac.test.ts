import { describe, it, expect } from 'vitest';
import {
  isBroadcast, isMulticast, isMulticastHi, isZero, macHi, macLo, macToString, macToStringHiLo,
  parseMac, toMacBytes, writeMac, writeMacHiLo,
} from '../../../dataplane/wire';
import { placeAt } from '../../fixtures/frames';

describe('mac', () => {
  it('reads hi/lo at a nonzero offset', () => {
    const buf = placeAt(parseMac('02:42:0a:00:00:02'), 7);
    expect(macHi(buf, 7)).toBe(0x0242);
    expect(macLo(buf, 7)).toBe(0x0a000002);
    expect(macToString(buf, 7)).toBe('02:42:0a:00:00:02');
  });

  it('lo is an unsigned 32-bit number', () => {
    const buf = placeAt(parseMac('ff:ff:ff:ff:ff:ff'), 3);
    expect(macLo(buf, 3)).toBe(0xffffffff);
    expect(macHi(buf, 3)).toBe(0xffff);
    const b2 = placeAt(parseMac('00:00:80:00:00:00'), 1);
    expect(macLo(b2, 1)).toBe(0x80000000);
  });

  it('classifies multicast, broadcast and zero', () => {
    const cases: [string, boolean, boolean, boolean][] = [
      ['ff:ff:ff:ff:ff:ff', true, true, false],
      ['ff:ff:ff:ff:ff:fe', true, false, false],
      ['01:00:5e:00:00:01', true, false, false],
      ['33:33:00:00:00:01', true, false, false],
      ['02:42:0a:00:00:02', false, false, false],
      ['fe:ff:ff:ff:ff:ff', false, false, false],
      ['00:00:00:00:00:00', false, false, true],
      ['00:00:00:00:00:01', false, false, false],
    ];
    for (const [text, mc, bc, zero] of cases) {
      const buf = placeAt(parseMac(text), 5);
      expect(isMulticast(buf, 5), text).toBe(mc);
      expect(isMulticastHi(macHi(buf, 5)), text).toBe(mc);
      expect(isBroadcast(buf, 5), text).toBe(bc);
      expect(isZero(buf, 5), text).toBe(zero);
    }
  });

  it('prints hi/lo', () => {
    expect(macToStringHiLo(0x0242, 0x0a000002)).toBe('02:42:0a:00:00:02');
    expect(macToStringHiLo(0xffff, 0xffffffff)).toBe('ff:ff:ff:ff:ff:ff');
    expect(macToStringHiLo(0, 0)).toBe('00:00:00:00:00:00');
  });

  it('parses text, both separators, any case', () => {
    expect(Array.from(parseMac('02:42:0A:bc:De:ff'))).toEqual([0x02, 0x42, 0x0a, 0xbc, 0xde, 0xff]);
    expect(Array.from(parseMac('02-42-0a-bc-de-ff'))).toEqual([0x02, 0x42, 0x0a, 0xbc, 0xde, 0xff]);
    const buf = placeAt(parseMac('AA:BB:CC:DD:EE:FF'), 2);
    expect(macToString(buf, 2)).toBe('aa:bb:cc:dd:ee:ff');
  });

  it('rejects bad text with a RangeError', () => {
    const bad = [
      '', '02:42:0a:00:00', '02:42:0a:00:00:02:03', '2:42:0a:00:00:02', '02:42:0a:00:00:0g',
      '02-42:0a:00:00:02', ' 02:42:0a:00:00:02', '02:42:0a:00:00:02 ', '02:42:0a:00:00:02\n',
      '0242.0a00.0002', '02420a000002', '02::42:0a:00:00:02', '002:42:0a:00:00:02',
    ];
    for (const t of bad) expect(() => parseMac(t), JSON.stringify(t)).toThrow(RangeError);
    expect(() => parseMac('zz:42:0a:00:00:02')).toThrow(/invalid MAC address: "zz:42:0a:00:00:02"/);
    expect(() => toMacBytes(new Uint8Array(5))).toThrow(RangeError);
  });

  it('writes MACs without touching neighbours', () => {
    const buf = new Uint8Array(20).fill(0xee);
    writeMac(buf, 4, parseMac('01:02:03:04:05:06'));
    expect(Array.from(buf.subarray(3, 11))).toEqual([0xee, 1, 2, 3, 4, 5, 6, 0xee]);
    writeMacHiLo(buf, 11, 0x0a0b, 0xc0d0e0f0);
    expect(Array.from(buf.subarray(10, 18))).toEqual([0xee, 0x0a, 0x0b, 0xc0, 0xd0, 0xe0, 0xf0, 0xee]);
    expect(macHi(buf, 11)).toBe(0x0a0b);
    expect(macLo(buf, 11)).toBe(0xc0d0e0f0);
  });
});
