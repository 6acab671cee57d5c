import { describe, it, expect } from 'vitest';
import {
  ARP_OP_REPLY, ARP_OP_REQUEST, ArpView, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_VLAN, EthernetView,
  IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IcmpView, Ipv4View, TCP_SYN, TcpView, UdpView, VlanView,
  VnetHdrView, formatFrame, macToString,
} from '../../../dataplane/wire';
import {
  arpReply, arpRequest, hex, icmpEcho, padded, placeAt, tagged, tcpSyn, udpFrame, withVnet,
} from '../../fixtures/frames';

const A = { srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03', srcIp: '10.0.0.2', dstIp: '10.0.0.3' };

/** Parse an untagged IPv4 frame and check every checksum in it. */
function ipOf(f: Uint8Array) {
  const e = new EthernetView();
  const ip = new Ipv4View();
  expect(e.reset(f, 0, f.length)).toBe(true);
  expect(e.etherType).toBe(ETHERTYPE_IPV4);
  expect(ip.reset(f, 14, f.length - 14) && ip.check() && ip.verifyChecksum()).toBe(true);
  return { e, ip };
}

describe('test fixtures', () => {
  it('arpRequest / arpReply', () => {
    const q = arpRequest({ srcMac: A.srcMac, srcIp: A.srcIp, targetIp: A.dstIp });
    expect(q.length).toBe(42);
    expect(q.subarray(0, 14)).toEqual(hex('ffffffffffff 02420a000002 0806'));
    const a = new ArpView();
    a.reset(q, 14, 28);
    expect([a.op, a.spa, a.tpa, a.thaLo, a.thaHi]).toEqual([ARP_OP_REQUEST, 0x0a000002, 0x0a000003, 0, 0]);
    const r = arpReply({ srcMac: A.dstMac, srcIp: A.dstIp, dstMac: A.srcMac, dstIp: A.srcIp });
    a.reset(r, 14, 28);
    expect([a.op, a.spa, a.tpa]).toEqual([ARP_OP_REPLY, 0x0a000003, 0x0a000002]);
    expect(macToString(r, 0)).toBe(A.srcMac);
    expect(macToString(r, a.thaOffset)).toBe(A.srcMac);
    expect(macToString(r, a.shaOffset)).toBe(A.dstMac);
    const e = new EthernetView();
    e.reset(r, 0, r.length);
    expect(e.etherType).toBe(ETHERTYPE_ARP);
  });

  it('icmpEcho', () => {
    const f = icmpEcho({ ...A, id: 9, seq: 3, reply: true, payload: hex('abcdef') });
    const { ip } = ipOf(f);
    expect([ip.protocol, ip.src, ip.dst, ip.ttl]).toEqual([IPPROTO_ICMP, 0x0a000002, 0x0a000003, 64]);
    const c = new IcmpView();
    c.reset(f, ip.payloadOffset, ip.payloadLength);
    expect([c.type, c.id, c.seq, c.payloadLength, c.verifyChecksum()]).toEqual([0, 9, 3, 3, true]);
  });

  it('udpFrame and tcpSyn', () => {
    const u = udpFrame({ ...A, srcPort: 68, dstPort: 67, payload: new Uint8Array(7), ttl: 1 });
    const { ip } = ipOf(u);
    expect([ip.protocol, ip.ttl]).toEqual([IPPROTO_UDP, 1]);
    const uv = new UdpView();
    uv.reset(u, ip.payloadOffset, ip.payloadLength);
    expect([uv.srcPort, uv.dstPort, uv.length, uv.check(), uv.verifyChecksum(14)]).toEqual([68, 67, 15, true, true]);
    expect(uv.checksum).not.toBe(0);

    const s = tcpSyn({ ...A, srcPort: 43210, dstPort: 80 });
    const r = ipOf(s);
    expect(r.ip.protocol).toBe(IPPROTO_TCP);
    const t = new TcpView();
    t.reset(s, r.ip.payloadOffset, r.ip.payloadLength);
    expect([t.flags, t.srcPort, t.dstPort, t.check(), t.verifyChecksum(14)]).toEqual([TCP_SYN, 43210, 80, true, true]);
  });

  it('tagged inserts a tag after the MACs', () => {
    const f = icmpEcho({ ...A, id: 1, seq: 1 });
    const t = tagged(f, 4094, 7, 1);
    expect(t.length).toBe(f.length + 4);
    expect(t.subarray(0, 12)).toEqual(f.subarray(0, 12));
    expect(t.subarray(12, 16)).toEqual(hex('8100 fffe'));
    expect(t.subarray(16)).toEqual(f.subarray(12));
    const v = new VlanView();
    v.reset(t, 0, t.length);
    expect([v.tpid, v.vid, v.pcp, v.dei, v.innerEtherType]).toEqual([ETHERTYPE_VLAN, 4094, 7, 1, ETHERTYPE_IPV4]);
  });

  it('withVnet prepends a 10-byte header', () => {
    const f = udpFrame({ ...A, srcPort: 1, dstPort: 2 });
    const z = withVnet(f);
    expect(z.subarray(0, 10)).toEqual(new Uint8Array(10));
    expect(z.subarray(10)).toEqual(f);
    const h = withVnet(f, { flags: 1, csumStart: 34, csumOffset: 6 });
    const v = new VnetHdrView();
    v.reset(h, 0, h.length);
    expect([v.flags, v.csumStart, v.csumOffset, v.gsoType]).toEqual([1, 34, 6, 0]);
  });

  it('padded, placeAt', () => {
    const q = arpRequest({ srcMac: A.srcMac, srcIp: A.srcIp, targetIp: A.dstIp });
    const p = padded(q);
    expect(p.length).toBe(60);
    expect(p.subarray(0, 42)).toEqual(q);
    expect(p.subarray(42)).toEqual(new Uint8Array(18));
    const b = placeAt(q, 5, 3);
    expect(b.length).toBe(50);
    expect([b[4], b[47]]).toEqual([0xee, 0xee]);
    expect(formatFrame(b, 5, q.length)).toBe('02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP request who-has 10.0.0.3 tell 10.0.0.2');
    expect(() => hex('abc')).toThrow();
  });
});
