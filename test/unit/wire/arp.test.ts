import { describe, it, expect } from 'vitest';
import {
  ARP_LEN, ARP_OP_REPLY, ARP_OP_REQUEST, ArpView, ETHERTYPE_ARP, EthernetView, buildArp, macToString,
  parseMac, writeArp,
} from '../../../dataplane/wire';
import { arpRequest, hex, placeAt } from '../../fixtures/frames';

describe('arp', () => {
  it('builds the exact RFC 826 bytes', () => {
    const a = buildArp({ op: ARP_OP_REQUEST, sha: '02:42:0a:00:00:02', spa: '10.0.0.2', tpa: '10.0.0.3' });
    expect(a).toEqual(hex('0001 0800 06 04 0001 02420a000002 0a000002 000000000000 0a000003'));
    expect(ARP_LEN).toBe(28);
  });

  it('round-trips a request frame at a nonzero offset', () => {
    const f = arpRequest({ srcMac: '02:42:0a:00:00:02', srcIp: '10.0.0.2', targetIp: '10.0.0.3' });
    const buf = placeAt(f, 77);
    const e = new EthernetView();
    expect(e.reset(buf, 77, f.length)).toBe(true);
    expect(e.etherType).toBe(ETHERTYPE_ARP);
    const a = new ArpView();
    expect(a.reset(buf, e.payloadOffset, e.payloadLength)).toBe(true);
    expect([a.htype, a.ptype, a.hlen, a.plen]).toEqual([1, 0x0800, 6, 4]);
    expect(a.isEthernetIpv4).toBe(true);
    expect(a.op).toBe(ARP_OP_REQUEST);
    expect(a.shaHi).toBe(0x0242);
    expect(a.shaLo).toBe(0x0a000002);
    expect(a.shaOffset).toBe(77 + 14 + 8);
    expect(macToString(buf, a.shaOffset)).toBe('02:42:0a:00:00:02');
    expect(a.spa).toBe(0x0a000002);
    expect(a.thaHi).toBe(0);
    expect(a.thaLo).toBe(0);
    expect(a.thaOffset).toBe(77 + 14 + 18);
    expect(a.tpa).toBe(0x0a000003);
  });

  it('reads addresses >= 2^31 as positive numbers', () => {
    const a = new ArpView();
    const pkt = buildArp({ op: 2, sha: 'fe:ff:ff:ff:ff:fe', spa: '192.168.1.1', tha: 'ff:ff:ff:ff:ff:ff', tpa: '255.255.255.254' });
    a.reset(pkt, 0, pkt.length);
    expect(a.shaLo).toBe(0xfffffffe);
    expect(a.spa).toBe(0xc0a80101);
    expect(a.thaLo).toBe(0xffffffff);
    expect(a.tpa).toBe(0xfffffffe);
  });

  it('rejects every length below 28', () => {
    const a = new ArpView();
    const buf = new Uint8Array(64);
    for (let len = 0; len < ARP_LEN; len++) expect(a.reset(buf, 5, len), `len ${len}`).toBe(false);
    expect(a.reset(buf, 5, ARP_LEN)).toBe(true);
  });

  it('reports other hardware/protocol formats as not Ethernet/IPv4', () => {
    const base = buildArp({ op: 1, sha: '02:00:00:00:00:01', spa: '1.2.3.4', tpa: '1.2.3.5' });
    const a = new ArpView();
    for (const [at, value] of [[1, 6], [2, 0x86], [4, 8], [5, 16]] as const) {
      const p = base.slice();
      p[at] = value;
      a.reset(p, 0, p.length);
      expect(a.isEthernetIpv4, `byte ${at}`).toBe(false);
    }
  });

  it('turns a request into a reply in place, equal to a built reply', () => {
    const f = arpRequest({ srcMac: '02:42:0a:00:00:02', srcIp: '10.0.0.2', targetIp: '10.0.0.1' });
    const buf = placeAt(f, 10);
    const a = new ArpView();
    a.reset(buf, 24, 28);
    const gw = parseMac('02:00:00:00:00:01');
    const asker = { hi: a.shaHi, lo: a.shaLo, ip: a.spa };
    const target = a.tpa;
    a.setOp(ARP_OP_REPLY);
    a.setThaHiLo(asker.hi, asker.lo);
    a.setTpa(asker.ip);
    a.setSha(gw);
    a.setSpa(target);
    const want = buildArp({ op: ARP_OP_REPLY, sha: gw, spa: '10.0.0.1', tha: '02:42:0a:00:00:02', tpa: '10.0.0.2' });
    expect(buf.subarray(24, 52)).toEqual(want);
    a.setShaHiLo(0x0242, 0x0a0000ff);
    a.setTha(parseMac('aa:aa:aa:aa:aa:aa'));
    expect(macToString(buf, a.shaOffset)).toBe('02:42:0a:00:00:ff');
    expect(macToString(buf, a.thaOffset)).toBe('aa:aa:aa:aa:aa:aa');
    expect(buf[52]).toBe(0xee);
  });

  it('writeArp writes 28 bytes at an offset', () => {
    const buf = new Uint8Array(40).fill(0xee);
    writeArp(buf, 6, ARP_OP_REPLY, parseMac('02:00:00:00:00:01'), 0x0a000001, parseMac('02:42:0a:00:00:02'), 0x0a000002);
    expect(buf.subarray(5, 35)).toEqual(hex('ee 0001 0800 0604 0002 020000000001 0a000001 02420a000002 0a000002 ee'));
  });
});
