import { describe, it, expect } from 'vitest';
import {
  IPPROTO_TCP, TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_MIN_HDR_LEN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG,
  Ipv4View, TcpView, buildIpv4, buildTcp, tcpFlagsToString,
} from '../../../dataplane/wire';
import { hex, placeAt, tcpFrame, tcpSyn } from '../../fixtures/frames';

const MSS = hex('020405b4');

describe('tcp', () => {
  it('builds the known SYN with MSS option (checksum 0xc277)', () => {
    const s = buildTcp({
      src: '10.0.0.2', dst: '10.0.0.3', srcPort: 43210, dstPort: 80, seq: 0xdeadbeef, ack: 0x80000001,
      flags: TCP_SYN, window: 64240, options: MSS,
    });
    expect(s).toEqual(hex('a8ca 0050 deadbeef 80000001 6002 faf0 c277 0000 020405b4'));
  });

  it('round-trips a frame at a nonzero offset', () => {
    const f = tcpFrame({
      srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03', srcIp: '10.0.0.2', dstIp: '10.0.0.3',
      srcPort: 43210, dstPort: 80, flags: TCP_PSH | TCP_ACK, seq: 0xfffffff0, ack: 0x90000000, window: 512,
      payload: hex('474554202f'),
    });
    const buf = placeAt(f, 123);
    const ip = new Ipv4View();
    expect(ip.reset(buf, 137, f.length - 14) && ip.check()).toBe(true);
    expect(ip.protocol).toBe(IPPROTO_TCP);
    const t = new TcpView();
    expect(t.reset(buf, ip.payloadOffset, ip.payloadLength)).toBe(true);
    expect(t.check()).toBe(true);
    expect(t.srcPort).toBe(43210);
    expect(t.dstPort).toBe(80);
    expect(t.seq).toBe(0xfffffff0);
    expect(t.ack).toBe(0x90000000);
    expect(t.dataOffset).toBe(5);
    expect(t.headerLength).toBe(20);
    expect(t.flags).toBe(TCP_PSH | TCP_ACK);
    expect(t.window).toBe(512);
    expect(t.urgentPointer).toBe(0);
    expect(t.payloadOffset).toBe(123 + 14 + 20 + 20);
    expect(t.payloadLength).toBe(5);
    expect(t.checksumOffset).toBe(123 + 14 + 20 + 16);
    expect(buf[t.payloadOffset]).toBe(0x47);
    expect(t.verifyChecksum(ip.off)).toBe(true);
    t.setSeq(1);
    expect(t.verifyChecksum(ip.off)).toBe(false);
    t.fillChecksum(ip.off);
    expect(t.verifyChecksum(ip.off)).toBe(true);
  });

  it('parses options and the payload after them', () => {
    const seg = buildTcp({ src: 1, dst: 2, srcPort: 1, dstPort: 2, flags: TCP_SYN, options: MSS, payload: hex('99') });
    const buf = placeAt(buildIpv4({ src: 1, dst: 2, protocol: IPPROTO_TCP, payload: seg }), 8);
    const t = new TcpView();
    t.reset(buf, 28, seg.length);
    expect(t.check()).toBe(true);
    expect([t.dataOffset, t.headerLength, t.payloadLength]).toEqual([6, 24, 1]);
    expect(buf[t.payloadOffset]).toBe(0x99);
    expect(t.verifyChecksum(8)).toBe(true);
    expect(() => buildTcp({ src: 1, dst: 2, srcPort: 1, dstPort: 2, flags: 0, options: hex('01') })).toThrow(RangeError);
  });

  it('rejects every length below 20, and bad data offsets', () => {
    const seg = buildTcp({ src: 1, dst: 2, srcPort: 1, dstPort: 2, flags: TCP_SYN });
    const buf = placeAt(seg, 3);
    const t = new TcpView();
    for (let len = 0; len < TCP_MIN_HDR_LEN; len++) {
      expect(t.reset(buf, 3, len), `len ${len}`).toBe(false);
      expect(t.check(), `len ${len}`).toBe(false);
    }
    expect(t.reset(buf, 3, 20)).toBe(true);
    expect(t.check()).toBe(true);
    for (const [dataOff, ok] of [[0, false], [4, false], [5, true], [6, false], [15, false]] as const) {
      buf[3 + 12] = dataOff << 4;
      expect(t.check(), `data offset ${dataOff}`).toBe(ok);
    }
  });

  it('prints flags in tcpdump order', () => {
    expect(tcpFlagsToString(TCP_SYN)).toBe('S');
    expect(tcpFlagsToString(TCP_SYN | TCP_ACK)).toBe('S.');
    expect(tcpFlagsToString(TCP_FIN | TCP_ACK)).toBe('F.');
    expect(tcpFlagsToString(TCP_PSH | TCP_ACK)).toBe('P.');
    expect(tcpFlagsToString(TCP_RST)).toBe('R');
    expect(tcpFlagsToString(TCP_ACK)).toBe('.');
    expect(tcpFlagsToString(0)).toBe('none');
    expect(tcpFlagsToString(TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | TCP_URG | TCP_ECE | TCP_CWR)).toBe('FSRP.UEW');
  });

  it('setters write the fields', () => {
    const buf = new Uint8Array(24).fill(0xee);
    const t = new TcpView();
    t.reset(buf, 2, 20);
    t.setSrcPort(1);
    t.setDstPort(0xffff);
    t.setSeq(0x01020304);
    t.setAck(0xf0e0d0c0);
    t.setFlags(0x12);
    t.setWindow(0x4000);
    t.setChecksum(0xbeef);
    expect(buf.subarray(0, 20)).toEqual(hex('eeee 0001 ffff 01020304 f0e0d0c0 ee12 4000 beef'));
  });

  it('fixture SYN is a valid SYN', () => {
    const f = tcpSyn({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.0.2', dstIp: '10.0.0.3', srcPort: 5, dstPort: 6, seq: 42 });
    const t = new TcpView();
    t.reset(f, 34, f.length - 34);
    expect([t.flags, t.seq, t.ack, t.payloadLength]).toEqual([TCP_SYN, 42, 0, 0]);
    expect(t.verifyChecksum(14)).toBe(true);
  });
});
