import { describe, it, expect } from 'vitest';
import {
  IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_BAD_IHL, IPV4_BAD_TOTAL_LENGTH, IPV4_BAD_VERSION,
  IPV4_FLAG_DF, IPV4_FLAG_MF, IPV4_HDR_TRUNCATED, IPV4_MIN_HDR_LEN, IPV4_OK, Ipv4View, buildIpv4,
  l4Checksum, pseudoHeaderSum, readU16, writeIpv4Header, ipv4CheckReason, ipv4HeaderLength, ipv4TotalLength,
  IPV4_DST_OFF, IPV4_FLAGS_FRAG_OFF, IPV4_FRAG_MASK, IPV4_PROTOCOL_OFF, IPV4_SRC_OFF, readU32,
} from '../../../dataplane/wire';
import { CAPTURED_ICMP_ECHO_REPLY, hex, placeAt } from '../../fixtures/frames';

// The classic worked example (192.168.0.1 -> 192.168.0.199, UDP, DF, total length 115).
const KNOWN_HDR = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');

describe('ipv4', () => {
  it('has the protocol numbers', () => {
    expect([IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP]).toEqual([1, 6, 17]);
  });

  it('builds the known header byte for byte, checksum 0xb861', () => {
    const p = buildIpv4({
      src: '192.168.0.1', dst: '192.168.0.199', protocol: IPPROTO_UDP, flags: IPV4_FLAG_DF, ttl: 64,
      payload: new Uint8Array(95),
    });
    expect(p.length).toBe(0x73);
    expect(p.subarray(0, 20)).toEqual(KNOWN_HDR);
  });

  it('round-trips build -> parse at a nonzero offset', () => {
    const payload = Uint8Array.from({ length: 33 }, (_, i) => 255 - i);
    const p = buildIpv4({
      src: '10.0.0.2', dst: '203.0.113.250', protocol: IPPROTO_TCP, ttl: 7, id: 0xbeef, tos: 0xb8,
      flags: IPV4_FLAG_MF, fragOffset: 185, payload,
    });
    const buf = placeAt(p, 51);
    const ip = new Ipv4View();
    expect(ip.reset(buf, 51, p.length)).toBe(true);
    expect(ip.checkReason()).toBe(IPV4_OK);
    expect(ip.check()).toBe(true);
    expect(ip.version).toBe(4);
    expect(ip.ihl).toBe(5);
    expect(ip.headerLength).toBe(20);
    expect(ip.tos).toBe(0xb8);
    expect(ip.totalLength).toBe(53);
    expect(ip.id).toBe(0xbeef);
    expect(ip.flags).toBe(IPV4_FLAG_MF);
    expect(ip.moreFragments).toBe(true);
    expect(ip.dontFragment).toBe(false);
    expect(ip.fragOffset).toBe(185);
    expect(ip.isFragment).toBe(true);
    expect(ip.ttl).toBe(7);
    expect(ip.protocol).toBe(IPPROTO_TCP);
    expect(ip.src).toBe(0x0a000002);
    expect(ip.dst).toBe(0xcb0071fa);
    expect(ip.payloadOffset).toBe(71);
    expect(ip.payloadLength).toBe(33);
    expect(buf[ip.payloadOffset]).toBe(255);
    expect(ip.verifyChecksum()).toBe(true);
    expect(ip.computeChecksum()).toBe(ip.checksum);
  });

  it('DF alone is not a fragment', () => {
    const p = buildIpv4({ src: '1.1.1.1', dst: '2.2.2.2', protocol: 6, flags: IPV4_FLAG_DF });
    const ip = new Ipv4View();
    ip.reset(p, 0, p.length);
    expect([ip.flags, ip.dontFragment, ip.isFragment, ip.fragOffset]).toEqual([IPV4_FLAG_DF, true, false, 0]);
  });

  it('handles options: ihl 6, payload after them, checksum over them', () => {
    const p = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 1, options: hex('94040000'), payload: hex('aabb') });
    const buf = placeAt(p, 9);
    const ip = new Ipv4View();
    ip.reset(buf, 9, p.length);
    expect(ip.check()).toBe(true);
    expect([ip.ihl, ip.headerLength, ip.totalLength, ip.payloadLength]).toEqual([6, 24, 26, 2]);
    expect(ip.payloadOffset).toBe(33);
    expect(buf[33]).toBe(0xaa);
    expect(ip.verifyChecksum()).toBe(true);
    buf[9 + 22] ^= 1; // inside the options
    expect(ip.verifyChecksum()).toBe(false);
    expect(() => buildIpv4({ src: 1, dst: 2, protocol: 1, options: new Uint8Array(3) })).toThrow(RangeError);
    expect(() => buildIpv4({ src: 1, dst: 2, protocol: 1, options: new Uint8Array(44) })).toThrow(RangeError);
  });

  it('accepts Ethernet padding after totalLength', () => {
    const p = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17, payload: new Uint8Array(8) });
    const buf = placeAt(p, 14, 18, 0); // 28-byte packet in a 60-byte frame
    const ip = new Ipv4View();
    ip.reset(buf, 14, 46);
    expect(ip.check()).toBe(true);
    expect(ip.payloadLength).toBe(8);
  });

  it('rejects every length below 20 (reset and check)', () => {
    const p = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17 });
    const buf = placeAt(p, 3);
    const ip = new Ipv4View();
    for (let len = 0; len < IPV4_MIN_HDR_LEN; len++) {
      expect(ip.reset(buf, 3, len), `len ${len}`).toBe(false);
      expect(ip.check(), `len ${len}`).toBe(false);
      expect(ip.checkReason()).toBe(IPV4_HDR_TRUNCATED);
    }
    expect(ip.reset(buf, 3, 20)).toBe(true);
    expect(ip.check()).toBe(true);
  });

  it('rejects malformed headers with the right reason', () => {
    const ip = new Ipv4View();
    const base = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17, payload: new Uint8Array(20) });
    const cases: [string, (b: Uint8Array) => void, number, number?][] = [
      ['version 6', (b) => { b[0] = 0x65; }, IPV4_BAD_VERSION],
      ['version 0', (b) => { b[0] = 0x05; }, IPV4_BAD_VERSION],
      ['ihl 4', (b) => { b[0] = 0x44; }, IPV4_BAD_IHL],
      ['ihl 0', (b) => { b[0] = 0x40; }, IPV4_BAD_IHL],
      ['ihl 15 > 40 bytes', (b) => { b[0] = 0x4f; }, IPV4_HDR_TRUNCATED],
      ['total length > buffer', (b) => { b[2] = 0x05; b[3] = 0xdc; }, IPV4_BAD_TOTAL_LENGTH],
      ['total length 41 > 40', (b) => { b[3] = 41; }, IPV4_BAD_TOTAL_LENGTH],
      ['total length < header', (b) => { b[3] = 19; }, IPV4_BAD_TOTAL_LENGTH],
      ['total length < options header', (b) => { b[0] = 0x46; b[3] = 22; }, IPV4_BAD_TOTAL_LENGTH],
      ['known header with 115 > 20 bytes', (b) => { b.set(KNOWN_HDR); }, IPV4_BAD_TOTAL_LENGTH, 20],
    ];
    for (const [name, mutate, reason, len] of cases) {
      const buf = placeAt(base, 17);
      mutate(buf.subarray(17));
      expect(ip.reset(buf, 17, len ?? base.length), name).toBe(true);
      expect(ip.checkReason(), name).toBe(reason);
      expect(ipv4CheckReason(buf, 17, len ?? base.length), name).toBe(reason);
      expect(ip.check(), name).toBe(false);
    }
    // Boundary: total length exactly the buffer is fine.
    const ok = placeAt(base, 1);
    ip.reset(ok, 1, base.length);
    expect(ip.check()).toBe(true);
  });

  it('verifies and recomputes the checksum of a kernel-generated header', () => {
    const frame = hex(CAPTURED_ICMP_ECHO_REPLY);
    const ip = new Ipv4View();
    ip.reset(frame, 14, frame.length - 14);
    expect(ip.check()).toBe(true);
    expect(ip.checksum).toBe(0x03ac);
    expect(ip.verifyChecksum()).toBe(true);
    expect(ip.computeChecksum()).toBe(0x03ac);
    expect([ip.id, ip.ttl, ip.src, ip.dst, ip.totalLength]).toEqual([0x7923, 64, 0x7f000001, 0x7f000001, 44]);
    ip.setTtl(63);
    expect(ip.verifyChecksum()).toBe(false);
    expect(ip.checksum).toBe(0x03ac); // setters do not touch the checksum
    expect(ip.computeChecksum()).toBe(0x04ac); // ttl/proto word 0x4001 -> 0x3f01
    ip.fillChecksum();
    expect(ip.checksum).toBe(0x04ac);
    expect(ip.verifyChecksum()).toBe(true);
  });

  it('setters write the fields', () => {
    const p = buildIpv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17 });
    const buf = placeAt(p, 2);
    const ip = new Ipv4View();
    ip.reset(buf, 2, p.length);
    ip.setSrc(0xc0a80001);
    ip.setDst(0xfffffffe);
    ip.setTtl(1);
    ip.setTos(4);
    ip.setId(0x1234);
    ip.setProtocol(6);
    ip.setTotalLength(20);
    ip.setChecksum(0xabcd);
    expect(buf.subarray(2, 22)).toEqual(hex('4504 0014 1234 0000 0106 abcd c0a80001 fffffffe'));
    expect(ip.dst).toBe(0xfffffffe);
  });

  it('writeIpv4Header equals the builder', () => {
    const want = buildIpv4({ src: '10.1.2.3', dst: '10.3.2.1', protocol: 6, ttl: 32, id: 77, flags: IPV4_FLAG_DF, tos: 0x10, payload: new Uint8Array(12) });
    const buf = new Uint8Array(40);
    writeIpv4Header(buf, 5, 0x0a010203, 0x0a030201, 6, 32, 32, 77, IPV4_FLAG_DF, 0x10);
    expect(buf.subarray(5, 25)).toEqual(want.subarray(0, 20));
  });

  it('pseudo-header sum and l4Checksum', () => {
    // 10.0.0.2 + 10.0.0.3 + 17 + 13 as 16-bit words
    expect(pseudoHeaderSum(0x0a000002, 0x0a000003, 17, 13)).toBe(0x0a00 + 2 + 0x0a00 + 3 + 17 + 13);
    const udp = hex('a8ca 0035 000d fefd 68656c6c6f'); // 43210 -> 53 "hello", known checksum 0xfefd
    const p = buildIpv4({ src: '10.0.0.2', dst: '10.0.0.3', protocol: IPPROTO_UDP, payload: udp });
    const buf = placeAt(p, 31);
    expect(l4Checksum(buf, 31, 51, 13)).toBe(0);
    buf[51 + 6] = 0;
    buf[51 + 7] = 0;
    expect(l4Checksum(buf, 31, 51, 13)).toBe(0xfefd);
    expect(readU16(buf, 31 + 10)).toBe(readU16(p, 10));
  });

  it('names its field offsets for code without a view, agreeing with the view', () => {
    const p = placeAt(buildIpv4({
      src: '10.1.2.3', dst: '203.0.113.9', protocol: IPPROTO_TCP, flags: IPV4_FLAG_MF, fragOffset: 185,
      options: new Uint8Array(8), payload: new Uint8Array(11),
    }), 5);
    const ip = new Ipv4View();
    ip.reset(p, 5, p.length - 5);
    expect(ipv4CheckReason(p, 5, p.length - 5)).toBe(IPV4_OK);
    expect(p[5 + IPV4_PROTOCOL_OFF]).toBe(ip.protocol);
    expect(readU32(p, 5 + IPV4_SRC_OFF)).toBe(ip.src);
    expect(readU32(p, 5 + IPV4_DST_OFF)).toBe(ip.dst);
    expect(readU16(p, 5 + IPV4_FLAGS_FRAG_OFF) & IPV4_FRAG_MASK).toBe(185);
    expect(ipv4HeaderLength(p, 5)).toBe(28);
    expect(ipv4TotalLength(p, 5)).toBe(39);
  });
});
