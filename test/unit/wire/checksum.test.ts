import { describe, it, expect } from 'vitest';
import {
  IPPROTO_TCP, Ipv4View, TCP_ACK, TCP_PSH, TcpView, UdpView, VnetHdrView, csumUpdate16, csumUpdate32,
  finishPartialChecksum, fold, internetChecksum, l4Checksum, onesSum, partialUpdate16, partialUpdate32,
  pseudoHeaderSum, readU16, readU32, writeU16, writeU32, VNET_F_NEEDS_CSUM,
} from '../../../dataplane/wire';
import {
  CAPTURED_ICMP_ECHO_REPLY, CAPTURED_ICMP_ECHO_REQUEST, hex, placeAt, rng, tcpFrame, udpFrame, withVnet,
} from '../../fixtures/frames';

const ETH = 14;

describe('onesSum / fold / internetChecksum', () => {
  it('matches the RFC 1071 section 3 example', () => {
    const data = hex('00 01 f2 03 f4 f5 f6 f7');
    expect(onesSum(data, 0, 8)).toBe(0x2ddf0);
    expect(fold(onesSum(data, 0, 8))).toBe(0xddf2);
    expect(internetChecksum(data, 0, 8)).toBe(0x220d);
    // Same bytes inside a larger buffer at an odd offset.
    const buf = placeAt(data, 13);
    expect(internetChecksum(buf, 13, 8)).toBe(0x220d);
  });

  it('pads an odd trailing byte with zero on the right', () => {
    expect(onesSum(hex('01'), 0, 1)).toBe(0x0100);
    expect(onesSum(hex('00 01 f2'), 0, 3)).toBe(0x0001 + 0xf200);
    expect(onesSum(hex('ab cd ef 99'), 1, 3)).toBe(0xcdef + 0x9900);
    expect(onesSum(hex('ff ff'), 0, 0)).toBe(0);
    expect(onesSum(hex('12 34'), 0, 2, 0x10000)).toBe(0x11234);
  });

  it('folds sums far beyond 32 bits', () => {
    expect(fold(0x1fffe)).toBe(0xffff);
    expect(fold(0xffffffff)).toBe(0xffff);
    expect(fold(2 ** 40)).toBe(0x0100); // 2^40 = 2^8 mod 0xffff
    expect(fold(0x12345678)).toBe(0x5678 + 0x1234);
    expect(fold(0)).toBe(0);
  });

  it('gives the known IPv4 header checksum 0xb861', () => {
    const hdr = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
    expect(internetChecksum(hdr, 0, 20)).toBe(0xb861);
    writeU16(hdr, 10, 0xb861);
    expect(internetChecksum(hdr, 0, 20)).toBe(0);
  });

  it('agrees with checksums the Linux kernel computed (captured ICMP echo)', () => {
    for (const [text, ipCsum, icmpCsum] of [
      [CAPTURED_ICMP_ECHO_REQUEST, 0xc3ac, 0x90a1],
      [CAPTURED_ICMP_ECHO_REPLY, 0x03ac, 0x98a1],
    ] as const) {
      const frame = placeAt(hex(text), 101);
      const ip = 101 + ETH;
      expect(internetChecksum(frame, ip, 20)).toBe(0);
      expect(internetChecksum(frame, ip + 20, 24)).toBe(0);
      expect(readU16(frame, ip + 10)).toBe(ipCsum);
      expect(readU16(frame, ip + 22)).toBe(icmpCsum);
      writeU16(frame, ip + 10, 0);
      writeU16(frame, ip + 22, 0);
      expect(internetChecksum(frame, ip, 20)).toBe(ipCsum);
      expect(internetChecksum(frame, ip + 20, 24)).toBe(icmpCsum);
    }
    // Request -> reply changes the type word 0x0800 -> 0x0000: the incremental update gives
    // exactly the kernel's reply checksum.
    expect(csumUpdate16(0x90a1, 0x0800, 0x0000)).toBe(0x98a1);
  });
});

describe('incremental update (RFC 1624)', () => {
  it('csumUpdate16 equals recomputation for random words in random data', () => {
    const r = rng(1);
    const data = new Uint8Array(64);
    for (let iter = 0; iter < 3000; iter++) {
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
      const before = internetChecksum(data, 0, data.length);
      const at = 2 * Math.floor(r() * 32);
      const old16 = readU16(data, at);
      // Include the edge values 0x0000 and 0xffff often.
      const pick = r();
      const new16 = pick < 0.1 ? 0 : pick < 0.2 ? 0xffff : Math.floor(r() * 0x10000);
      writeU16(data, at, new16);
      expect(csumUpdate16(before, old16, new16)).toBe(internetChecksum(data, 0, data.length));
    }
  });

  it('NAT rewrites of addresses and ports: incremental equals full, UDP and TCP', () => {
    const r = rng(2);
    const ip = new Ipv4View();
    const udp = new UdpView();
    const tcp = new TcpView();
    const off = 38;
    for (let iter = 0; iter < 2000; iter++) {
      const isTcp = iter % 2 === 1;
      const o = {
        srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03',
        srcIp: Math.floor(r() * 2 ** 32), dstIp: Math.floor(r() * 2 ** 32),
        srcPort: Math.floor(r() * 65536), dstPort: Math.floor(r() * 65536), ipId: iter,
        payload: Uint8Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256)),
      };
      const f = isTcp ? tcpFrame({ ...o, flags: TCP_PSH | TCP_ACK, seq: iter * 7919 }) : udpFrame(o);
      const buf = placeAt(f, off);
      expect(ip.reset(buf, off + ETH, f.length - ETH) && ip.check()).toBe(true);
      const l4 = ip.payloadOffset;
      const l4Len = ip.payloadLength;
      const view = isTcp ? tcp : udp;
      view.reset(buf, l4, l4Len);
      const csumAt = view.checksumOffset;

      const newSrc = Math.floor(r() * 2 ** 32);
      const newDst = Math.floor(r() * 2 ** 32);
      const newSport = Math.floor(r() * 65536);
      const newDport = Math.floor(r() * 65536);

      let ipc = ip.checksum;
      let l4c = readU16(buf, csumAt);
      ipc = csumUpdate32(ipc, ip.src, newSrc);
      ipc = csumUpdate32(ipc, ip.dst, newDst);
      l4c = csumUpdate32(l4c, ip.src, newSrc);
      l4c = csumUpdate32(l4c, ip.dst, newDst);
      l4c = csumUpdate16(l4c, view.srcPort, newSport);
      l4c = csumUpdate16(l4c, view.dstPort, newDport);
      ip.setSrc(newSrc);
      ip.setDst(newDst);
      view.setSrcPort(newSport);
      view.setDstPort(newDport);

      expect(ipc).toBe(ip.computeChecksum());
      ip.setChecksum(ipc);
      expect(ip.verifyChecksum()).toBe(true);
      writeU16(buf, csumAt, 0);
      const full = l4Checksum(buf, ip.off, l4, l4Len);
      // UDP stores a computed 0 as 0xffff; both are the same one's-complement value.
      expect(l4c === full || (!isTcp && full === 0 && l4c === 0xffff)).toBe(true);
      writeU16(buf, csumAt, l4c);
      expect(l4Checksum(buf, ip.off, l4, l4Len)).toBe(0);
    }
  });
});

describe('CHECKSUM_PARTIAL (virtio-net NEEDS_CSUM)', () => {
  /** A TCP frame whose checksum field holds only the pseudo-header sum, as a guest sends it. */
  function partialTcpFrame(payloadLen: number) {
    const f = tcpFrame({
      srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03', srcIp: '10.0.0.2', dstIp: '10.0.0.3',
      srcPort: 43210, dstPort: 80, flags: TCP_PSH | TCP_ACK, seq: 1, ack: 2,
      payload: Uint8Array.from({ length: payloadLen }, (_, i) => (i * 31 + 7) & 0xff),
    });
    const good = readU16(f, ETH + 20 + 16);
    const l4Len = f.length - ETH - 20;
    writeU16(f, ETH + 20 + 16, fold(pseudoHeaderSum(0x0a000002, 0x0a000003, IPPROTO_TCP, l4Len)));
    return { f, good };
  }

  it('finishes the checksum of a vnet frame inside a big buffer, odd and even lengths', () => {
    for (const payloadLen of [0, 1, 2, 17, 1000]) {
      const { f, good } = partialTcpFrame(payloadLen);
      const v = withVnet(f, { flags: VNET_F_NEEDS_CSUM, csumStart: 34, csumOffset: 16 });
      const slot = 4096;
      const buf = placeAt(v, slot);
      const hdr = new VnetHdrView();
      hdr.reset(buf, slot, v.length);
      const frameOff = hdr.frameOffset;
      expect(readU16(buf, frameOff + 34 + 16)).not.toBe(good);
      expect(finishPartialChecksum(buf, frameOff, hdr.csumStart, hdr.csumOffset, v.length - 10)).toBe(true);
      expect(readU16(buf, frameOff + 34 + 16)).toBe(good);
      // The rest of the buffer is untouched.
      expect(buf[slot - 1]).toBe(0xee);
      expect(buf[slot + v.length]).toBe(0xee);
    }
  });

  it('a partial sum updated for NAT finishes to the right checksum', () => {
    const { f } = partialTcpFrame(33);
    const ipOff = ETH;
    const csumAt = ETH + 20 + 16;
    const newSrc = 0xc0a80101;
    const oldSrc = readU32(f, ipOff + 12);
    writeU16(f, csumAt, partialUpdate32(readU16(f, csumAt), oldSrc, newSrc));
    writeU32(f, ipOff + 12, newSrc);
    // Ports are not in the pseudo-header: the final sum covers them, the partial sum must not change.
    writeU16(f, ETH + 20, 1024);
    expect(finishPartialChecksum(f, 0, ETH + 20, 16, f.length)).toBe(true);
    expect(l4Checksum(f, ipOff, ETH + 20, f.length - ETH - 20)).toBe(0);
  });

  it('partialUpdate16 tracks a pseudo-header length change', () => {
    const before = fold(pseudoHeaderSum(0x0a000002, 0x0a000003, IPPROTO_TCP, 1480));
    const after = fold(pseudoHeaderSum(0x0a000002, 0x0a000003, IPPROTO_TCP, 40));
    expect(partialUpdate16(before, 1480, 40)).toBe(after);
    expect(partialUpdate32(before, 0x0a000002, 0x0a000002)).toBe(before);
  });

  it('stores a zero result as 0xffff', () => {
    const buf = hex('ee 00 00 ff ff ee');
    expect(finishPartialChecksum(buf, 1, 0, 0, 4)).toBe(true);
    expect(Array.from(buf)).toEqual([0xee, 0xff, 0xff, 0xff, 0xff, 0xee]);
  });

  it('refuses offsets outside the frame and writes nothing', () => {
    const buf = new Uint8Array(64).fill(0xaa);
    const copy = buf.slice();
    expect(finishPartialChecksum(buf, 0, 34, 16, 50)).toBe(false); // field would end at 52
    expect(finishPartialChecksum(buf, 0, 34, 16, 52)).toBe(true);
    buf.set(copy);
    expect(finishPartialChecksum(buf, 20, 0, 0, 60)).toBe(false); // past the buffer
    expect(finishPartialChecksum(buf, 0, -2, 0, 10)).toBe(false);
    expect(buf).toEqual(copy);
  });
});
