import { describe, it, expect } from 'vitest';
import {
  ARP_OP_REQUEST, ARP_SPA_OFF, ARP_TPA_OFF, ArpView, arpIsEthernetIpv4, buildArp, buildEthernet, buildTcp,
  buildUdp, ETH_DST_OFF, ETH_SRC_OFF, ETH_TYPE_OFF, ETHERTYPE_ARP, EthernetView, ICMP_TYPE_OFF,
  ICMP_TIME_EXCEEDED, isVlanTpid, L4_DST_PORT_OFF, L4_PORTS_LEN, L4_SRC_PORT_OFF, l4DstPort, l4SrcPort,
  macHi, macLo, readU16, readU32, TCI_PRIO_MASK, VLAN_INNER_TYPE_OFF, VLAN_TCI_OFF, VlanView, buildIcmp,
  makeTci, VID_LAST,
} from '../../../dataplane/wire';

// The field offsets and functions wire/ exports for code that reads a header without a view
// (the filters' decode) must say what the views say.
describe('field offsets without a view', () => {
  it('TCP and UDP ports are the first four bytes of either', () => {
    const t = buildTcp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 43210, dstPort: 80, flags: 0x02 });
    const u = buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5353, dstPort: 53 });
    expect(L4_PORTS_LEN).toBe(4);
    expect([l4SrcPort(t, 0), l4DstPort(t, 0)]).toEqual([43210, 80]);
    expect([l4SrcPort(u, 0), l4DstPort(u, 0)]).toEqual([5353, 53]);
    expect([readU16(u, L4_SRC_PORT_OFF), readU16(u, L4_DST_PORT_OFF)]).toEqual([5353, 53]);
  });

  it('Ethernet, 802.1Q and ICMP offsets agree with the views', () => {
    const f = buildEthernet({ dst: '02:00:00:00:00:01', src: '02:00:00:00:00:02', etherType: ETHERTYPE_ARP });
    const eth = new EthernetView();
    eth.reset(f, 0, f.length);
    expect([macHi(f, ETH_DST_OFF), macLo(f, ETH_DST_OFF)]).toEqual([eth.dstHi, eth.dstLo]);
    expect([macHi(f, ETH_SRC_OFF), macLo(f, ETH_SRC_OFF)]).toEqual([eth.srcHi, eth.srcLo]);
    expect(readU16(f, ETH_TYPE_OFF)).toBe(ETHERTYPE_ARP);

    const tagged = new Uint8Array(18);
    tagged.set([0x81, 0x00, 0xb0, 0x0a, 0x08, 0x06], 12);
    const v = new VlanView();
    v.reset(tagged, 0, 18);
    expect(readU16(tagged, VLAN_TCI_OFF)).toBe(v.tci);
    expect(readU16(tagged, VLAN_INNER_TYPE_OFF)).toBe(v.innerEtherType);
    expect(v.tci & TCI_PRIO_MASK).toBe(makeTci(0, 5, 1));
    expect([isVlanTpid(0x8100), isVlanTpid(0x88a8), isVlanTpid(0x0800), isVlanTpid(0x9100)]).toEqual([true, true, false, false]);
    expect(VID_LAST).toBe(4094);

    expect(buildIcmp({ type: ICMP_TIME_EXCEEDED, code: 0 })[ICMP_TYPE_OFF]).toBe(ICMP_TIME_EXCEEDED);
  });

  it('ARP: the Ethernet/IPv4 check and the address offsets agree with the view', () => {
    const a = buildArp({ op: ARP_OP_REQUEST, sha: '02:00:00:00:00:02', spa: '10.0.0.2', tpa: '10.0.0.3' });
    const view = new ArpView();
    view.reset(a, 0, a.length);
    expect(arpIsEthernetIpv4(a, 0)).toBe(true);
    expect(view.isEthernetIpv4).toBe(true);
    expect([readU32(a, ARP_SPA_OFF), readU32(a, ARP_TPA_OFF)]).toEqual([view.spa, view.tpa]);
    for (const at of [0, 1, 2, 3, 4, 5]) {
      const bad = a.slice();
      bad[at] ^= 0x40;
      expect(arpIsEthernetIpv4(bad, 0), `byte ${at}`).toBe(false);
    }
  });
});
