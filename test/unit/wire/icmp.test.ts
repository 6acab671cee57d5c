import { describe, it, expect } from 'vitest';
import {
  ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_HDR_LEN, ICMP_TIME_EXCEEDED, IcmpView,
  Ipv4View, buildIcmp, buildIcmpEcho, csumUpdate16,
} from '../../../dataplane/wire';
import { CAPTURED_ICMP_ECHO_REPLY, CAPTURED_ICMP_ECHO_REQUEST, hex, icmpEcho, placeAt } from '../../fixtures/frames';

const FIXTURE_PAYLOAD = new TextEncoder().encode('vsw-wire-fixture');

describe('icmp', () => {
  it('has the type numbers', () => {
    expect([ICMP_ECHO_REPLY, ICMP_DEST_UNREACH, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED]).toEqual([0, 3, 8, 11]);
  });

  it('parses the captured kernel echo reply at a nonzero offset', () => {
    const frame = hex(CAPTURED_ICMP_ECHO_REPLY);
    const buf = placeAt(frame, 250);
    const ip = new Ipv4View();
    expect(ip.reset(buf, 264, frame.length - 14) && ip.check()).toBe(true);
    const c = new IcmpView();
    expect(c.reset(buf, ip.payloadOffset, ip.payloadLength)).toBe(true);
    expect(c.type).toBe(ICMP_ECHO_REPLY);
    expect(c.code).toBe(0);
    expect(c.checksum).toBe(0x98a1);
    expect(c.id).toBe(0x1234);
    expect(c.seq).toBe(1);
    expect(c.restOfHeader).toBe(0x12340001);
    expect(c.payloadOffset).toBe(250 + 14 + 20 + 8);
    expect(c.payloadLength).toBe(16);
    expect(c.checksumOffset).toBe(250 + 14 + 20 + 2);
    expect(buf.subarray(c.payloadOffset, c.payloadOffset + 16)).toEqual(FIXTURE_PAYLOAD);
    expect(c.verifyChecksum()).toBe(true);
  });

  it('builds byte-identical copies of the captured ICMP messages', () => {
    const req = hex(CAPTURED_ICMP_ECHO_REQUEST).subarray(34);
    const rep = hex(CAPTURED_ICMP_ECHO_REPLY).subarray(34);
    expect(buildIcmpEcho({ id: 0x1234, seq: 1, payload: FIXTURE_PAYLOAD })).toEqual(req);
    expect(buildIcmpEcho({ type: ICMP_ECHO_REPLY, id: 0x1234, seq: 1, payload: FIXTURE_PAYLOAD })).toEqual(rep);
  });

  it('turns a request into a reply in place (incremental == full)', () => {
    const buf = placeAt(hex(CAPTURED_ICMP_ECHO_REQUEST), 7);
    const c = new IcmpView();
    c.reset(buf, 7 + 34, 24);
    expect(c.type).toBe(ICMP_ECHO_REQUEST);
    c.setChecksum(csumUpdate16(c.checksum, ICMP_ECHO_REQUEST << 8, ICMP_ECHO_REPLY << 8));
    c.setType(ICMP_ECHO_REPLY);
    expect(c.checksum).toBe(0x98a1);
    expect(c.verifyChecksum()).toBe(true);
  });

  it('rejects every length below 8', () => {
    const c = new IcmpView();
    const buf = new Uint8Array(20);
    for (let len = 0; len < ICMP_HDR_LEN; len++) expect(c.reset(buf, 4, len), `len ${len}`).toBe(false);
    expect(c.reset(buf, 4, ICMP_HDR_LEN)).toBe(true);
  });

  it('checksums odd lengths; detects corruption; fillChecksum repairs', () => {
    const m = buildIcmpEcho({ id: 5, seq: 1, payload: hex('010203') });
    expect(m.length).toBe(11);
    const buf = placeAt(m, 3);
    const c = new IcmpView();
    c.reset(buf, 3, 11);
    expect(c.verifyChecksum()).toBe(true);
    buf[3 + 10] ^= 0x80;
    expect(c.verifyChecksum()).toBe(false);
    c.fillChecksum();
    expect(c.verifyChecksum()).toBe(true);
    expect(buf[3 + 11]).toBe(0xee);
  });

  it('setters write the fields; buildIcmp for other types', () => {
    const buf = new Uint8Array(10).fill(0xee);
    const c = new IcmpView();
    c.reset(buf, 1, 8);
    c.setType(3);
    c.setCode(4);
    c.setChecksum(0x1122);
    c.setId(0x3344);
    c.setSeq(0x5566);
    expect(buf).toEqual(hex('ee 03 04 1122 3344 5566 ee'));
    const u = buildIcmp({ type: ICMP_DEST_UNREACH, code: 4, rest: 1400, payload: new Uint8Array(28) });
    c.reset(u, 0, u.length);
    expect([c.type, c.code, c.restOfHeader, c.verifyChecksum()]).toEqual([3, 4, 1400, true]);
  });

  it('fixture echo frame is valid', () => {
    const f = icmpEcho({ srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03', srcIp: '10.0.0.2', dstIp: '10.0.0.3', id: 5, seq: 1 });
    const c = new IcmpView();
    c.reset(f, 34, f.length - 34);
    expect([c.type, c.id, c.seq, c.verifyChecksum()]).toEqual([8, 5, 1, true]);
  });
});
