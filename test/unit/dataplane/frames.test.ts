import { describe, it, expect } from 'vitest';
import {
  arpReplyInPlace, icmpEchoReplyInPlace, writeArpRequest, writeIcmpError, writeUdpFrame,
  ICMP_ERROR_MAX_IP_LEN, ICMP_FRAG_NEEDED, ICMP_HOST_UNREACH, ICMP_PORT_UNREACH,
} from '../../../dataplane/l3/frames';
import {
  ARP_OP_REPLY, ARP_OP_REQUEST, ArpView, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetView, ICMP_DEST_UNREACH,
  ICMP_ECHO_REPLY, ICMP_TIME_EXCEEDED, IPPROTO_ICMP, IPPROTO_UDP, IPV4_FLAG_DF, IPV4_FLAG_MF, IcmpView, Ipv4View,
  UdpView, buildEthernet, buildIcmp, buildIpv4, buildUdp, fold, internetChecksum, l4Checksum, macToStringHiLo,
  onesSum, parseIp, readU16,
} from '../../../dataplane/wire';
import {
  CAPTURED_ICMP_ECHO_REPLY, CAPTURED_ICMP_ECHO_REQUEST, arpReply, arpRequest, hex, icmpEcho, padded, placeAt, rng,
  udpFrame,
} from '../../fixtures/frames';

const GW_HI = 0x0242;
const GW_LO = 0x0a000001;
const GW_MAC = '02:42:0a:00:00:01';
const C_MAC = '02:42:0a:00:00:05';
const C_HI = 0x0242;
const C_LO = 0x0a000005;
const GW_IP = parseIp('10.0.0.1');
const C_IP = parseIp('10.0.0.5');

const eth = new EthernetView();
const arp = new ArpView();
const ipv = new Ipv4View();
const icmp = new IcmpView();
const udp = new UdpView();

/** ICMP checksum computed from scratch (field taken as zero). */
function icmpChecksumFromScratch(buf: Uint8Array, off: number, len: number): number {
  return ~fold(onesSum(buf, off, len) - readU16(buf, off + 2)) & 0xffff;
}

/** Parse the IPv4 packet of the frame at off and check both checksums from scratch. */
function parseIpFrame(buf: Uint8Array, off: number, len: number): void {
  expect(eth.reset(buf, off, len)).toBe(true);
  expect(eth.etherType).toBe(ETHERTYPE_IPV4);
  expect(ipv.reset(buf, off + 14, len - 14) && ipv.check()).toBe(true);
  expect(ipv.headerLength).toBe(20);
  expect(internetChecksum(buf, off + 14, 20)).toBe(0);
  expect(ipv.computeChecksum()).toBe(ipv.checksum);
}

describe('arpReplyInPlace', () => {
  for (const [name, make] of [
    ['a 42-byte request', (f: Uint8Array) => f],
    ['a request padded to 60 bytes by the sender', (f: Uint8Array) => padded(f)],
  ] as const) {
    it(`turns ${name} into the reply, at a nonzero offset`, () => {
      const req = make(arpRequest({ srcMac: C_MAC, srcIp: C_IP, targetIp: GW_IP }));
      const buf = placeAt(req, 37, 40);
      expect(arpReplyInPlace(buf, 37, req.length, GW_HI, GW_LO, GW_IP)).toBe(60);
      expect(eth.reset(buf, 37, 60)).toBe(true);
      expect(macToStringHiLo(eth.dstHi, eth.dstLo)).toBe(C_MAC);
      expect(macToStringHiLo(eth.srcHi, eth.srcLo)).toBe(GW_MAC);
      expect(eth.etherType).toBe(ETHERTYPE_ARP);
      expect(arp.reset(buf, 51, 28) && arp.isEthernetIpv4).toBe(true);
      expect(arp.op).toBe(ARP_OP_REPLY);
      expect([arp.shaHi, arp.shaLo, arp.spa]).toEqual([GW_HI, GW_LO, GW_IP]);
      expect([arp.thaHi, arp.thaLo, arp.tpa]).toEqual([C_HI, C_LO, C_IP]);
      expect([...buf.subarray(37 + 42, 37 + 60)]).toEqual(new Array(18).fill(0));
      expect([...buf.subarray(0, 37)]).toEqual(new Array(37).fill(0xee));
      expect([...buf.subarray(97)]).toEqual(new Array(buf.length - 97).fill(0xee));
      // Byte for byte what a host would send as the reply.
      expect(buf.subarray(37, 97)).toEqual(padded(arpReply({ srcMac: GW_MAC, srcIp: GW_IP, dstMac: C_MAC, dstIp: C_IP })));
    });
  }

  it('answers to the ARP sender address, not the Ethernet source, and answers an ARP probe (sender 0.0.0.0)', () => {
    const req = arpRequest({ srcMac: C_MAC, srcIp: '0.0.0.0', targetIp: GW_IP });
    req.set([0x02, 0, 0, 0, 0, 0x99], 6); // Ethernet source differs from the ARP sender
    const buf = placeAt(req, 3);
    expect(arpReplyInPlace(buf, 3, req.length, GW_HI, GW_LO, GW_IP)).toBe(60);
    eth.reset(buf, 3, 60);
    expect(macToStringHiLo(eth.dstHi, eth.dstLo)).toBe(C_MAC);
    arp.reset(buf, 17, 28);
    expect(arp.tpa).toBe(0);
  });

  it('refuses what is not a valid Ethernet/IPv4 ARP request, changing nothing', () => {
    const good = arpRequest({ srcMac: C_MAC, srcIp: C_IP, targetIp: GW_IP });
    const cases: [string, Uint8Array, number?][] = [
      ['a reply', arpReply({ srcMac: C_MAC, srcIp: C_IP, dstMac: GW_MAC, dstIp: GW_IP })],
      ['truncated', good, 41],
      ['no ARP header at all', good, 14],
      ['IPv4 EtherType', (() => { const f = good.slice(); f[12] = 0x08; f[13] = 0x00; return f; })()],
      ['htype 6', (() => { const f = good.slice(); f[15] = 6; return f; })()],
      ['ptype IPv6', (() => { const f = good.slice(); f[16] = 0x86; f[17] = 0xdd; return f; })()],
      ['hlen 8', (() => { const f = good.slice(); f[18] = 8; return f; })()],
      ['op 3 (RARP)', (() => { const f = good.slice(); f[21] = 3; return f; })()],
      ['a multicast sender MAC', arpRequest({ srcMac: '03:00:00:00:00:01', srcIp: C_IP, targetIp: GW_IP })],
    ];
    for (const [name, frame, len] of cases) {
      const buf = placeAt(frame, 11);
      const before = buf.slice();
      expect(arpReplyInPlace(buf, 11, len ?? frame.length, GW_HI, GW_LO, GW_IP), name).toBe(0);
      expect(buf, name).toEqual(before);
    }
    // No room for the 60-byte reply in the buffer.
    const tight = good.slice();
    expect(arpReplyInPlace(tight, 0, tight.length, GW_HI, GW_LO, GW_IP)).toBe(0);
  });
});

describe('writeArpRequest', () => {
  it('writes a broadcast who-has, padded to 60, at a nonzero offset', () => {
    const buf = new Uint8Array(200).fill(0xee);
    expect(writeArpRequest(buf, 5, GW_HI, GW_LO, GW_IP, C_IP)).toBe(60);
    expect(eth.reset(buf, 5, 60)).toBe(true);
    expect(eth.dstIsBroadcast).toBe(true);
    expect(macToStringHiLo(eth.srcHi, eth.srcLo)).toBe(GW_MAC);
    expect(eth.etherType).toBe(ETHERTYPE_ARP);
    expect(arp.reset(buf, 19, 28) && arp.isEthernetIpv4).toBe(true);
    expect(arp.op).toBe(ARP_OP_REQUEST);
    expect([arp.shaHi, arp.shaLo, arp.spa, arp.thaHi, arp.thaLo, arp.tpa]).toEqual([GW_HI, GW_LO, GW_IP, 0, 0, C_IP]);
    expect(buf.subarray(5, 65)).toEqual(padded(arpRequest({ srcMac: GW_MAC, srcIp: GW_IP, targetIp: C_IP })));
    expect([...buf.subarray(0, 5)]).toEqual([0xee, 0xee, 0xee, 0xee, 0xee]);
    expect(buf[65]).toBe(0xee);
    // The frame it wrote is one arpReplyInPlace answers.
    expect(arpReplyInPlace(buf, 5, 60, C_HI, C_LO, C_IP)).toBe(60);
  });

  it('returns 0 when the buffer has no room', () => {
    expect(writeArpRequest(new Uint8Array(100), 41, GW_HI, GW_LO, GW_IP, C_IP)).toBe(0);
    expect(writeArpRequest(new Uint8Array(100), 40, GW_HI, GW_LO, GW_IP, C_IP)).toBe(60);
  });
});

describe('icmpEchoReplyInPlace', () => {
  it('answers the captured kernel echo request as the kernel did (ICMP byte-identical; id and DF kept, unlike Linux)', () => {
    // Captured on lo, so 127.0.0.1 both ways; a loopback source is never answered on a
    // switch port, so the addresses are moved to 10.0.0.5 -> 10.0.0.1 (ICMP has no
    // pseudo-header: its bytes and checksum do not change).
    const setAddrs = (f: Uint8Array, src: number, dst: number): Uint8Array => {
      new DataView(f.buffer, f.byteOffset).setUint32(26, src);
      new DataView(f.buffer, f.byteOffset).setUint32(30, dst);
      f[24] = 0; f[25] = 0;
      const c = internetChecksum(f, 14, 20);
      f[24] = c >>> 8; f[25] = c & 0xff;
      return f;
    };
    const req = setAddrs(hex(CAPTURED_ICMP_ECHO_REQUEST), C_IP, GW_IP);
    const want = setAddrs(hex(CAPTURED_ICMP_ECHO_REPLY), GW_IP, C_IP);
    const buf = placeAt(req, 21);
    expect(icmpEchoReplyInPlace(buf, 21, 35, 21 + req.length, 0, 0)).toBe(true);
    const got = buf.subarray(21, 21 + req.length);
    expect(got.subarray(34)).toEqual(want.subarray(34));          // ICMP: byte-identical (0x98a1)
    expect(got.subarray(0, 18)).toEqual(want.subarray(0, 18));
    expect(got.subarray(18, 22)).toEqual(req.subarray(18, 22));   // id 0x7922, DF (Linux: 0x7923, no DF)
    expect(got.subarray(22, 24)).toEqual(want.subarray(22, 24));  // TTL 64, protocol
    expect(got.subarray(26, 34)).toEqual(want.subarray(26, 34));  // addresses
    parseIpFrame(buf, 21, req.length);
  });

  it('swaps MACs and addresses, sets TTL 64, keeps id/flags/payload; both checksums right from scratch', () => {
    const r = rng(5);
    for (const plen of [0, 1, 17, 56, 1000, 1473]) {
      const payload = new Uint8Array(plen).map(() => Math.floor(r() * 256));
      const req = icmpEcho({ srcMac: C_MAC, dstMac: GW_MAC, srcIp: C_IP, dstIp: '172.17.0.1', ttl: 7, ipId: 0x4321, id: 77, seq: plen, payload });
      const frame = padded(req);
      const buf = placeAt(frame, 13);
      expect(icmpEchoReplyInPlace(buf, 13, 27, 13 + frame.length, GW_HI, GW_LO)).toBe(true);
      parseIpFrame(buf, 13, frame.length);
      expect(macToStringHiLo(eth.dstHi, eth.dstLo)).toBe(C_MAC);
      expect(macToStringHiLo(eth.srcHi, eth.srcLo)).toBe(GW_MAC);
      expect([ipv.src, ipv.dst, ipv.ttl, ipv.id, ipv.protocol, ipv.totalLength]).toEqual([
        parseIp('172.17.0.1'), C_IP, 64, 0x4321, IPPROTO_ICMP, 28 + plen]);
      expect(icmp.reset(buf, ipv.payloadOffset, ipv.payloadLength)).toBe(true);
      expect([icmp.type, icmp.code, icmp.id, icmp.seq]).toEqual([ICMP_ECHO_REPLY, 0, 77, plen]);
      expect(icmp.verifyChecksum()).toBe(true);
      expect(icmp.checksum).toBe(icmpChecksumFromScratch(buf, icmp.off, icmp.len));
      expect(buf.subarray(icmp.payloadOffset, icmp.payloadOffset + plen)).toEqual(payload);
      expect(buf.subarray(13 + req.length, 13 + frame.length)).toEqual(frame.subarray(req.length)); // padding kept
      expect(buf[13 + frame.length]).toBe(0xee);
    }
  });

  it('keeps the DF flag and works behind a VLAN tag (IP 18 bytes in)', () => {
    const ipPkt = buildIpv4({ src: C_IP, dst: GW_IP, protocol: IPPROTO_ICMP, flags: IPV4_FLAG_DF,
      payload: buildIcmp({ type: 8, code: 0, rest: 0x00010002, payload: new Uint8Array(9).fill(3) }) });
    const frame = new Uint8Array(18 + ipPkt.length);
    frame.set(hex('024200000001 02420a000005 8100 000a 0800'));
    frame.set(ipPkt, 18);
    const buf = placeAt(frame, 2);
    expect(icmpEchoReplyInPlace(buf, 2, 20, 2 + frame.length, GW_HI, GW_LO)).toBe(true);
    expect(buf.subarray(14, 18)).toEqual(hex('8100 000a'));
    expect(ipv.reset(buf, 20, ipPkt.length) && ipv.check() && ipv.verifyChecksum()).toBe(true);
    expect(ipv.flags).toBe(IPV4_FLAG_DF);
    expect(icmp.reset(buf, 40, ipPkt.length - 20) && icmp.verifyChecksum()).toBe(true);
    expect(icmp.type).toBe(ICMP_ECHO_REPLY);
  });

  it('refuses what is not a valid echo request, changing nothing', () => {
    const o = { srcMac: C_MAC, dstMac: GW_MAC, srcIp: C_IP, dstIp: GW_IP, id: 1, seq: 1, payload: new Uint8Array(8) };
    const good = icmpEcho(o);
    const mod = (f: (x: Uint8Array) => void): Uint8Array => { const x = good.slice(); f(x); return x; };
    const fixIp = (x: Uint8Array): void => { x[24] = 0; x[25] = 0; const c = internetChecksum(x, 14, 20); x[24] = c >>> 8; x[25] = c & 0xff; };
    const cases: [string, Uint8Array, number?][] = [
      ['an echo reply', icmpEcho({ ...o, reply: true })],
      ['UDP', udpFrame({ ...o, srcPort: 1, dstPort: 2 })],
      ['truncated inside the ICMP message', good, good.length - 1],
      ['truncated inside the IP header', good, 30],
      ['bad ICMP checksum', mod((x) => { x[40] ^= 1; })],
      ['bad IP header checksum', mod((x) => { x[24] ^= 1; })],
      ['IPv6 version', mod((x) => { x[14] = 0x65; fixIp(x); })],
      ['a fragment (MF)', mod((x) => { x[20] = 0x20; fixIp(x); })],
      ['a non-first fragment', mod((x) => { x[21] = 0x10; fixIp(x); })],
      ['ICMP too short', mod((x) => { x[17] = 20 + 7; fixIp(x); })],
      ['from 0.0.0.0', icmpEcho({ ...o, srcIp: '0.0.0.0' })],
      ['from 255.255.255.255', icmpEcho({ ...o, srcIp: '255.255.255.255' })],
      ['from a multicast address', icmpEcho({ ...o, srcIp: '224.0.0.1' })],
      ['from a multicast MAC', icmpEcho({ ...o, srcMac: '01:00:5e:00:00:01' })],
    ];
    for (const [name, frame, end] of cases) {
      const buf = placeAt(frame, 9);
      const before = buf.slice();
      expect(icmpEchoReplyInPlace(buf, 9, 23, 9 + (end ?? frame.length), GW_HI, GW_LO), name).toBe(false);
      expect(buf, name).toEqual(before);
    }
    // IP offset inside the Ethernet header; end past the buffer
    const buf = placeAt(good, 0, 0);
    expect(icmpEchoReplyInPlace(buf, 0, 13, good.length, GW_HI, GW_LO)).toBe(false);
    expect(icmpEchoReplyInPlace(buf, 0, 14, good.length + 1, GW_HI, GW_LO)).toBe(false);
    expect(icmpEchoReplyInPlace(buf, 0, 14, good.length, GW_HI, GW_LO)).toBe(true);
  });
});

describe('writeIcmpError', () => {
  const udpOpts = { srcMac: C_MAC, dstMac: GW_MAC, srcIp: C_IP, dstIp: '93.184.216.34', srcPort: 40000, dstPort: 53, ttl: 1 };

  /** Check the error frame at off and return the quoted bytes. */
  function checkError(buf: Uint8Array, off: number, len: number, type: number, code: number): Uint8Array {
    parseIpFrame(buf, off, len);
    expect(macToStringHiLo(eth.dstHi, eth.dstLo)).toBe(C_MAC);
    expect(macToStringHiLo(eth.srcHi, eth.srcLo)).toBe(GW_MAC);
    expect([ipv.src, ipv.dst, ipv.protocol, ipv.ttl, ipv.id, ipv.flags, ipv.tos]).toEqual([GW_IP, C_IP, IPPROTO_ICMP, 64, 0, 0, 0xc0]);
    expect(ipv.totalLength).toBeLessThanOrEqual(ICMP_ERROR_MAX_IP_LEN);
    expect(len).toBe(Math.max(60, 14 + ipv.totalLength));
    expect(icmp.reset(buf, ipv.payloadOffset, ipv.payloadLength)).toBe(true);
    expect([icmp.type, icmp.code]).toEqual([type, code]);
    expect(icmp.verifyChecksum()).toBe(true);
    expect(icmp.checksum).toBe(icmpChecksumFromScratch(buf, icmp.off, icmp.len));
    return buf.slice(icmp.payloadOffset, icmp.payloadOffset + icmp.payloadLength);
  }

  it('quotes a small packet whole (port unreachable), at a nonzero offset', () => {
    const orig = udpFrame({ ...udpOpts, payload: new Uint8Array([1, 2, 3]) });
    const src = placeAt(orig, 7);
    const buf = new Uint8Array(300).fill(0xee);
    const n = writeIcmpError(buf, 19, GW_HI, GW_LO, C_HI, C_LO, GW_IP, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, src, 21, 7 + orig.length);
    expect(n).toBe(14 + 20 + 8 + 31);
    const quoted = checkError(buf, 19, n, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH);
    expect(quoted).toEqual(orig.subarray(14));
    expect(icmp.restOfHeader).toBe(0);
    expect(buf[18]).toBe(0xee);
    expect(buf[19 + n]).toBe(0xee);
  });

  it('quotes a big packet up to 576 bytes of IP (RFC 1812), and ignores Ethernet padding', () => {
    const payload = new Uint8Array(1400).map((_, i) => i & 0xff);
    const orig = udpFrame({ ...udpOpts, payload });
    const buf = new Uint8Array(2000);
    const n = writeIcmpError(buf, 1, GW_HI, GW_LO, C_HI, C_LO, GW_IP, ICMP_TIME_EXCEEDED, 0, orig, 14, orig.length);
    expect(n).toBe(14 + 576);
    const quoted = checkError(buf, 1, n, ICMP_TIME_EXCEEDED, 0);
    expect(quoted).toEqual(orig.subarray(14, 14 + 548));
    // A tiny packet padded by Ethernet: only its total length is quoted; the result is padded.
    const small = padded(buildEthernet({ dst: GW_MAC, src: C_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: C_IP, dst: '8.8.8.8', protocol: 253, ttl: 1 }) }));
    const m = writeIcmpError(buf, 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, small, 14, small.length);
    expect(m).toBe(14 + 20 + 8 + 20);
    expect(checkError(buf, 0, m, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH)).toEqual(small.subarray(14, 34));
  });

  it('writes the rest-of-header word (next-hop MTU of fragmentation needed)', () => {
    const orig = udpFrame({ ...udpOpts, payload: new Uint8Array(1500) });
    const buf = new Uint8Array(1000);
    const n = writeIcmpError(buf, 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, orig, 14, orig.length, 1400);
    checkError(buf, 0, n, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED);
    expect(icmp.restOfHeader).toBe(1400);
  });

  it('is sent about ICMP queries and first fragments', () => {
    const buf = new Uint8Array(1000);
    const echo = icmpEcho({ srcMac: C_MAC, dstMac: GW_MAC, srcIp: C_IP, dstIp: '1.1.1.1', id: 3, seq: 4, ttl: 1 });
    expect(writeIcmpError(buf, 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, ICMP_TIME_EXCEEDED, 0, echo, 14, echo.length)).toBeGreaterThan(0);
    const first = buildEthernet({ dst: GW_MAC, src: C_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: C_IP, dst: '1.1.1.1', protocol: IPPROTO_UDP, flags: IPV4_FLAG_MF, ttl: 1,
        payload: buildUdp({ src: C_IP, dst: '1.1.1.1', srcPort: 1, dstPort: 2, payload: new Uint8Array(100) }) }) });
    expect(writeIcmpError(buf, 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, ICMP_TIME_EXCEEDED, 0, first, 14, first.length)).toBe(14 + 20 + 8 + 128);
  });

  it('is never sent about an ICMP error, a non-first fragment, a broadcast/multicast destination or a bad packet', () => {
    const inner = buildIpv4({ src: '1.1.1.1', dst: C_IP, protocol: IPPROTO_UDP, payload: buildUdp({ src: '1.1.1.1', dst: C_IP, srcPort: 53, dstPort: 9 }) });
    const errFrame = (type: number): Uint8Array => buildEthernet({ dst: GW_MAC, src: C_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: C_IP, dst: '1.1.1.1', protocol: IPPROTO_ICMP, ttl: 1, payload: buildIcmp({ type, code: 3, payload: inner }) }) });
    const ipFrame = (f: Partial<Parameters<typeof buildIpv4>[0]>): Uint8Array => buildEthernet({ dst: GW_MAC, src: C_MAC, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: C_IP, dst: '1.1.1.1', protocol: IPPROTO_UDP, ttl: 1, payload: new Uint8Array(16), ...f }) });
    const good = ipFrame({});
    const cases: [string, Uint8Array, number?][] = [
      ['a port unreachable', errFrame(3)],
      ['a time exceeded', errFrame(11)],
      ['a redirect', errFrame(5)],
      ['a parameter problem', errFrame(12)],
      ['an unknown ICMP type', errFrame(42)],
      ['an ICMP packet without its type byte', ipFrame({ protocol: IPPROTO_ICMP, payload: new Uint8Array(0) })],
      ['a non-first fragment', ipFrame({ fragOffset: 185 })],
      ['a last fragment', ipFrame({ fragOffset: 1 })],
      ['to 255.255.255.255', ipFrame({ dst: '255.255.255.255' })],
      ['to a multicast group', ipFrame({ dst: '239.1.2.3' })],
      ['to class E', ipFrame({ dst: '240.0.0.1' })],
      ['from 0.0.0.0 (DHCP)', ipFrame({ src: '0.0.0.0' })],
      ['from loopback', ipFrame({ src: '127.0.0.1' })],
      ['from a multicast source', ipFrame({ src: '224.0.0.5' })],
      ['truncated (total length past the frame)', good, good.length - 1],
      ['truncated inside the header', good, 14 + 19],
      ['a bad header checksum', (() => { const x = good.slice(); x[24] ^= 0x10; return x; })()],
    ];
    for (const [name, frame, end] of cases) {
      const buf = new Uint8Array(1000).fill(0xee);
      expect(writeIcmpError(buf, 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, ICMP_TIME_EXCEEDED, 0, frame, 14, end ?? frame.length), name).toBe(0);
    }
    // No room in the output buffer.
    expect(writeIcmpError(new Uint8Array(14 + 20 + 8 + 35), 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, 11, 0, good, 14, good.length)).toBe(0);
    expect(writeIcmpError(new Uint8Array(14 + 20 + 8 + 36), 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, 11, 0, good, 14, good.length)).toBe(78);
  });

  it('writes correctly over the original (same buffer, or two views of one buffer, overlapping either way)', () => {
    const orig = udpFrame({ ...udpOpts, payload: new Uint8Array(700).map((_, i) => (i * 7) & 0xff) });
    const ref = new Uint8Array(2000);
    const refLen = writeIcmpError(ref, 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, 11, 0, orig, 14, orig.length);
    const want = ref.slice(0, refLen);
    for (const origAt of [0, 100]) {
      for (const outAt of [0, 30, 100, 130, 170]) {
        // one Uint8Array
        const buf = new Uint8Array(2000);
        buf.set(orig, origAt);
        const n = writeIcmpError(buf, outAt, GW_HI, GW_LO, C_HI, C_LO, GW_IP, 11, 0, buf, origAt + 14, origAt + orig.length);
        expect(buf.subarray(outAt, outAt + n), `${origAt} -> ${outAt}`).toEqual(want);
        // two views: the output view starts after the original's start (backward copy needed)
        const ab = new ArrayBuffer(2000);
        const whole = new Uint8Array(ab);
        whole.set(orig, origAt);
        const out = new Uint8Array(ab, 50);
        const m = writeIcmpError(out, outAt, GW_HI, GW_LO, C_HI, C_LO, GW_IP, 11, 0, whole, origAt + 14, origAt + orig.length);
        expect(out.subarray(outAt, outAt + m), `views ${origAt} -> ${outAt}`).toEqual(want);
        // two views: the original's view starts after the output's
        const ab2 = new ArrayBuffer(2000);
        const out2 = new Uint8Array(ab2);
        const src2 = new Uint8Array(ab2, 60);
        src2.set(orig, origAt);
        const k = writeIcmpError(out2, outAt, GW_HI, GW_LO, C_HI, C_LO, GW_IP, 11, 0, src2, origAt + 14, origAt + orig.length);
        expect(out2.subarray(outAt, outAt + k), `views2 ${origAt} -> ${outAt}`).toEqual(want);
      }
    }
  });
});

describe('writeUdpFrame', () => {
  it('writes the same bytes as the fixture builder (IP and UDP checksums, TTL 64, id 0, DF clear), at a nonzero offset', () => {
    for (const plen of [0, 1, 17, 512, 1472, 4000]) {
      const payload = new Uint8Array(plen).map((_, i) => (i * 13 + plen) & 0xff);
      const buf = new Uint8Array(5000).fill(0xee);
      const n = writeUdpFrame(buf, 3, GW_HI, GW_LO, C_HI, C_LO, GW_IP, C_IP, 53, 40000, payload);
      const want = padded(udpFrame({ srcMac: GW_MAC, dstMac: C_MAC, srcIp: GW_IP, dstIp: C_IP, srcPort: 53, dstPort: 40000, payload }));
      expect(n).toBe(want.length);
      expect(buf.subarray(3, 3 + n)).toEqual(want);
      expect(buf[2]).toBe(0xee);
      expect(buf[3 + n]).toBe(0xee);
      parseIpFrame(buf, 3, n);
      expect([ipv.ttl, ipv.id, ipv.flags, ipv.protocol, ipv.src, ipv.dst]).toEqual([64, 0, 0, IPPROTO_UDP, GW_IP, C_IP]);
      expect(udp.reset(buf, ipv.payloadOffset, ipv.payloadLength) && udp.check()).toBe(true);
      expect([udp.srcPort, udp.dstPort, udp.length]).toEqual([53, 40000, 8 + plen]);
      expect(l4Checksum(buf, ipv.off, udp.off, udp.length)).toBe(0);
      expect(udp.checksum).not.toBe(0);
      expect(buf.subarray(udp.payloadOffset, udp.payloadOffset + plen)).toEqual(payload);
    }
  });

  it('sends a computed checksum of 0 as 0xffff', () => {
    // Choose the 2 payload bytes so that the datagram sums to 0xffff (checksum 0).
    const payload = new Uint8Array(2);
    const buf = new Uint8Array(100);
    writeUdpFrame(buf, 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, C_IP, 53, 1000, payload);
    const sum = fold(onesSum(buf, 34, 10) - readU16(buf, 40) + (GW_IP >>> 16) + (GW_IP & 0xffff) + (C_IP >>> 16) + (C_IP & 0xffff) + 17 + 10);
    const w = 0xffff - sum;
    payload[0] = w >>> 8;
    payload[1] = w & 0xff;
    writeUdpFrame(buf, 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, C_IP, 53, 1000, payload);
    expect(readU16(buf, 40)).toBe(0xffff);
    expect(l4Checksum(buf, 14, 34, 10)).toBe(0);
  });

  it('copies a payload that lives in the same buffer', () => {
    const buf = new Uint8Array(300);
    const payload = buf.subarray(20, 70);
    payload.forEach((_, i) => { payload[i] = i + 1; });
    const copy = payload.slice();
    const n = writeUdpFrame(buf, 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, C_IP, 53, 1000, payload);
    expect(n).toBe(42 + 50);
    expect(buf.subarray(42, 92)).toEqual(copy);
    expect(l4Checksum(buf, 14, 34, 58)).toBe(0);
  });

  it('returns 0 when the buffer has no room or the datagram is too big for IPv4', () => {
    expect(writeUdpFrame(new Uint8Array(59), 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, C_IP, 53, 1, new Uint8Array(0))).toBe(0);
    expect(writeUdpFrame(new Uint8Array(60), 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, C_IP, 53, 1, new Uint8Array(0))).toBe(60);
    expect(writeUdpFrame(new Uint8Array(70000), 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, C_IP, 53, 1, new Uint8Array(65508))).toBe(0);
    expect(writeUdpFrame(new Uint8Array(70000), 0, GW_HI, GW_LO, C_HI, C_LO, GW_IP, C_IP, 53, 1, new Uint8Array(65507))).toBe(14 + 65535);
  });
});
