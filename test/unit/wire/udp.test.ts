import { describe, it, expect } from 'vitest';
import {
  IPPROTO_UDP, Ipv4View, UDP_HDR_LEN, UdpView, buildIpv4, buildUdp, fold, onesSum, pseudoHeaderSum,
} from '../../../dataplane/wire';
import { hex, placeAt, udpFrame } from '../../fixtures/frames';

const HELLO = new TextEncoder().encode('hello');

function parse(frame: Uint8Array, off: number) {
  const buf = placeAt(frame, off);
  const ip = new Ipv4View();
  if (!ip.reset(buf, off + 14, frame.length - 14) || !ip.check()) throw new Error('bad ip');
  const u = new UdpView();
  const ok = u.reset(buf, ip.payloadOffset, ip.payloadLength);
  return { buf, ip, u, ok };
}

describe('udp', () => {
  it('builds the known datagram (checksum 0xfefd)', () => {
    const d = buildUdp({ src: '10.0.0.2', dst: '10.0.0.3', srcPort: 43210, dstPort: 53, payload: HELLO });
    expect(d).toEqual(hex('a8ca 0035 000d fefd 68656c6c6f'));
  });

  it('round-trips a frame at a nonzero offset', () => {
    const f = udpFrame({
      srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03', srcIp: '10.0.0.2', dstIp: '10.0.0.3',
      srcPort: 43210, dstPort: 53, payload: HELLO,
    });
    const { buf, ip, u, ok } = parse(f, 99);
    expect(ok).toBe(true);
    expect(u.check()).toBe(true);
    expect(u.srcPort).toBe(43210);
    expect(u.dstPort).toBe(53);
    expect(u.length).toBe(13);
    expect(u.checksum).toBe(0xfefd);
    expect(u.payloadOffset).toBe(99 + 14 + 20 + 8);
    expect(u.payloadLength).toBe(5);
    expect(u.checksumOffset).toBe(99 + 14 + 20 + 6);
    expect(new TextDecoder().decode(buf.subarray(u.payloadOffset, u.payloadOffset + 5))).toBe('hello');
    expect(u.verifyChecksum(ip.off)).toBe(true);
    buf[u.payloadOffset + 4] ^= 0x20;
    expect(u.verifyChecksum(ip.off)).toBe(false);
    u.fillChecksum(ip.off);
    expect(u.verifyChecksum(ip.off)).toBe(true);
    expect(u.checksum).not.toBe(0xfefd);
  });

  it('rejects every length below 8, and bad length fields', () => {
    const u = new UdpView();
    const buf = placeAt(buildUdp({ src: 1, dst: 2, srcPort: 1, dstPort: 2, payload: HELLO }), 6);
    for (let len = 0; len < UDP_HDR_LEN; len++) {
      expect(u.reset(buf, 6, len), `len ${len}`).toBe(false);
      expect(u.check(), `len ${len}`).toBe(false);
    }
    expect(u.reset(buf, 6, 13)).toBe(true);
    expect(u.check()).toBe(true);
    expect(u.reset(buf, 6, 12)).toBe(true);
    expect(u.check()).toBe(false); // length 13 > 12 bytes
    u.reset(buf, 6, 13);
    u.setLength(7);
    expect(u.check()).toBe(false); // length < 8
    u.setLength(8);
    expect(u.check()).toBe(true);
    expect(u.payloadLength).toBe(0);
  });

  it('a zero checksum means none; builder can omit it', () => {
    const d = buildUdp({ src: '10.0.0.2', dst: '10.0.0.3', srcPort: 1, dstPort: 2, payload: HELLO, checksum: false });
    expect(d[6] | d[7]).toBe(0);
    const p = buildIpv4({ src: '10.0.0.2', dst: '10.0.0.3', protocol: IPPROTO_UDP, payload: d });
    const u = new UdpView();
    u.reset(p, 20, d.length);
    expect(u.verifyChecksum(0)).toBe(true);
  });

  it('sends a computed zero checksum as 0xffff', () => {
    // Pick the 2 payload bytes so the sum folds to 0xffff: the complement would be 0.
    const ph = pseudoHeaderSum(0x0a000002, 0x0a000003, IPPROTO_UDP, 10);
    const probe = buildUdp({ src: '10.0.0.2', dst: '10.0.0.3', srcPort: 1000, dstPort: 2000, payload: new Uint8Array(2), checksum: false });
    const w = 0xffff - fold(onesSum(probe, 0, 10, ph));
    const d = buildUdp({ src: '10.0.0.2', dst: '10.0.0.3', srcPort: 1000, dstPort: 2000, payload: Uint8Array.of(w >>> 8, w & 0xff) });
    expect(d[6]).toBe(0xff);
    expect(d[7]).toBe(0xff);
    const p = buildIpv4({ src: '10.0.0.2', dst: '10.0.0.3', protocol: IPPROTO_UDP, payload: d });
    const u = new UdpView();
    u.reset(p, 20, 10);
    expect(u.verifyChecksum(0)).toBe(true);
    u.setChecksum(0x1234);
    u.fillChecksum(0);
    expect(u.checksum).toBe(0xffff);
  });

  it('setters write the fields', () => {
    const buf = new Uint8Array(12).fill(0xee);
    const u = new UdpView();
    u.reset(buf, 2, 8);
    u.setSrcPort(0x1234);
    u.setDstPort(0xfffe);
    u.setLength(8);
    u.setChecksum(0xabcd);
    expect(buf).toEqual(hex('eeee 1234 fffe 0008 abcd eeee'));
  });
});
