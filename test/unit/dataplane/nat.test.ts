import { describe, it, expect } from 'vitest';
import {
  ICMP_QUOTE_MALFORMED, ICMP_QUOTE_OK, ICMP_QUOTE_UNTRACKED, decTtl, icmpErrorInner, icmpErrorQuote, natRewrite, natRewriteIcmpError,
} from '../../../dataplane/nat';
import {
  ETH_HDR_LEN, ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED, IPPROTO_ICMP, IPPROTO_TCP,
  IPPROTO_UDP, IPV4_FLAG_DF, IPV4_FLAG_MF, Ipv4View, TCP_ACK, TCP_PSH, TCP_SYN, buildIcmp, buildIcmpEcho, buildIpv4,
  buildTcp, buildUdp, finishPartialChecksum, fold, internetChecksum, l4Checksum, onesSum, pseudoHeaderSum, readU16,
  writeU16,
} from '../../../dataplane/wire';
import { icmpEcho, placeAt, rng, tcpFrame, udpFrame } from '../../fixtures/frames';

const ip = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const C = ip(10, 0, 0, 2);           // a container
const S = ip(93, 184, 216, 34);      // a server outside
const U = ip(192, 168, 1, 10);       // the uplink address
const R = ip(198, 51, 100, 1);       // a router on the way

const payload = (n: number, seed = 1): Uint8Array => {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
};

function ipv4(buf: Uint8Array, off: number): Ipv4View {
  const v = new Ipv4View();
  v.reset(buf, off, buf.length - off);
  return v;
}

/** The IP header checksum is what a recomputation gives. */
function expectIpChecksum(buf: Uint8Array, off: number): void {
  const v = ipv4(buf, off);
  expect(v.checksum).toBe(v.computeChecksum());
  expect(v.verifyChecksum()).toBe(true);
}

/** The L4 checksum a from-scratch computation stores (UDP: 0 as 0xffff). */
function scratchL4(buf: Uint8Array, ipOff: number, proto: number): number {
  const v = ipv4(buf, ipOff);
  const l4 = v.payloadOffset;
  const len = v.payloadLength;
  const at = l4 + (proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : 2);
  const saved = readU16(buf, at);
  writeU16(buf, at, 0);
  const c = proto === IPPROTO_ICMP ? internetChecksum(buf, l4, len) : l4Checksum(buf, ipOff, l4, len);
  writeU16(buf, at, saved);
  return proto === IPPROTO_UDP && c === 0 ? 0xffff : c;
}

function l4Field(buf: Uint8Array, ipOff: number, proto: number): number {
  const l4 = ipv4(buf, ipOff).payloadOffset;
  return readU16(buf, l4 + (proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : 2));
}

function tuple(buf: Uint8Array, ipOff: number): number[] {
  const v = ipv4(buf, ipOff);
  const l4 = v.payloadOffset;
  if (v.protocol === IPPROTO_ICMP) return [v.src, v.dst, readU16(buf, l4 + 4)];
  return [v.src, v.dst, readU16(buf, l4), readU16(buf, l4 + 2)];
}

describe('natRewrite', () => {
  it('rewrites a TCP segment (odd payload, odd buffer offset): addresses, ports, both checksums', () => {
    const frame = tcpFrame({
      srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:01', srcIp: C, dstIp: S,
      srcPort: 40000, dstPort: 443, flags: TCP_PSH | TCP_ACK, seq: 7, ack: 9, payload: payload(33),
    });
    const off = 37;
    const buf = placeAt(frame, off);
    const ipOff = off + ETH_HDR_LEN;
    const end = off + frame.length;
    expect(natRewrite(buf, ipOff, end, U, S, 61000, 443, false)).toBe(true);
    expect(tuple(buf, ipOff)).toEqual([U, S, 61000, 443]);
    expectIpChecksum(buf, ipOff);
    expect(l4Field(buf, ipOff, IPPROTO_TCP)).toBe(scratchL4(buf, ipOff, IPPROTO_TCP));
    expect(l4Checksum(buf, ipOff, ipOff + 20, frame.length - 34)).toBe(0);
    // Nothing outside the packet was touched.
    expect(buf.subarray(0, off).every((b) => b === 0xee)).toBe(true);
    expect(buf.subarray(end).every((b) => b === 0xee)).toBe(true);
  });

  it('rewrites a UDP datagram with a checksum', () => {
    const frame = udpFrame({
      srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: S, dstIp: U, srcPort: 53, dstPort: 61000,
      payload: payload(51, 2),
    });
    const buf = placeAt(frame, 3);
    const ipOff = 3 + ETH_HDR_LEN;
    expect(natRewrite(buf, ipOff, 3 + frame.length, S, C, 53, 5353, false)).toBe(true);
    expect(tuple(buf, ipOff)).toEqual([S, C, 53, 5353]);
    expectIpChecksum(buf, ipOff);
    expect(l4Field(buf, ipOff, IPPROTO_UDP)).toBe(scratchL4(buf, ipOff, IPPROTO_UDP));
  });

  it('leaves a UDP checksum of 0 (none) as 0', () => {
    const pkt = buildIpv4({ src: C, dst: S, protocol: IPPROTO_UDP,
      payload: buildUdp({ src: C, dst: S, srcPort: 1000, dstPort: 2000, payload: payload(10), checksum: false }) });
    const buf = placeAt(pkt, 6);
    expect(natRewrite(buf, 6, 6 + pkt.length, U, S, 3000, 2000, false)).toBe(true);
    expect(tuple(buf, 6)).toEqual([U, S, 3000, 2000]);
    expect(l4Field(buf, 6, IPPROTO_UDP)).toBe(0);
    expectIpChecksum(buf, 6);
  });

  it('stores a UDP checksum that comes out 0 as 0xffff', () => {
    // A payload word chosen so that the datagram after NAT sums to 0xffff (checksum 0).
    const data = new Uint8Array(8);
    const after = buildUdp({ src: U, dst: S, srcPort: 3000, dstPort: 2000, payload: data });
    writeU16(after, 6, 0);
    const sum = fold(onesSum(after, 0, after.length, pseudoHeaderSum(U, S, IPPROTO_UDP, after.length)));
    writeU16(data, 0, 0xffff - sum);
    const pkt = buildIpv4({ src: C, dst: S, protocol: IPPROTO_UDP,
      payload: buildUdp({ src: C, dst: S, srcPort: 1000, dstPort: 2000, payload: data }) });
    expect(natRewrite(pkt, 0, pkt.length, U, S, 3000, 2000, false)).toBe(true);
    expect(l4Field(pkt, 0, IPPROTO_UDP)).toBe(0xffff);
    expect(l4Checksum(pkt, 0, 20, pkt.length - 20)).toBe(0);
  });

  it('rewrites an ICMP echo request and reply: identifier = sport, dport ignored', () => {
    for (const reply of [false, true]) {
      const frame = icmpEcho({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: C, dstIp: S,
        id: 0x1234, seq: 9, reply, payload: payload(17, 3) });
      const buf = placeAt(frame, 11);
      const ipOff = 11 + ETH_HDR_LEN;
      expect(natRewrite(buf, ipOff, 11 + frame.length, U, S, 0xbeef, 0xdead, false)).toBe(true);
      expect(tuple(buf, ipOff)).toEqual([U, S, 0xbeef]);
      expect(readU16(buf, ipOff + 20 + 6)).toBe(9); // sequence untouched
      expect(buf[ipOff + 20]).toBe(reply ? ICMP_ECHO_REPLY : ICMP_ECHO_REQUEST);
      expectIpChecksum(buf, ipOff);
      expect(l4Field(buf, ipOff, IPPROTO_ICMP)).toBe(scratchL4(buf, ipOff, IPPROTO_ICMP));
    }
  });

  it('rewrites only the IP header of other ICMP types and other protocols', () => {
    const ts = buildIpv4({ src: C, dst: S, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: 13, code: 0, rest: 0x12345678, payload: payload(12) }) });
    const l4Before = ts.slice(20);
    expect(natRewrite(ts, 0, ts.length, U, S, 1, 2, false)).toBe(true);
    expect([ipv4(ts, 0).src, ipv4(ts, 0).dst]).toEqual([U, S]);
    expect(ts.slice(20)).toEqual(l4Before);
    expectIpChecksum(ts, 0);
    const gre = buildIpv4({ src: C, dst: S, protocol: 47, payload: payload(4) });
    expect(natRewrite(gre, 0, gre.length, U, S, 1, 2, false)).toBe(true);
    expect(gre.slice(20)).toEqual(payload(4));
    expectIpChecksum(gre, 0);
  });

  it('rewrites the ports of a first fragment, only the IP header of the others', () => {
    const seg = buildTcp({ src: C, dst: S, srcPort: 40000, dstPort: 80, flags: TCP_ACK, payload: payload(40) });
    const first = buildIpv4({ src: C, dst: S, protocol: IPPROTO_TCP, flags: IPV4_FLAG_MF, payload: seg });
    expect(natRewrite(first, 0, first.length, U, S, 50000, 80, false)).toBe(true);
    expect(tuple(first, 0)).toEqual([U, S, 50000, 80]);
    expect(l4Field(first, 0, IPPROTO_TCP)).toBe(scratchL4(first, 0, IPPROTO_TCP));
    expectIpChecksum(first, 0);
    const rest = payload(24, 5);
    const later = buildIpv4({ src: C, dst: S, protocol: IPPROTO_UDP, fragOffset: 185, flags: IPV4_FLAG_DF, payload: rest });
    expect(natRewrite(later, 0, later.length, U, S, 1, 2, false)).toBe(true);
    expect([ipv4(later, 0).src, ipv4(later, 0).dst]).toEqual([U, S]);
    expect(later.slice(20)).toEqual(rest);
    expectIpChecksum(later, 0);
  });

  it('handles IP options (ihl > 5)', () => {
    const seg = buildUdp({ src: C, dst: S, srcPort: 1, dstPort: 2, payload: payload(9) });
    const pkt = buildIpv4({ src: C, dst: S, protocol: IPPROTO_UDP, options: Uint8Array.of(1, 1, 1, 0, 0x94, 4, 0, 0), payload: seg });
    expect(natRewrite(pkt, 0, pkt.length, U, S, 3, 4, false)).toBe(true);
    expect(tuple(pkt, 0)).toEqual([U, S, 3, 4]);
    expect(readU16(pkt, 28 + 6)).toBe(scratchL4(pkt, 0, IPPROTO_UDP));
    expectIpChecksum(pkt, 0);
  });

  it('CHECKSUM_PARTIAL: folds only the address change into the pseudo-header sum', () => {
    for (const proto of [IPPROTO_TCP, IPPROTO_UDP]) {
      const l4 = proto === IPPROTO_TCP
        ? buildTcp({ src: C, dst: S, srcPort: 40000, dstPort: 80, flags: TCP_SYN, payload: payload(21) })
        : buildUdp({ src: C, dst: S, srcPort: 40000, dstPort: 80, payload: payload(21) });
      const pkt = buildIpv4({ src: C, dst: S, protocol: proto, payload: l4 });
      const at = 20 + (proto === IPPROTO_TCP ? 16 : 6);
      // As the sender's stack leaves it: the pseudo-header sum, not complemented.
      writeU16(pkt, at, fold(pseudoHeaderSum(C, S, proto, l4.length)));
      const buf = placeAt(pkt, 9);
      expect(natRewrite(buf, 9, 9 + pkt.length, U, S, 61000, 8080, true)).toBe(true);
      expect(tuple(buf, 9)).toEqual([U, S, 61000, 8080]);
      expect(readU16(buf, 9 + at)).toBe(fold(pseudoHeaderSum(U, S, proto, l4.length)));
      expectIpChecksum(buf, 9);
      // Finishing it (as the kernel will) gives the right checksum for the new tuple.
      expect(finishPartialChecksum(buf, 9, 20, at - 20, pkt.length)).toBe(true);
      expect(l4Checksum(buf, 9, 29, l4.length)).toBe(0);
      expect(readU16(buf, 9 + at)).toBe(scratchL4(buf, 9, proto));
    }
  });

  it('refuses truncated or malformed packets and changes nothing', () => {
    const tcp = buildIpv4({ src: C, dst: S, protocol: IPPROTO_TCP,
      payload: buildTcp({ src: C, dst: S, srcPort: 1, dstPort: 2, flags: TCP_SYN, payload: payload(8) }) });
    const udp = buildIpv4({ src: C, dst: S, protocol: IPPROTO_UDP,
      payload: buildUdp({ src: C, dst: S, srcPort: 1, dstPort: 2, payload: payload(8) }) });
    const icmp = buildIpv4({ src: C, dst: S, protocol: IPPROTO_ICMP, payload: buildIcmpEcho({ id: 1, seq: 1, payload: payload(8) }) });
    const check = (pkt: Uint8Array, ipOff: number, end: number): void => {
      const before = pkt.slice();
      expect(natRewrite(pkt, ipOff, end, U, S, 7, 8, false)).toBe(false);
      expect(pkt).toEqual(before);
    };
    check(tcp, 0, 19);                 // not even an IP header
    check(tcp, 0, 39);                 // TCP header one byte short
    check(udp, 0, 27);                 // UDP header one byte short
    check(icmp, 0, 27);                // ICMP header one byte short
    check(tcp, 0, tcp.length + 1);     // end past the buffer
    check(tcp, -1, tcp.length);
    const v6 = tcp.slice(); v6[0] = 0x65; check(v6, 0, v6.length);
    const ihl4 = tcp.slice(); ihl4[0] = 0x44; check(ihl4, 0, ihl4.length);
    const ihlBig = tcp.slice(); ihlBig[0] = 0x4f; check(ihlBig, 0, ihlBig.length); // 60-byte header > total length
    const shortTl = tcp.slice(); writeU16(shortTl, 2, 30); check(shortTl, 0, shortTl.length); // total length cuts TCP
    // The L4 header is all that is needed: a payload cut short (capture snap) is fine.
    const cut = tcp.slice();
    expect(natRewrite(cut, 0, 40, U, S, 7, 8, false)).toBe(true);
    expect(tuple(cut, 0)).toEqual([U, S, 7, 8]);
    expectIpChecksum(cut, 0);
  });

  it('matches a from-scratch recomputation over thousands of random packets, and rewrites back exactly', () => {
    const r = rng(2024);
    const u32 = (): number => Math.floor(r() * 0x100000000) >>> 0;
    const u16 = (): number => Math.floor(r() * 0x10000);
    for (let n = 0; n < 3000; n++) {
      const kind = Math.floor(r() * 5); // tcp, udp, udp without checksum, icmp echo, tcp partial
      const src = u32(); const dst = u32();
      const data = payload(Math.floor(r() * 40), n);
      const opts = r() < 0.3 ? new Uint8Array(4 * (1 + Math.floor(r() * 3))).fill(1) : undefined;
      let proto: number;
      let l4: Uint8Array;
      const sp = u16(); const dp = u16();
      if (kind === 0 || kind === 4) {
        proto = IPPROTO_TCP;
        l4 = buildTcp({ src, dst, srcPort: sp, dstPort: dp, flags: TCP_ACK, seq: u32(), payload: data, options: opts });
      } else if (kind === 3) {
        proto = IPPROTO_ICMP;
        l4 = buildIcmpEcho({ type: r() < 0.5 ? ICMP_ECHO_REQUEST : ICMP_ECHO_REPLY, id: sp, seq: dp, payload: data });
      } else {
        proto = IPPROTO_UDP;
        l4 = buildUdp({ src, dst, srcPort: sp, dstPort: dp, payload: data, checksum: kind === 1 });
      }
      const pkt = buildIpv4({ src, dst, protocol: proto, payload: l4, ttl: 1 + Math.floor(r() * 255), id: u16(), options: opts });
      const hl = pkt[0] & 0xf;
      const csumAt = (hl << 2) + (proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : 2);
      const partial = kind === 4;
      if (partial) writeU16(pkt, csumAt, fold(pseudoHeaderSum(src, dst, proto, l4.length)));
      const off = Math.floor(r() * 8);
      const buf = placeAt(pkt, off, 4);
      const original = buf.slice();
      const ns = u32(); const nd = u32(); const nsp = u16(); const ndp = u16();
      expect(natRewrite(buf, off, off + pkt.length, ns, nd, nsp, ndp, partial)).toBe(true);
      expect(tuple(buf, off)).toEqual(proto === IPPROTO_ICMP ? [ns, nd, nsp] : [ns, nd, nsp, ndp]);
      expectIpChecksum(buf, off);
      const field = readU16(buf, off + csumAt);
      if (partial) expect(field).toBe(fold(pseudoHeaderSum(ns, nd, proto, l4.length)));
      else if (kind === 2) expect(field).toBe(0);
      else expect(field).toBe(scratchL4(buf, off, proto));
      // And back: the very bytes we started with.
      expect(natRewrite(buf, off, off + pkt.length, src, dst, sp, proto === IPPROTO_ICMP ? 0 : dp, partial)).toBe(true);
      expect(buf).toEqual(original);
    }
  });
});

describe('ICMP errors', () => {
  const C_PORT = 40000;
  const NAT_PORT = 61000;

  /** The packet as it left the uplink (U:NAT_PORT -> S), and as the container sent it. */
  function innerPair(proto: number, udpChecksum = true): [Uint8Array, Uint8Array] {
    const data = payload(30, 4);
    const make = (src: number, sport: number): Uint8Array => {
      const l4 = proto === IPPROTO_TCP
        ? buildTcp({ src, dst: S, srcPort: sport, dstPort: 443, flags: TCP_SYN, seq: 77, payload: data })
        : proto === IPPROTO_UDP
          ? buildUdp({ src, dst: S, srcPort: sport, dstPort: 53, payload: data, checksum: udpChecksum })
          : buildIcmpEcho({ id: sport, seq: 3, payload: data });
      return buildIpv4({ src, dst: S, protocol: proto, payload: l4, ttl: 1, id: 4242, flags: IPV4_FLAG_DF });
    };
    return [make(U, NAT_PORT), make(C, C_PORT)];
  }

  /** An ICMP error from R to U quoting `quoteLen` bytes of `inner`, placed at `off`. */
  function errorPacket(inner: Uint8Array, quoteLen: number, type = ICMP_DEST_UNREACH, code = 3, off = 5): Uint8Array {
    const icmp = buildIcmp({ type, code, payload: inner.subarray(0, quoteLen) });
    return placeAt(buildIpv4({ src: R, dst: U, protocol: IPPROTO_ICMP, payload: icmp, ttl: 60 }), off, 3);
  }

  function check(proto: number, quoteLen: number, type: number, udpChecksum = true): void {
    const [sent, original] = innerPair(proto, udpChecksum);
    const buf = errorPacket(sent, quoteLen, type);
    const off = 5;
    const end = buf.length - 3;
    const q = { proto: 0, src: 0, dst: 0, sport: 0, dport: 0 };
    expect(icmpErrorInner(buf, off, end, q)).toBe(true);
    const port = proto === IPPROTO_TCP ? 443 : proto === IPPROTO_UDP ? 53 : NAT_PORT;
    expect(q).toEqual({ proto, src: U, dst: S, sport: NAT_PORT, dport: port });
    // Back along the connection: the error goes to C and quotes what C sent.
    const inDport = proto === IPPROTO_ICMP ? C_PORT : port;
    expect(natRewriteIcmpError(buf, off, end, C, C, S, C_PORT, inDport)).toBe(true);
    const outer = ipv4(buf, off);
    expect([outer.src, outer.dst]).toEqual([R, C]);
    expectIpChecksum(buf, off);
    const icmpLen = outer.payloadLength;
    expect(fold(onesSum(buf, off + 20, icmpLen))).toBe(0xffff); // ICMP checksum right
    expect(buf[off + 20]).toBe(type);
    // The quote is now exactly the first bytes of the container's own packet, checksums included.
    // (A TCP checksum field cut in half by the quote is left as it was.)
    const same = proto === IPPROTO_TCP && quoteLen === 37 ? 36 : quoteLen;
    expect(buf.slice(off + 28, off + 28 + same)).toEqual(original.slice(0, same));
    if (same !== quoteLen) expect(buf[off + 28 + 36]).toBe(sent[36]);
    expectIpChecksum(buf, off + 28);
  }

  it('translates an error quoting TCP: 8 bytes (no L4 checksum in the quote) and the whole segment', () => {
    check(IPPROTO_TCP, 28, ICMP_DEST_UNREACH);
    check(IPPROTO_TCP, 20 + 20 + 30, ICMP_TIME_EXCEEDED);
    check(IPPROTO_TCP, 20 + 17, ICMP_DEST_UNREACH); // checksum field half quoted: left alone
  });

  it('translates an error quoting UDP, with and without a checksum', () => {
    check(IPPROTO_UDP, 28, ICMP_DEST_UNREACH);
    check(IPPROTO_UDP, 20 + 8 + 30, ICMP_DEST_UNREACH);
    check(IPPROTO_UDP, 28, ICMP_TIME_EXCEEDED, false);
  });

  it('translates an error quoting an ICMP echo request', () => {
    check(IPPROTO_ICMP, 28, ICMP_TIME_EXCEEDED);
    check(IPPROTO_ICMP, 20 + 8 + 30, ICMP_TIME_EXCEEDED);
  });

  it('can rewrite the outer source too (an error reported by a DNAT target)', () => {
    const [sent] = innerPair(IPPROTO_UDP);
    const buf = errorPacket(sent, 28);
    expect(natRewriteIcmpError(buf, 5, buf.length - 3, C, C, S, C_PORT, 53, U)).toBe(true);
    expect([ipv4(buf, 5).src, ipv4(buf, 5).dst]).toEqual([U, C]);
    expectIpChecksum(buf, 5);
  });

  it('recognises the five error types and nothing else', () => {
    const [sent] = innerPair(IPPROTO_UDP);
    const q = { proto: 0, src: 0, dst: 0, sport: 0, dport: 0 };
    for (let type = 0; type < 20; type++) {
      const buf = errorPacket(sent, 28, type);
      expect([type, icmpErrorInner(buf, 5, buf.length - 3, q)]).toEqual([type, [3, 4, 5, 11, 12].includes(type)]);
    }
  });

  it('refuses what it cannot read, changing nothing', () => {
    const q = { proto: 0, src: 0, dst: 0, sport: 0, dport: 0 };
    const refuse = (buf: Uint8Array, end = buf.length - 3): void => {
      const before = buf.slice();
      expect(icmpErrorInner(buf, 5, end, q)).toBe(false);
      expect(natRewriteIcmpError(buf, 5, end, C, C, S, 1, 2)).toBe(false);
      expect(buf).toEqual(before);
    };
    const [sent] = innerPair(IPPROTO_TCP);
    refuse(errorPacket(sent, 27));                       // 7 bytes of L4 quoted
    refuse(errorPacket(sent, 19));                       // not even the quoted IP header
    const full = errorPacket(sent, 28);
    refuse(full, full.length - 4);                       // the buffer ends before the message
    const gre = buildIpv4({ src: U, dst: S, protocol: 47, payload: payload(8) });
    refuse(errorPacket(gre, 28));                        // quoted protocol not tracked
    const frag = buildIpv4({ src: U, dst: S, protocol: IPPROTO_UDP, fragOffset: 10, payload: payload(8) });
    refuse(errorPacket(frag, 28));                       // quoted non-first fragment: no ports
    const ts = buildIpv4({ src: U, dst: S, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: 13, code: 0, payload: payload(12) }) });
    refuse(errorPacket(ts, 28));                         // quoted ICMP that is not an echo
    const echo = buildIpv4({ src: R, dst: U, protocol: IPPROTO_ICMP, payload: buildIcmpEcho({ id: 1, seq: 1, payload: sent }) });
    refuse(placeAt(echo, 5, 3));                         // not an error
    const udp = buildIpv4({ src: R, dst: U, protocol: IPPROTO_UDP, payload: buildUdp({ src: R, dst: U, srcPort: 1, dstPort: 2, payload: sent }) });
    refuse(placeAt(udp, 5, 3));                          // not ICMP
  });
  it('says why it refuses: malformed (a quote cut short or broken) or untracked (nothing with ports)', () => {
    const q = { proto: 0, src: 0, dst: 0, sport: 0, dport: 0 };
    const why = (buf: Uint8Array, end = buf.length - 3): number => icmpErrorQuote(buf, 5, end, q);
    const [sent] = innerPair(IPPROTO_TCP);
    expect(why(errorPacket(sent, 28))).toBe(ICMP_QUOTE_OK);
    expect(q).toMatchObject({ proto: IPPROTO_TCP, src: U, dst: S });
    expect(why(errorPacket(sent, 27))).toBe(ICMP_QUOTE_MALFORMED);   // 7 bytes of L4 quoted
    expect(why(errorPacket(sent, 19))).toBe(ICMP_QUOTE_MALFORMED);   // not even the quoted IP header
    const v6 = sent.slice(0, 28); v6[0] = 0x65;
    expect(why(errorPacket(v6, 28))).toBe(ICMP_QUOTE_MALFORMED);     // quoted version 6
    const ihl4 = sent.slice(0, 28); ihl4[0] = 0x44;
    expect(why(errorPacket(ihl4, 28))).toBe(ICMP_QUOTE_MALFORMED);   // quoted ihl below 5
    const gre = buildIpv4({ src: U, dst: S, protocol: 47, payload: payload(8) });
    expect(why(errorPacket(gre, 28))).toBe(ICMP_QUOTE_UNTRACKED);    // quoted protocol not tracked
    const frag = buildIpv4({ src: U, dst: S, protocol: IPPROTO_UDP, fragOffset: 10, payload: payload(8) });
    expect(why(errorPacket(frag, 28))).toBe(ICMP_QUOTE_UNTRACKED);   // quoted non-first fragment
    const ts = buildIpv4({ src: U, dst: S, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: 13, code: 0, payload: payload(12) }) });
    expect(why(errorPacket(ts, 28))).toBe(ICMP_QUOTE_UNTRACKED);     // quoted ICMP that is not an echo
    const echo = buildIpv4({ src: R, dst: U, protocol: IPPROTO_ICMP, payload: buildIcmpEcho({ id: 1, seq: 1, payload: sent }) });
    expect(why(placeAt(echo, 5, 3))).toBe(ICMP_QUOTE_UNTRACKED);     // not an error
    const short = buildIpv4({ src: R, dst: U, protocol: IPPROTO_ICMP, payload: Uint8Array.of(3, 3, 0, 0) });
    expect(why(placeAt(short, 5, 3))).toBe(ICMP_QUOTE_MALFORMED);    // the ICMP header itself cut short
  });
});

describe('decTtl', () => {
  it('decrements the TTL with a checksum equal to a recomputation', () => {
    const r = rng(7);
    for (let n = 0; n < 2000; n++) {
      const ttl = 2 + Math.floor(r() * 254);
      const opts = n % 3 === 0 ? Uint8Array.of(1, 1, 1, 0) : undefined;
      const pkt = buildIpv4({ src: Math.floor(r() * 2 ** 32) >>> 0, dst: Math.floor(r() * 2 ** 32) >>> 0,
        protocol: Math.floor(r() * 256), ttl, id: Math.floor(r() * 65536), options: opts, payload: payload(3, n) });
      const buf = placeAt(pkt, n % 7);
      expect(decTtl(buf, n % 7)).toBe(ttl - 1);
      expect(buf[n % 7 + 8]).toBe(ttl - 1);
      expectIpChecksum(buf, n % 7);
    }
  });

  it('leaves a TTL of 1 or 0 alone and returns 0 (the caller sends time exceeded)', () => {
    for (const ttl of [0, 1]) {
      const pkt = buildIpv4({ src: C, dst: S, protocol: IPPROTO_UDP, ttl, payload: payload(8) });
      const before = pkt.slice();
      expect(decTtl(pkt, 0)).toBe(0);
      expect(pkt).toEqual(before);
    }
    const two = buildIpv4({ src: C, dst: S, protocol: IPPROTO_UDP, ttl: 2 });
    expect(decTtl(two, 0)).toBe(1);
    expect(decTtl(two, 0)).toBe(0);
    expect(two[8]).toBe(1);
  });
});
