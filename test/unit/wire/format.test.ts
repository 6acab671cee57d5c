import { describe, it, expect } from 'vitest';
import {
  ETHERTYPE_QINQ, IPPROTO_UDP, IPV4_FLAG_DF, IPV4_FLAG_MF, TCP_ACK, TCP_FIN, VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_TCPV4, buildEthernet, buildIcmp, buildIpv4, formatFrame, writeU16,
} from '../../../dataplane/wire';
import {
  CAPTURED_ICMP_ECHO_REPLY, arpReply, arpRequest, hex, icmpEcho, padded, placeAt, rng, tagged, tcpFrame,
  tcpSyn, udpFrame, withVnet,
} from '../../fixtures/frames';

const A = { srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03', srcIp: '10.0.0.2', dstIp: '10.0.0.3' };
const MACS = '02:42:0a:00:00:02 > 02:42:0a:00:00:03, ';

/** Format a frame placed at a nonzero offset inside a larger buffer. */
function fmt(frame: Uint8Array, vnet = false, len = frame.length): string {
  return formatFrame(placeAt(frame, 45), 45, len, vnet);
}

describe('formatFrame: exact text', () => {
  it('ARP', () => {
    expect(fmt(padded(arpRequest({ srcMac: A.srcMac, srcIp: A.srcIp, targetIp: A.dstIp }))))
      .toBe('02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP request who-has 10.0.0.3 tell 10.0.0.2');
    expect(fmt(arpReply({ srcMac: A.dstMac, srcIp: A.dstIp, dstMac: A.srcMac, dstIp: A.srcIp })))
      .toBe('02:42:0a:00:00:03 > 02:42:0a:00:00:02, ARP reply 10.0.0.3 is-at 02:42:0a:00:00:03');
    const odd = arpRequest({ srcMac: A.srcMac, srcIp: A.srcIp, targetIp: A.dstIp });
    odd[14 + 7] = 9;
    expect(fmt(odd)).toBe('02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP op 9 10.0.0.2 > 10.0.0.3');
    odd[14 + 1] = 6;
    expect(fmt(odd)).toBe('02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP [malformed: htype 6 ptype 0x0800 hlen 6 plen 4]');
    expect(fmt(odd, false, 14 + 27)).toBe('02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP [truncated: 27 bytes]');
  });

  it('ICMP', () => {
    expect(fmt(icmpEcho({ ...A, id: 5, seq: 1 })))
      .toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 ICMP echo request id 5 seq 1`);
    expect(fmt(hex(CAPTURED_ICMP_ECHO_REPLY)))
      .toBe('00:00:00:00:00:00 > 00:00:00:00:00:00, IPv4 127.0.0.1 > 127.0.0.1 ICMP echo reply id 4660 seq 1');
    const unreach = buildEthernet({ dst: A.dstMac, src: A.srcMac, etherType: 0x0800, payload: buildIpv4({ src: A.srcIp, dst: A.dstIp, protocol: 1, payload: buildIcmp({ type: 3, code: 3 }) }) });
    expect(fmt(unreach)).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 ICMP unreachable code 3`);
    unreach[34] = 11;
    unreach[35] = 0;
    expect(fmt(unreach)).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 ICMP time exceeded code 0`);
    unreach[34] = 13;
    expect(fmt(unreach)).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 ICMP type 13 code 0`);
  });

  it('TCP and UDP, tagged and not', () => {
    expect(fmt(tagged(tcpSyn({ ...A, srcPort: 43210, dstPort: 80 }), 10)))
      .toBe(`${MACS}vlan 10 pcp 0, IPv4 10.0.0.2.43210 > 10.0.0.3.80 TCP [S] len 0`);
    expect(fmt(tcpFrame({ ...A, srcPort: 80, dstPort: 43210, flags: TCP_FIN | TCP_ACK, payload: new Uint8Array(3) })))
      .toBe(`${MACS}IPv4 10.0.0.2.80 > 10.0.0.3.43210 TCP [F.] len 3`);
    expect(fmt(padded(udpFrame({ ...A, srcPort: 5353, dstPort: 53, payload: hex('0102') }))))
      .toBe(`${MACS}IPv4 10.0.0.2.5353 > 10.0.0.3.53 UDP len 2`);
    expect(fmt(tagged(tagged(udpFrame({ ...A, srcPort: 1, dstPort: 2 }), 20, 5, 1), 300, 3, 0, ETHERTYPE_QINQ)))
      .toBe(`${MACS}s-vlan 300 pcp 3, vlan 20 pcp 5 dei, IPv4 10.0.0.2.1 > 10.0.0.3.2 UDP len 0`);
  });

  it('virtio-net header prefix, only when not all zero', () => {
    const udp = udpFrame({ ...A, srcPort: 5353, dstPort: 53, payload: new Uint8Array(12) });
    expect(fmt(withVnet(udp), true)).toBe(`${MACS}IPv4 10.0.0.2.5353 > 10.0.0.3.53 UDP len 12`);
    expect(fmt(withVnet(udp, { flags: VNET_F_NEEDS_CSUM, csumStart: 34, csumOffset: 6 }), true))
      .toBe(`vnet(csum 34+6) ${MACS}IPv4 10.0.0.2.5353 > 10.0.0.3.53 UDP len 12`);
    expect(fmt(withVnet(udp, {
      flags: VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID, gsoType: VNET_GSO_TCPV4 | VNET_GSO_ECN, gsoSize: 1448, hdrLen: 66,
      csumStart: 34, csumOffset: 16,
    }), true)).toMatch(/^vnet\(csum 34\+16, data-valid, gso tcpv4 ecn size 1448 hdrlen 66\) 02:42/);
    expect(fmt(new Uint8Array(9), true)).toBe('truncated vnet header: 9 bytes');
    expect(fmt(withVnet(new Uint8Array(13)), true)).toBe('truncated ethernet header: 13 bytes');
  });

  it('truncated and malformed layers', () => {
    const syn = tcpSyn({ ...A, srcPort: 43210, dstPort: 80 });
    expect(fmt(syn, false, 13)).toBe('truncated ethernet header: 13 bytes');
    expect(fmt(new Uint8Array(0))).toBe('truncated ethernet header: 0 bytes');
    expect(fmt(syn, false, 14 + 19)).toBe(`${MACS}IPv4 [truncated: 19 bytes]`);
    expect(fmt(tagged(syn, 7), false, 14 + 3)).toBe(`${MACS}vlan [truncated: 3 bytes]`);

    const bad = syn.slice();
    bad[14] = 0x65;
    expect(fmt(bad)).toBe(`${MACS}IPv4 [malformed: version 6]`);
    bad[14] = 0x43;
    expect(fmt(bad)).toBe(`${MACS}IPv4 [malformed: ihl 3]`);
    bad[14] = 0x4f;
    expect(fmt(bad)).toBe(`${MACS}IPv4 [truncated: header 60 > 40 bytes]`);
    bad[14] = 0x45;
    writeU16(bad, 16, 1500);
    expect(fmt(bad)).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 [malformed: total length 1500, header 20, 40 bytes]`);

    // IP says 32 bytes: only 12 bytes of TCP.
    writeU16(bad, 16, 32);
    expect(fmt(bad)).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 TCP [truncated: 12 bytes]`);
    writeU16(bad, 16, 40);
    bad[14 + 20 + 12] = 0x30;
    expect(fmt(bad)).toBe(`${MACS}IPv4 10.0.0.2.43210 > 10.0.0.3.80 TCP [malformed: data offset 3, 20 bytes]`);

    const udp = udpFrame({ ...A, srcPort: 1, dstPort: 2, payload: hex('0102') });
    writeU16(udp, 14 + 20 + 4, 99);
    expect(fmt(udp)).toBe(`${MACS}IPv4 10.0.0.2.1 > 10.0.0.3.2 UDP [malformed: length 99, 10 bytes]`);
    writeU16(udp, 16, 27);
    expect(fmt(udp)).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 UDP [truncated: 7 bytes]`);
    const icmp = icmpEcho({ ...A, id: 1, seq: 1 });
    writeU16(icmp, 16, 25);
    expect(fmt(icmp)).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 ICMP [truncated: 5 bytes]`);
  });

  it('fragments, other protocols, other EtherTypes', () => {
    const frag = (flags: number, fragOffset: number) => buildEthernet({
      dst: A.dstMac, src: A.srcMac, etherType: 0x0800,
      payload: buildIpv4({ src: A.srcIp, dst: A.dstIp, protocol: IPPROTO_UDP, id: 77, flags, fragOffset, payload: new Uint8Array(24) }),
    });
    expect(fmt(frag(IPV4_FLAG_MF, 0))).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 UDP fragment id 77 off 0 len 24 more`);
    expect(fmt(frag(0, 185))).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 UDP fragment id 77 off 1480 len 24`);
    expect(fmt(frag(IPV4_FLAG_DF, 0))).toBe(`${MACS}IPv4 10.0.0.2.0 > 10.0.0.3.0 UDP [malformed: length 0, 24 bytes]`);
    const gre = buildEthernet({ dst: A.dstMac, src: A.srcMac, etherType: 0x0800, payload: buildIpv4({ src: A.srcIp, dst: A.dstIp, protocol: 47, payload: new Uint8Array(4) }) });
    expect(fmt(gre)).toBe(`${MACS}IPv4 10.0.0.2 > 10.0.0.3 proto 47 len 4`);
    expect(fmt(buildEthernet({ dst: A.dstMac, src: A.srcMac, etherType: 0x86dd, payload: new Uint8Array(40) })))
      .toBe(`${MACS}IPv6 len 40`);
    expect(fmt(buildEthernet({ dst: A.dstMac, src: A.srcMac, etherType: 0x88cc, payload: new Uint8Array(3) })))
      .toBe(`${MACS}ethertype 0x88cc len 3`);
    expect(fmt(buildEthernet({ dst: A.dstMac, src: A.srcMac, etherType: 46, payload: new Uint8Array(46) })))
      .toBe(`${MACS}802.3 length 46 len 46`);
  });

  it('clamps a length past the end of the buffer and bad offsets', () => {
    const f = icmpEcho({ ...A, id: 5, seq: 1 });
    const want = `${MACS}IPv4 10.0.0.2 > 10.0.0.3 ICMP echo request id 5 seq 1`;
    expect(formatFrame(f, 0, 100000)).toBe(want);
    expect(formatFrame(f, f.length + 10, 20)).toBe('truncated ethernet header: 0 bytes');
    expect(formatFrame(f, -5, f.length)).toBe(want);
    expect(formatFrame(f, 0, NaN)).toBe('truncated ethernet header: 0 bytes');
  });

  it('more than 8 stacked tags is malformed', () => {
    let f = udpFrame({ ...A, srcPort: 1, dstPort: 2 });
    for (let i = 0; i < 9; i++) f = tagged(f, i + 1);
    expect(fmt(f)).toBe(`${MACS}${'vlan 9 pcp 0, vlan 8 pcp 0, vlan 7 pcp 0, vlan 6 pcp 0, vlan 5 pcp 0, vlan 4 pcp 0, vlan 3 pcp 0, vlan 2 pcp 0, '}vlan [malformed: more than 8 tags]`);
  });
});

describe('formatFrame: never throws', () => {
  const BAD = /undefined|NaN|\[object|null/;

  it('on random garbage', () => {
    const r = rng(42);
    const buf = new Uint8Array(256);
    const types = [0x0800, 0x0806, 0x8100, 0x88a8, 0x86dd];
    for (let i = 0; i < 5000; i++) {
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(r() * 256);
      const off = Math.floor(r() * 40);
      const len = Math.floor(r() * 140);
      const vnet = r() < 0.3;
      // Steer half the cases into the deeper parsers.
      if (r() < 0.5) {
        const e = off + (vnet ? 10 : 0) + 12;
        writeU16(buf, e, types[Math.floor(r() * types.length)]);
        if (r() < 0.5) buf[e + 2] = 0x45;
        if (r() < 0.5) buf[e + 2 + 9] = [1, 6, 17][Math.floor(r() * 3)];
      }
      const s = formatFrame(buf, off, len, vnet);
      expect(typeof s).toBe('string');
      expect(s.length).toBeGreaterThan(0);
      if (BAD.test(s)) throw new Error(`bad output ${s}`);
    }
  });

  it('on valid frames with random byte flips and every truncation', () => {
    const r = rng(43);
    const frames = [
      arpRequest({ srcMac: A.srcMac, srcIp: A.srcIp, targetIp: A.dstIp }),
      icmpEcho({ ...A, id: 5, seq: 1 }),
      tagged(tcpSyn({ ...A, srcPort: 43210, dstPort: 80 }), 10),
      udpFrame({ ...A, srcPort: 1, dstPort: 2, payload: new Uint8Array(9) }),
      withVnet(tcpSyn({ ...A, srcPort: 1, dstPort: 2 }), { flags: 1, csumStart: 34, csumOffset: 16 }),
    ];
    for (const [k, f] of frames.entries()) {
      const vnet = k === 4;
      for (let len = 0; len <= f.length; len++) {
        const s = fmt(f, vnet, len);
        if (BAD.test(s)) throw new Error(`bad output ${s}`);
      }
      for (let i = 0; i < 1000; i++) {
        const m = f.slice();
        for (let flips = 1 + Math.floor(r() * 4); flips > 0; flips--) m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
        const s = fmt(m, vnet, Math.floor(r() * (m.length + 1)));
        if (BAD.test(s)) throw new Error(`bad output ${s}`);
      }
    }
  });
});
