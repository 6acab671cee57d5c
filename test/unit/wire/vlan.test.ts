import { describe, it, expect } from 'vitest';
import {
  ETHERTYPE_IPV4, ETHERTYPE_QINQ, ETHERTYPE_VLAN, VLAN_HDR_LEN, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4, VlanView, VnetHdrView, makeTci, popTag, pushTag, tciDei, tciPcp, tciVid,
} from '../../../dataplane/wire';
import { hex, placeAt, tagged, tcpSyn, withVnet } from '../../fixtures/frames';

const SYN = tcpSyn({
  srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03', srcIp: '10.0.0.2', dstIp: '10.0.0.3',
  srcPort: 43210, dstPort: 80,
});

describe('TCI', () => {
  it('packs pcp | dei | vid', () => {
    expect(makeTci(100, 5, 1)).toBe(0xb064);
    expect(makeTci(4095, 7, 1)).toBe(0xffff);
    expect(makeTci(10)).toBe(0x000a);
    expect([tciPcp(0xb064), tciDei(0xb064), tciVid(0xb064)]).toEqual([5, 1, 100]);
  });

  it('round-trips every vid x pcp x dei', () => {
    for (let vid = 0; vid <= 4095; vid++) {
      for (let pcp = 0; pcp < 8; pcp++) {
        for (let dei = 0; dei < 2; dei++) {
          const t = makeTci(vid, pcp, dei);
          if (tciVid(t) !== vid || tciPcp(t) !== pcp || tciDei(t) !== dei || t > 0xffff) {
            throw new Error(`tci ${t} for ${vid}/${pcp}/${dei}`);
          }
        }
      }
    }
  });
});

describe('VlanView', () => {
  it('parses a tagged frame at a nonzero offset', () => {
    const f = tagged(SYN, 1234, 6, 1);
    const buf = placeAt(f, 21);
    const v = new VlanView();
    expect(v.reset(buf, 21, f.length)).toBe(true);
    expect(v.tpid).toBe(ETHERTYPE_VLAN);
    expect(v.tci).toBe(0xd4d2);
    expect([v.pcp, v.dei, v.vid]).toEqual([6, 1, 1234]);
    expect(v.innerEtherType).toBe(ETHERTYPE_IPV4);
    expect(v.payloadOffset).toBe(21 + 18);
    expect(v.payloadLength).toBe(SYN.length - 14);
    expect(buf[v.payloadOffset]).toBe(0x45);
  });

  it('rejects every length below 18', () => {
    const v = new VlanView();
    const buf = new Uint8Array(40);
    for (let len = 0; len < VLAN_HDR_LEN; len++) expect(v.reset(buf, 2, len), `len ${len}`).toBe(false);
    expect(v.reset(buf, 2, VLAN_HDR_LEN)).toBe(true);
  });

  it('setVid keeps pcp and dei; setters write in place', () => {
    const buf = placeAt(tagged(SYN, 5, 3, 1), 4);
    const v = new VlanView();
    v.reset(buf, 4, SYN.length + 4);
    v.setVid(4000);
    expect([v.pcp, v.dei, v.vid]).toEqual([3, 1, 4000]);
    v.setTci(makeTci(7, 0, 0));
    v.setTpid(ETHERTYPE_QINQ);
    v.setInnerEtherType(0x86dd);
    expect(buf.subarray(4 + 12, 4 + 18)).toEqual(hex('88a8 0007 86dd'));
  });
});

describe('pushTag / popTag', () => {
  const HEADROOM = 64;

  it('round-trips every VID with a vnet header: bytes, pcp/dei, csum_start +-4', () => {
    const hdr = { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 };
    const frame = withVnet(SYN, hdr);
    const buf = placeAt(frame, HEADROOM, 16, 0xee);
    const pristine = buf.slice();
    const view = new VlanView();
    const vnetView = new VnetHdrView();
    for (let vid = 0; vid <= 4095; vid++) {
      const pcp = vid & 7;
      const dei = (vid >> 3) & 1;
      const off = pushTag(buf, HEADROOM, frame.length, ETHERTYPE_VLAN, makeTci(vid, pcp, dei), true);
      expect(off).toBe(HEADROOM - 4);
      const want = withVnet(tagged(SYN, vid, pcp, dei), { ...hdr, csumStart: 38, hdrLen: 58 });
      if (!buf.subarray(off, off + frame.length + 4).every((b, i) => b === want[i])) {
        throw new Error(`pushed frame differs for vid ${vid}`);
      }
      vnetView.reset(buf, off, 10);
      if (vnetView.csumStart !== 38 || vnetView.hdrLen !== 58 || vnetView.csumOffset !== 16) throw new Error(`vnet ${vid}`);
      view.reset(buf, off + 10, frame.length - 6);
      if (view.vid !== vid || view.pcp !== pcp || view.dei !== dei || view.innerEtherType !== ETHERTYPE_IPV4) {
        throw new Error(`tag fields for vid ${vid}`);
      }
      if (buf[off - 1] !== 0xee) throw new Error('wrote before the headroom');

      expect(popTag(buf, off, frame.length + 4, true)).toBe(HEADROOM);
      // Back to the original frame exactly (the 4 stale bytes before it are not ours to care about).
      if (!buf.subarray(HEADROOM).every((b, i) => b === pristine[HEADROOM + i])) {
        throw new Error(`popped frame differs for vid ${vid}`);
      }
    }
  });

  it('round-trips every VID without a vnet header, payload never moves', () => {
    const buf = placeAt(SYN, HEADROOM);
    const payloadBefore = buf.slice(HEADROOM + 12, HEADROOM + SYN.length);
    for (let vid = 0; vid <= 4095; vid++) {
      const tci = makeTci(vid, 7 - (vid & 7), vid & 1);
      const off = pushTag(buf, HEADROOM, SYN.length, ETHERTYPE_VLAN, tci, false);
      expect(off).toBe(HEADROOM - 4);
      const want = tagged(SYN, vid, 7 - (vid & 7), vid & 1);
      if (!buf.subarray(off, off + want.length).every((b, i) => b === want[i])) throw new Error(`vid ${vid}`);
      if (!buf.subarray(HEADROOM + 12, HEADROOM + SYN.length).every((b, i) => b === payloadBefore[i])) {
        throw new Error(`payload moved for vid ${vid}`);
      }
      expect(popTag(buf, off, want.length, false)).toBe(HEADROOM);
      if (!buf.subarray(HEADROOM, HEADROOM + SYN.length).every((b, i) => b === SYN[i])) throw new Error(`pop ${vid}`);
    }
  });

  it('leaves csum_start alone when NEEDS_CSUM is not set', () => {
    const frame = withVnet(SYN, { flags: VNET_F_DATA_VALID, csumStart: 34, csumOffset: 16 });
    const buf = placeAt(frame, HEADROOM);
    const v = new VnetHdrView();
    const off = pushTag(buf, HEADROOM, frame.length, ETHERTYPE_VLAN, makeTci(10), true);
    v.reset(buf, off, 10);
    expect([v.flags, v.csumStart, v.csumOffset, v.hdrLen]).toEqual([VNET_F_DATA_VALID, 34, 16, 0]);
    const back = popTag(buf, off, frame.length + 4, true);
    v.reset(buf, back, 10);
    expect([v.flags, v.csumStart, v.csumOffset, v.hdrLen]).toEqual([VNET_F_DATA_VALID, 34, 16, 0]);
    expect(buf.subarray(back, back + frame.length)).toEqual(frame);
  });

  it('stacks a QinQ outer tag on a tagged frame', () => {
    const inner = tagged(SYN, 10);
    const buf = placeAt(inner, HEADROOM);
    const off = pushTag(buf, HEADROOM, inner.length, ETHERTYPE_QINQ, makeTci(200, 1), false);
    expect(buf.subarray(off, off + 22)).toEqual(hex('02420a000003 02420a000002 88a8 2 0c8 8100 000a 0800'));
  });

  it('refuses without headroom or with a short frame, changing nothing', () => {
    const buf = placeAt(SYN, 3);
    const copy = buf.slice();
    expect(pushTag(buf, 3, SYN.length, ETHERTYPE_VLAN, 1, false)).toBe(-1);
    expect(pushTag(buf, 3, 11, ETHERTYPE_VLAN, 1, false)).toBe(-1);
    expect(popTag(buf, 3, 17, false)).toBe(-1);
    expect(popTag(buf, 3, 27, true)).toBe(-1);
    expect(buf).toEqual(copy);
    expect(pushTag(buf, 4, 12, ETHERTYPE_VLAN, 1, false)).toBe(0);
  });
});
