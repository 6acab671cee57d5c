import { describe, it, expect } from 'vitest';
import {
  VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_TCPV6,
  VNET_GSO_UDP, VNET_HDR_LEN, VnetHdrView, vnetShift, writeEmptyVnetHdr, writeVnetHdr,
} from '../../../dataplane/wire';
import { hex, placeAt } from '../../fixtures/frames';

describe('virtio_net_hdr', () => {
  it('has the Linux constant values', () => {
    expect([VNET_HDR_LEN, VNET_F_NEEDS_CSUM, VNET_F_DATA_VALID]).toEqual([10, 1, 2]);
    expect([VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP, VNET_GSO_TCPV6, VNET_GSO_ECN]).toEqual([0, 1, 3, 4, 0x80]);
  });

  it('reads little-endian fields at an offset', () => {
    // NEEDS_CSUM, GSO TCPv4|ECN, hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16
    const buf = placeAt(hex('01 81 4200 a805 2200 1000'), 5);
    const v = new VnetHdrView();
    expect(v.reset(buf, 5, 10)).toBe(true);
    expect(v.flags).toBe(1);
    expect(v.needsCsum).toBe(true);
    expect(v.gsoType).toBe(0x81);
    expect(v.gsoKind).toBe(VNET_GSO_TCPV4);
    expect(v.hdrLen).toBe(66);
    expect(v.gsoSize).toBe(1448);
    expect(v.csumStart).toBe(34);
    expect(v.csumOffset).toBe(16);
    expect(v.frameOffset).toBe(15);
  });

  it('rejects every length below 10', () => {
    const v = new VnetHdrView();
    const buf = new Uint8Array(32);
    for (let len = 0; len < VNET_HDR_LEN; len++) expect(v.reset(buf, 3, len), `len ${len}`).toBe(false);
    expect(v.reset(buf, 3, VNET_HDR_LEN)).toBe(true);
  });

  it('setters write little-endian bytes and nothing else', () => {
    const buf = new Uint8Array(16).fill(0xee);
    const v = new VnetHdrView();
    v.reset(buf, 3, 10);
    v.setFlags(VNET_F_NEEDS_CSUM);
    v.setGsoType(VNET_GSO_UDP);
    v.setHdrLen(0x1234);
    v.setGsoSize(1400);
    v.setCsumStart(38);
    v.setCsumOffset(6);
    expect(Array.from(buf)).toEqual([0xee, 0xee, 0xee, 1, 3, 0x34, 0x12, 0x78, 0x05, 38, 0, 6, 0, 0xee, 0xee, 0xee]);
  });

  it('writeVnetHdr / writeEmptyVnetHdr', () => {
    const buf = new Uint8Array(14).fill(0xee);
    writeVnetHdr(buf, 2, { flags: 2, csumStart: 0x0102 });
    expect(Array.from(buf)).toEqual([0xee, 0xee, 2, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0xee, 0xee]);
    writeEmptyVnetHdr(buf, 2);
    expect(Array.from(buf)).toEqual([0xee, 0xee, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xee, 0xee]);
  });

  it('vnetShift moves csum_start only with NEEDS_CSUM, hdr_len only when nonzero', () => {
    const v = new VnetHdrView();
    const buf = new Uint8Array(12);
    v.reset(buf, 1, 10);
    writeVnetHdr(buf, 1, { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 66, csumStart: 34, csumOffset: 16 });
    vnetShift(buf, 1, 4);
    expect([v.csumStart, v.hdrLen, v.csumOffset]).toEqual([38, 70, 16]);
    vnetShift(buf, 1, -4);
    expect([v.csumStart, v.hdrLen, v.csumOffset]).toEqual([34, 66, 16]);

    writeVnetHdr(buf, 1, { flags: VNET_F_DATA_VALID, csumStart: 34, csumOffset: 16 });
    vnetShift(buf, 1, 4);
    expect([v.csumStart, v.hdrLen, v.csumOffset]).toEqual([34, 0, 16]);
  });
});
