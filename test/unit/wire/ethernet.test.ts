import { describe, it, expect } from 'vitest';
import {
  ETH_HDR_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN,
  EthernetView, buildEthernet, parseMac, writeEthernet,
} from '../../../dataplane/wire';
import { hex, placeAt } from '../../fixtures/frames';

describe('ethernet', () => {
  it('has the EtherType values', () => {
    expect([ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_IPV6])
      .toEqual([0x0800, 0x0806, 0x8100, 0x88a8, 0x86dd]);
  });

  it('builds the exact header bytes', () => {
    const f = buildEthernet({ dst: 'ff:ff:ff:ff:ff:ff', src: '02:42:0a:00:00:02', etherType: 0x0806, payload: hex('c0ffee') });
    expect(f).toEqual(hex('ffffffffffff 02420a000002 0806 c0ffee'));
  });

  it('round-trips build -> parse at a nonzero offset', () => {
    const payload = Uint8Array.from({ length: 46 }, (_, i) => i);
    const f = buildEthernet({ dst: '01:00:5e:7f:00:01', src: '02:42:ac:11:00:05', etherType: ETHERTYPE_IPV4, payload });
    const buf = placeAt(f, 37);
    const e = new EthernetView();
    expect(e.reset(buf, 37, f.length)).toBe(true);
    expect(e.dstHi).toBe(0x0100);
    expect(e.dstLo).toBe(0x5e7f0001);
    expect(e.srcHi).toBe(0x0242);
    expect(e.srcLo).toBe(0xac110005);
    expect(e.dstIsMulticast).toBe(true);
    expect(e.dstIsBroadcast).toBe(false);
    expect(e.srcIsMulticast).toBe(false);
    expect(e.etherType).toBe(ETHERTYPE_IPV4);
    expect(e.dstOffset).toBe(37);
    expect(e.srcOffset).toBe(43);
    expect(e.payloadOffset).toBe(51);
    expect(e.payloadLength).toBe(46);
    expect(buf[e.payloadOffset + 45]).toBe(45);
  });

  it('flags broadcast destinations and multicast sources', () => {
    const f = buildEthernet({ dst: 'ff:ff:ff:ff:ff:ff', src: '03:00:00:00:00:01', etherType: ETHERTYPE_ARP });
    const e = new EthernetView();
    e.reset(f, 0, f.length);
    expect(e.dstIsBroadcast).toBe(true);
    expect(e.dstIsMulticast).toBe(true);
    expect(e.srcIsMulticast).toBe(true);
  });

  it('rejects every length below 14', () => {
    const buf = new Uint8Array(64);
    const e = new EthernetView();
    for (let len = 0; len < ETH_HDR_LEN; len++) expect(e.reset(buf, 9, len), `len ${len}`).toBe(false);
    expect(e.reset(buf, 9, ETH_HDR_LEN)).toBe(true);
    expect(e.payloadLength).toBe(0);
  });

  it('setters rewrite fields in place without touching neighbours', () => {
    const buf = new Uint8Array(30).fill(0xee);
    const e = new EthernetView();
    e.reset(buf, 8, 14);
    e.setDst(parseMac('02:00:00:00:00:01'));
    e.setSrcHiLo(0x0242, 0x0a000003);
    e.setEtherType(ETHERTYPE_VLAN);
    expect(buf.subarray(7, 23)).toEqual(hex('ee 020000000001 02420a000003 8100 ee'));
    e.setDstHiLo(0xffff, 0xffffffff);
    e.setSrc(parseMac('aa:bb:cc:dd:ee:ff'));
    expect(buf.subarray(8, 20)).toEqual(hex('ffffffffffff aabbccddeeff'));
    writeEthernet(buf, 8, parseMac('01:02:03:04:05:06'), parseMac('0a:0b:0c:0d:0e:0f'), 0x86dd);
    expect(e.dstLo).toBe(0x03040506);
    expect(e.srcHi).toBe(0x0a0b);
    expect(e.etherType).toBe(0x86dd);
  });

  it('builder rejects bad MACs', () => {
    expect(() => buildEthernet({ dst: 'nope', src: '02:42:0a:00:00:02', etherType: 0x0800 })).toThrow(RangeError);
  });
});
