// The frame filter language (dataplane/filter.ts): every primitive on matching and
// non-matching frames, tags, precedence, errors, truncation, and a randomized comparison
// against a straightforward reference evaluator written here over the wire views.
import { describe, it, expect } from 'vitest';
import { CompiledFilter, FILTER_MAX_DEPTH, FILTER_MAX_SOURCE, FilterError, compileFilter } from '../../../dataplane/filter';
import {
  ArpView, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN, EthernetView,
  IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_MF, Ipv4View, TCP_ACK, TCP_SYN, VlanView,
  buildEthernet, buildIcmp, buildIpv4, buildTcp, buildUdp, parseIp, parseMac, readU16, writeU16,
} from '../../../dataplane/wire';
import {
  BROADCAST, arpReply, arpRequest, icmpEcho, padded, placeAt, rng, tagged, tcpFrame, tcpSyn, udpFrame,
} from '../../fixtures/frames';

// ---------------------------------------------------------------------------------------
// Frames

const M1 = '02:42:0a:00:00:05';
const M2 = '02:42:0a:00:00:07';
const GW = '02:42:0a:00:00:01';
const MDNS_MAC = '01:00:5e:00:00:fb';

const SYN = tcpSyn({ srcMac: M1, dstMac: M2, srcIp: '10.0.0.5', dstIp: '10.0.0.7', srcPort: 40000, dstPort: 80 });
const DNS = udpFrame({ srcMac: M1, dstMac: GW, srcIp: '10.0.0.5', dstIp: '10.0.1.9', srcPort: 5353, dstPort: 53 });
const PING = icmpEcho({ srcMac: M1, dstMac: M2, srcIp: '10.0.0.5', dstIp: '10.0.0.7', id: 1, seq: 1 });
const PONG = icmpEcho({ srcMac: M2, dstMac: M1, srcIp: '10.0.0.7', dstIp: '10.0.0.5', id: 1, seq: 1, reply: true });
const WHO_HAS = arpRequest({ srcMac: M1, srcIp: '10.0.0.5', targetIp: '10.0.0.1' });
const IS_AT = arpReply({ srcMac: GW, srcIp: '10.0.0.1', dstMac: M1, dstIp: '10.0.0.5' });
const MDNS = udpFrame({ srcMac: M1, dstMac: MDNS_MAC, srcIp: '10.0.0.5', dstIp: '224.0.0.251', srcPort: 5353, dstPort: 5353 });
const V6 = ipv6Frame(M1, M2);
const LLDP = buildEthernet({ dst: '01:80:c2:00:00:0e', src: M1, etherType: 0x88cc, payload: new Uint8Array(46) });

/** A minimal IPv6 frame (40-byte header, next header UDP, no payload). */
function ipv6Frame(src: string, dst: string): Uint8Array {
  const h = new Uint8Array(40);
  h[0] = 0x60;
  h[6] = IPPROTO_UDP;
  h[7] = 64;
  return buildEthernet({ dst, src, etherType: ETHERTYPE_IPV6, payload: h });
}

/** An IPv4 frame with any protocol and raw L4 bytes, optionally a fragment. */
function ipv4Frame(o: {
  src?: string; dst?: string; srcMac?: string; dstMac?: string; protocol: number; l4: Uint8Array;
  fragOffset?: number; flags?: number;
}): Uint8Array {
  return buildEthernet({
    dst: o.dstMac ?? M2, src: o.srcMac ?? M1, etherType: ETHERTYPE_IPV4,
    payload: buildIpv4({
      src: o.src ?? '10.0.0.5', dst: o.dst ?? '10.0.0.7', protocol: o.protocol, payload: o.l4,
      fragOffset: o.fragOffset, flags: o.flags,
    }),
  });
}

/** Two tags: outer (tpid, vid), inner (tpid2, vid2). */
function qinq(frame: Uint8Array, outerVid: number, innerVid: number, outerTpid = ETHERTYPE_QINQ, innerTpid = ETHERTYPE_VLAN, outerPcp = 0): Uint8Array {
  return tagged(tagged(frame, innerVid, 0, 0, innerTpid), outerVid, outerPcp, 0, outerTpid);
}


function m(expr: string, frame: Uint8Array): boolean {
  const f = compileFilter(expr);
  // at offset 0 and inside a bigger buffer whose surroundings are 0xff
  const a = f.match(frame, 0, frame.length);
  const buf = placeAt(frame, 37, 50, 0xff);
  const b = f.match(buf, 37, frame.length);
  expect(b, `${expr}: same answer at offset 37`).toBe(a);
  return a;
}

function err(expr: string): string {
  try {
    compileFilter(expr);
  } catch (e) {
    expect(e).toBeInstanceOf(FilterError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${JSON.stringify(expr)}`);
}

// ---------------------------------------------------------------------------------------

// Runs first: later tests pass a Proxy as the buffer (to catch out-of-bounds reads), which
// makes every byte access in the decoder megamorphic for the rest of the file (~150 ns/match).
// A worker only ever passes Uint8Arrays.
describe('compileFilter: speed (logs only)', () => {
  it('a 3-term filter on a 60-byte frame', () => {
    const frame = padded(udpFrame({ srcMac: M1, dstMac: M2, srcIp: '10.0.0.5', dstIp: '10.0.0.7', srcPort: 1000, dstPort: 53 }));
    const buf = placeAt(frame, 64 * 1024 + 4, 64);
    const off = 64 * 1024 + 4;
    const cases = [
      'tcp and host 10.0.0.5 and port 80',      // fails at the first term
      'udp and host 10.0.0.7 and port 53',      // all three evaluated, matches
      `ether src ${M1} and vlan 10 or len > 1000`,
      '(udp or tcp) and not (src net 10.0.0.0/8 and dst port 53) or icmp-type 8',
    ];
    const lines: string[] = [];
    for (const src of cases) {
      const f = compileFilter(src);
      const expected = f.match(buf, off, frame.length);
      const N = 2_000_000;
      for (let i = 0; i < 200_000; i++) f.match(buf, off, frame.length);
      const heap0 = process.memoryUsage().heapUsed;
      const t0 = process.hrtime.bigint();
      let hits = 0;
      for (let i = 0; i < N; i++) if (f.match(buf, off, frame.length)) hits++;
      const ns = Number(process.hrtime.bigint() - t0) / N;
      const heapKb = (process.memoryUsage().heapUsed - heap0) / 1024;
      expect(hits).toBe(expected ? N : 0);
      lines.push(`${ns.toFixed(1).padStart(6)} ns/match  heap ${heapKb >= 0 ? '+' : ''}${heapKb.toFixed(0)} KiB  ${src}`);
    }
    console.log(`filter speed (${frame.length}-byte frame):\n${lines.join('\n')}`);
  });
});

describe('compileFilter: primitives', () => {
  it('empty or whitespace matches everything, even an empty frame', () => {
    for (const src of ['', '   ', '\t\n']) {
      const f = compileFilter(src);
      expect(f.source).toBe(src);
      expect(f.match(SYN, 0, SYN.length)).toBe(true);
      expect(f.match(new Uint8Array(0), 0, 0)).toBe(true);
    }
  });

  it('keeps the source text', () => {
    expect(compileFilter('tcp and port 80').source).toBe('tcp and port 80');
  });

  it('ether host / src / dst, mac, MAC arguments to host/src/dst', () => {
    expect(m(`ether host ${M1}`, SYN)).toBe(true);
    expect(m(`ether host ${M2}`, SYN)).toBe(true);
    expect(m(`ether host ${GW}`, SYN)).toBe(false);
    expect(m(`ether src ${M1}`, SYN)).toBe(true);
    expect(m(`ether src ${M2}`, SYN)).toBe(false);
    expect(m(`ether dst ${M2}`, SYN)).toBe(true);
    expect(m(`ether dst ${M1}`, SYN)).toBe(false);
    expect(m(`ether src host ${M1}`, SYN)).toBe(true);
    expect(m(`ether dst host ${M1}`, SYN)).toBe(false);
    expect(m(`mac ${M2}`, SYN)).toBe(true);
    expect(m(`mac ${GW}`, SYN)).toBe(false);
    expect(m(`mac ${M1.replace(/:/g, '-')}`, SYN)).toBe(true);
    expect(m(`MAC ${M1.toUpperCase()}`, SYN)).toBe(true);
    expect(m(`host ${M1}`, SYN)).toBe(true);
    expect(m(`src ${M2}`, SYN)).toBe(false);
    expect(m(`dst ${M2}`, SYN)).toBe(true);
    expect(m(`src host ${M1}`, SYN)).toBe(true);
    // MACs match in ARP and non-IP frames too
    expect(m(`ether src ${M1}`, WHO_HAS)).toBe(true);
    expect(m(`ether src ${M1}`, LLDP)).toBe(true);
    expect(m(`ether host ${M1}`, V6)).toBe(true);
  });

  it('broadcast and multicast (destination MAC)', () => {
    expect(m('broadcast', WHO_HAS)).toBe(true);
    expect(m('ether broadcast', WHO_HAS)).toBe(true);
    expect(m('broadcast', IS_AT)).toBe(false);
    expect(m('broadcast', MDNS)).toBe(false);
    expect(m('multicast', MDNS)).toBe(true);
    expect(m('ether multicast', LLDP)).toBe(true);
    expect(m('multicast', WHO_HAS)).toBe(true); // broadcast is multicast
    expect(m('multicast', SYN)).toBe(false);
    // a multicast *source* does not count
    const odd = buildEthernet({ dst: M2, src: '01:00:00:00:00:01', etherType: 0x88cc, payload: new Uint8Array(46) });
    expect(m('multicast', odd)).toBe(false);
  });

  it('host / src / dst IPv4 (also src host / dst host / ip host)', () => {
    expect(m('host 10.0.0.5', SYN)).toBe(true);
    expect(m('host 10.0.0.7', SYN)).toBe(true);
    expect(m('host 10.0.0.8', SYN)).toBe(false);
    expect(m('src 10.0.0.5', SYN)).toBe(true);
    expect(m('src 10.0.0.7', SYN)).toBe(false);
    expect(m('dst 10.0.0.7', SYN)).toBe(true);
    expect(m('dst 10.0.0.5', SYN)).toBe(false);
    expect(m('src host 10.0.0.5', SYN)).toBe(true);
    expect(m('dst host 10.0.0.5', SYN)).toBe(false);
    expect(m('ip host 10.0.0.5', SYN)).toBe(true);
    expect(m('ip src 10.0.0.5', SYN)).toBe(true);
    expect(m('ip dst host 10.0.0.5', SYN)).toBe(false);
    expect(m('host 10.0.1.9', DNS)).toBe(true);
    expect(m('host 224.0.0.251', MDNS)).toBe(true);
    // not on IPv6 or LLDP frames
    expect(m('host 0.0.0.0', V6)).toBe(false);
    expect(m('not host 10.0.0.5', V6)).toBe(true);
  });

  it('ARP: host/src/dst/net match the sender and target protocol addresses', () => {
    // WHO_HAS: spa 10.0.0.5, tpa 10.0.0.1
    expect(m('host 10.0.0.5', WHO_HAS)).toBe(true);
    expect(m('host 10.0.0.1', WHO_HAS)).toBe(true);
    expect(m('host 10.0.0.7', WHO_HAS)).toBe(false);
    expect(m('src 10.0.0.5', WHO_HAS)).toBe(true);
    expect(m('src 10.0.0.1', WHO_HAS)).toBe(false);
    expect(m('dst 10.0.0.1', WHO_HAS)).toBe(true);
    expect(m('dst host 10.0.0.5', WHO_HAS)).toBe(false);
    expect(m('net 10.0.0.0/24', WHO_HAS)).toBe(true);
    expect(m('dst net 10.0.0.0/31', WHO_HAS)).toBe(true);
    expect(m('src net 10.0.0.0/30', WHO_HAS)).toBe(false);
    expect(m('arp host 10.0.0.5', WHO_HAS)).toBe(true);
    expect(m('arp src 10.0.0.1', IS_AT)).toBe(true);
    expect(m('arp dst 10.0.0.5', IS_AT)).toBe(true);
    expect(m('arp net 10.0.0.0/8', IS_AT)).toBe(true);
    // restricted forms do not cross over
    expect(m('ip host 10.0.0.5', WHO_HAS)).toBe(false);
    expect(m('arp host 10.0.0.5', SYN)).toBe(false);
    // a non-Ethernet/IPv4 ARP (plen 16) has no IPv4 addresses to match
    const bad = WHO_HAS.slice();
    bad[14 + 5] = 16;
    expect(m('host 10.0.0.5', bad)).toBe(false);
    expect(m('arp', bad)).toBe(true);
  });

  it('net CIDR, src net, dst net; a bare address is /32; /0 is everything IPv4', () => {
    expect(m('net 10.0.0.0/24', SYN)).toBe(true);
    expect(m('net 10.0.0.0/8', DNS)).toBe(true);
    expect(m('net 10.0.1.0/24', DNS)).toBe(true);
    expect(m('src net 10.0.1.0/24', DNS)).toBe(false);
    expect(m('dst net 10.0.1.0/24', DNS)).toBe(true);
    expect(m('net 192.168.0.0/16', DNS)).toBe(false);
    expect(m('net 10.0.0.5', SYN)).toBe(true);
    expect(m('net 10.0.0.6', SYN)).toBe(false);
    expect(m('net 0.0.0.0/0', SYN)).toBe(true);
    expect(m('net 0.0.0.0/0', V6)).toBe(false);
    expect(m('net 224.0.0.0/4', MDNS)).toBe(true);
    expect(m('ip net 10.0.0.4/30', SYN)).toBe(true);
    // top bit set (signed int32 trap)
    const hi = udpFrame({ srcMac: M1, dstMac: M2, srcIp: '200.1.2.3', dstIp: '255.255.255.255', srcPort: 68, dstPort: 67 });
    expect(m('net 128.0.0.0/1', hi)).toBe(true);
    expect(m('src net 200.1.2.0/24', hi)).toBe(true);
    expect(m('dst host 255.255.255.255', hi)).toBe(true);
    expect(m('src net 0.0.0.0/1', hi)).toBe(false);
  });

  it('ip, arp, ip6, ether proto', () => {
    expect(m('ip', SYN)).toBe(true);
    expect(m('ip', WHO_HAS)).toBe(false);
    expect(m('arp', WHO_HAS)).toBe(true);
    expect(m('arp', SYN)).toBe(false);
    expect(m('ip6', V6)).toBe(true);
    expect(m('ip6', SYN)).toBe(false);
    expect(m('ip', V6)).toBe(false);
    expect(m('ether proto 0x88cc', LLDP)).toBe(true);
    expect(m('ether proto 2048', SYN)).toBe(true);
    expect(m('ether proto 0x0806', SYN)).toBe(false);
  });

  it('tcp, udp, icmp, proto N, ip proto', () => {
    expect(m('tcp', SYN)).toBe(true);
    expect(m('udp', SYN)).toBe(false);
    expect(m('udp', DNS)).toBe(true);
    expect(m('icmp', PING)).toBe(true);
    expect(m('icmp', DNS)).toBe(false);
    expect(m('tcp', WHO_HAS)).toBe(false);
    expect(m('udp', V6)).toBe(false); // IPv6 is not looked into
    expect(m('proto 6', SYN)).toBe(true);
    expect(m('proto 17', SYN)).toBe(false);
    expect(m('proto 0x11', DNS)).toBe(true);
    expect(m('ip proto 1', PING)).toBe(true);
    expect(m('proto udp', DNS)).toBe(true);
    expect(m('proto tcp', DNS)).toBe(false);
    const gre = ipv4Frame({ protocol: 47, l4: new Uint8Array(8) });
    expect(m('proto 47', gre)).toBe(true);
    expect(m('tcp or udp or icmp', gre)).toBe(false);
    // protocol primitives match every fragment (ports do not)
    const frag = ipv4Frame({ protocol: IPPROTO_TCP, l4: new Uint8Array(24), fragOffset: 100 });
    expect(m('tcp', frag)).toBe(true);
  });

  it('port, src port, dst port, tcp port, udp dst port', () => {
    expect(m('port 80', SYN)).toBe(true);
    expect(m('port 40000', SYN)).toBe(true);
    expect(m('port 443', SYN)).toBe(false);
    expect(m('src port 40000', SYN)).toBe(true);
    expect(m('src port 80', SYN)).toBe(false);
    expect(m('dst port 80', SYN)).toBe(true);
    expect(m('dst port 40000', SYN)).toBe(false);
    expect(m('port 53', DNS)).toBe(true);
    expect(m('tcp port 80', SYN)).toBe(true);
    expect(m('udp port 80', SYN)).toBe(false);
    expect(m('tcp port 53', DNS)).toBe(false);
    expect(m('udp dst port 53', DNS)).toBe(true);
    expect(m('udp src port 53', DNS)).toBe(false);
    expect(m('tcp src port 40000', SYN)).toBe(true);
    // no ports in ICMP, ARP, IPv6, other protocols
    expect(m('port 0', PING)).toBe(false);
    expect(m('port 0', WHO_HAS)).toBe(false);
    expect(m('port 0', V6)).toBe(false);
    const sctp = ipv4Frame({ protocol: 132, l4: new Uint8Array([0, 80, 0, 80, 0, 0, 0, 0]) });
    expect(m('port 80', sctp)).toBe(false);
  });

  it('ports: a first fragment matches, a non-first fragment never does', () => {
    const l4 = buildTcp({ src: '10.0.0.5', dst: '10.0.0.7', srcPort: 1234, dstPort: 80, flags: TCP_ACK, payload: new Uint8Array(16) });
    const first = ipv4Frame({ protocol: IPPROTO_TCP, l4, flags: IPV4_FLAG_MF });
    const later = ipv4Frame({ protocol: IPPROTO_TCP, l4, fragOffset: 3 });
    const lastLater = ipv4Frame({ protocol: IPPROTO_TCP, l4, fragOffset: 3, flags: IPV4_FLAG_MF });
    expect(m('port 80', first)).toBe(true);
    expect(m('port 80', later)).toBe(false);
    expect(m('port 80', lastLater)).toBe(false);
    expect(m('portrange 0-65535', later)).toBe(false);
    expect(m('host 10.0.0.5 and tcp', later)).toBe(true);
    const icmpLater = ipv4Frame({ protocol: IPPROTO_ICMP, l4: buildIcmp({ type: 8, code: 0 }), fragOffset: 1 });
    expect(m('icmp-type 8', icmpLater)).toBe(false);
    expect(m('icmp', icmpLater)).toBe(true);
  });

  it('portrange A-B (inclusive), also src/dst and per protocol', () => {
    expect(m('portrange 79-81', SYN)).toBe(true);
    expect(m('portrange 80-80', SYN)).toBe(true);
    expect(m('portrange 81-39999', SYN)).toBe(false);
    expect(m('portrange 40000-65535', SYN)).toBe(true);
    expect(m('src portrange 1-1000', SYN)).toBe(false);
    expect(m('dst portrange 1-1000', SYN)).toBe(true);
    expect(m('udp portrange 1-1000', SYN)).toBe(false);
    expect(m('udp portrange 50-60', DNS)).toBe(true);
    expect(m('tcp dst portrange 0x50-0x50', SYN)).toBe(true);
  });

  it('vlan, vlan N (outermost tag), pcp N', () => {
    const t10 = tagged(SYN, 10, 5);
    expect(m('vlan', t10)).toBe(true);
    expect(m('vlan', SYN)).toBe(false);
    expect(m('not vlan', SYN)).toBe(true);
    expect(m('vlan 10', t10)).toBe(true);
    expect(m('vlan 11', t10)).toBe(false);
    expect(m('vlan 0', SYN)).toBe(false);
    expect(m('pcp 5', t10)).toBe(true);
    expect(m('pcp 0', t10)).toBe(false);
    expect(m('pcp 0', SYN)).toBe(false);
    // priority-tagged frames have VID 0
    expect(m('vlan 0', tagged(PING, 0, 3))).toBe(true);
    expect(m('vlan 4095', tagged(PING, 4095))).toBe(true);
    // 802.1ad outer TPID
    expect(m('vlan 20', tagged(DNS, 20, 0, 0, ETHERTYPE_QINQ))).toBe(true);
  });

  it('QinQ: vlan N and pcp read the outer tag; everything else looks through both tags', () => {
    const q = qinq(SYN, 100, 10, ETHERTYPE_QINQ, ETHERTYPE_VLAN, 6);
    expect(m('vlan', q)).toBe(true);
    expect(m('vlan 100', q)).toBe(true);
    expect(m('vlan 10', q)).toBe(false);
    expect(m('pcp 6', q)).toBe(true);
    expect(m('ip and tcp and port 80 and host 10.0.0.5', q)).toBe(true);
    expect(m(`ether src ${M1} and ether dst ${M2}`, q)).toBe(true);
    expect(m('udp', q)).toBe(false);
    // two 0x8100 tags (old-style double tagging) also work
    const qq = qinq(DNS, 7, 8, ETHERTYPE_VLAN, ETHERTYPE_VLAN);
    expect(m('vlan 7 and udp dst port 53 and dst 10.0.1.9', qq)).toBe(true);
    // ARP inside QinQ
    expect(m('arp and host 10.0.0.1', qinq(WHO_HAS, 5, 6))).toBe(true);
    // a third tag is not looked through: the EtherType after two tags is 0x8100
    const q3 = tagged(qinq(SYN, 1, 2), 3);
    expect(m('vlan 3', q3)).toBe(true);
    expect(m('ip', q3)).toBe(false);
    expect(m('ether proto 0x8100', q3)).toBe(true);
    expect(m('tcp', q3)).toBe(false);
    expect(m(`ether src ${M1}`, q3)).toBe(true);
  });

  it('tagged frames: every primitive sees through one 802.1Q tag', () => {
    const cases: Array<[string, Uint8Array, boolean]> = [
      ['ip', SYN, true], ['tcp', SYN, true], ['port 80', SYN, true], ['host 10.0.0.7', SYN, true],
      ['udp port 53', DNS, true], ['icmp-type 0', PONG, true], ['arp and dst 10.0.0.1', WHO_HAS, true],
      ['broadcast', WHO_HAS, true], ['ip6', V6, true], ['ether proto 0x88cc', LLDP, true], ['udp', SYN, false],
    ];
    for (const [expr, frame, want] of cases) {
      expect(m(expr, tagged(frame, 42)), `${expr} tagged`).toBe(want);
      expect(m(expr, qinq(frame, 42, 43)), `${expr} qinq`).toBe(want);
    }
  });

  it('len comparisons, less, greater (frame length, tags included)', () => {
    const f = padded(PING); // 60
    expect(f.length).toBe(60);
    expect(m('len < 61', f)).toBe(true);
    expect(m('len < 60', f)).toBe(false);
    expect(m('len <= 60', f)).toBe(true);
    expect(m('len > 59', f)).toBe(true);
    expect(m('len > 60', f)).toBe(false);
    expect(m('len >= 60', f)).toBe(true);
    expect(m('len = 60', f)).toBe(true);
    expect(m('len == 61', f)).toBe(false);
    expect(m('len != 60', f)).toBe(false);
    expect(m('len>=60', f)).toBe(true); // no spaces needed around operators
    expect(m('less 60', f)).toBe(true);
    expect(m('less 59', f)).toBe(false);
    expect(m('greater 60', f)).toBe(true);
    expect(m('greater 61', f)).toBe(false);
    expect(m('len = 64', tagged(f, 1))).toBe(true);
    // len is the only primitive that looks at runt frames
    const runt = new Uint8Array(5);
    expect(m('len < 14', runt)).toBe(true);
    expect(m('len = 5', runt)).toBe(true);
    expect(m('len = 0', new Uint8Array(0))).toBe(true);
  });

  it('icmp-type N', () => {
    expect(m('icmp-type 8', PING)).toBe(true);
    expect(m('icmp-type 0', PING)).toBe(false);
    expect(m('icmp-type 0', PONG)).toBe(true);
    const unreach = ipv4Frame({ protocol: IPPROTO_ICMP, l4: buildIcmp({ type: 3, code: 3, payload: new Uint8Array(28) }) });
    expect(m('icmp-type 3', unreach)).toBe(true);
    expect(m('icmp-type 8', SYN)).toBe(false); // SYN's first L4 byte is not an ICMP type
    expect(m('icmp-type 0', WHO_HAS)).toBe(false);
  });

  it('keywords are case-insensitive', () => {
    expect(m('TCP AND Port 80 && NOT udp', SYN)).toBe(true);
    expect(m('Ether Src HOST 02:42:0A:00:00:05 Or IP6', SYN)).toBe(true);
    expect(m('VLAN 10 or LEN > 0', SYN)).toBe(true);
  });
});

describe('compileFilter: combinations', () => {
  it('and, or, not with their symbols', () => {
    expect(m('tcp and port 80', SYN)).toBe(true);
    expect(m('tcp && port 443', SYN)).toBe(false);
    expect(m('udp or port 80', SYN)).toBe(true);
    expect(m('udp || icmp', SYN)).toBe(false);
    expect(m('not udp', SYN)).toBe(true);
    expect(m('!tcp', SYN)).toBe(false);
    expect(m('! tcp', SYN)).toBe(false);
    expect(m('not not tcp', SYN)).toBe(true);
    expect(m('!!!tcp', SYN)).toBe(false);
    expect(m('tcp and src 10.0.0.5 and dst 10.0.0.7 and dst port 80 and not vlan', SYN)).toBe(true);
    expect(m('udp or icmp or arp or ip6 or port 80', SYN)).toBe(true);
    expect(m('udp or icmp or arp or ip6 or port 81', SYN)).toBe(false);
  });

  it('and binds tighter than or; not binds tighter than both', () => {
    // a or b and c == a or (b and c): with a=true, b=false -> true; (a or b) and c -> false
    expect(m('tcp or udp and port 53', SYN)).toBe(true);
    expect(m('(tcp or udp) and port 53', SYN)).toBe(false);
    // a and b or c == (a and b) or c
    expect(m('udp and port 80 or tcp', SYN)).toBe(true);
    expect(m('udp and (port 80 or tcp)', SYN)).toBe(false);
    // not a and b == (not a) and b
    expect(m('not udp and tcp', SYN)).toBe(true);
    expect(m('not (udp and tcp)', SYN)).toBe(true);
    expect(m('not tcp and tcp', SYN)).toBe(false);
    expect(m('not (tcp and port 80)', SYN)).toBe(false);
    expect(m('not tcp or port 80', SYN)).toBe(true);
    expect(m('not (tcp or port 80)', SYN)).toBe(false);
  });

  it('parentheses nest', () => {
    expect(m('((tcp))', SYN)).toBe(true);
    expect(m('(((udp) or (((icmp)))) or ((port 80) and (src 10.0.0.5)))', SYN)).toBe(true);
    expect(m('((udp or icmp) or (port 80 and src 10.0.0.7))', SYN)).toBe(false);
    expect(m('(host 10.0.0.5 and (port 53 or port 80)) and not (vlan or broadcast)', DNS)).toBe(true);
    expect(m('(host 10.0.0.5 and (port 53 or port 80)) and not (vlan or broadcast)', tagged(DNS, 1))).toBe(false);
  });

  it(`accepts ${FILTER_MAX_DEPTH} levels of nesting and ${FILTER_MAX_SOURCE} characters`, () => {
    const deep = '('.repeat(FILTER_MAX_DEPTH) + 'tcp' + ')'.repeat(FILTER_MAX_DEPTH);
    expect(m(deep, SYN)).toBe(true);
    const nots = 'not '.repeat(FILTER_MAX_DEPTH) + 'tcp';
    expect(m(nots, SYN)).toBe(true);
    const long = 'tcp' + ' or tcp'.repeat(145) + ' '.repeat(FILTER_MAX_SOURCE - 3 - 7 * 145);
    expect(long.length).toBe(FILTER_MAX_SOURCE);
    expect(m(long, SYN)).toBe(true);
    expect(m(long, DNS)).toBe(false);
  });
});

describe('compileFilter: errors', () => {
  it('exact messages', () => {
    expect(err('tcp and port')).toBe("filter: expected a port number after 'port' at column 13");
    expect(err('port 70000')).toBe('filter: port 70000 is out of range (0-65535) at column 6');
    expect(err('vlan 4096')).toBe('filter: VLAN ID 4096 is out of range (0-4095) at column 6');
    expect(err('host 10.0.0.256')).toBe("filter: invalid IPv4 address '10.0.0.256' at column 6");
    expect(err('net 10.0.0.1/24')).toBe("filter: '10.0.0.1/24' has host bits set (the network is 10.0.0.0/24) at column 5");
    expect(err('ether host 10.0.0.1')).toBe(
      "filter: expected a MAC address (aa:bb:cc:dd:ee:ff) after 'ether host', got '10.0.0.1' at column 12");
    expect(err('tcp udp')).toBe("filter: expected 'and' or 'or' before 'udp' at column 5");
    expect(err('(tcp or udp')).toBe("filter: expected ')' to close the '(' of column 1 at column 12");
    expect(err('port 80 or 443')).toBe("filter: '443' needs a keyword before it, e.g. 'port 443' at column 12");
    expect(err('tcp)')).toBe("filter: unexpected ')' at column 4");
    expect(err('foo')).toBe("filter: unknown keyword 'foo' at column 1");
    expect(err('tcp & udp')).toBe("filter: unexpected character '&' at column 5");
    expect(err('portrange 2000-1000')).toBe('filter: port range 2000-1000 is empty (2000 > 1000) at column 11');
    expect(err('tcp or')).toBe("filter: expected an expression after 'or' at column 7");
    expect(err('x'.repeat(FILTER_MAX_SOURCE + 1))).toBe('filter: expression is too long (1025 characters; at most 1024)');
  });

  it('a dozen more bad inputs, each naming the problem and a column', () => {
    const bad: Array<[string, RegExp]> = [
      ['ether host 02:42:0a:00:00', /expected a MAC address .* got '02:42:0a:00:00' at column 12$/],
      ['mac 02:42:0a:00:00:0g', /expected a MAC address .*'02:42:0a:00:00:0g' at column 5$/],
      ['mac 02:42-0a:00:00:05', /expected a MAC address/],
      ['host 10.0.0', /invalid IPv4 address '10\.0\.0' at column 6$/],
      ['host 010.0.0.1', /invalid IPv4 address/],
      ['host banana', /expected an IPv4 or MAC address after 'host', got 'banana' at column 6$/],
      ['net 10.0.0.0/33', /invalid prefix length '33' in '10\.0\.0\.0\/33' \(0-32\) at column 5$/],
      ['net 10.0.0.0/', /invalid prefix length '' /],
      ['net 10.0.0.0/8/8', /invalid prefix length/],
      ['net abc/8', /expected a network \(a\.b\.c\.d\/len\) after 'net', got 'abc\/8'/],
      ['src net 10.1.0.0/8', /'10\.1\.0\.0\/8' has host bits set \(the network is 10\.0\.0\.0\/8\) at column 9$/],
      ['port -1', /expected a port number after 'port', got '-1' at column 6$/],
      ['port 080', /invalid number '080' \(no leading zeros; 0x for hex\) at column 6$/],
      ['port 0x10000', /port 0x10000 is out of range \(0-65535\)/],
      ['port http', /expected a port number after 'port', got 'http'/],
      ['portrange 10', /expected a port range \(A-B\) after 'portrange', got '10'/],
      ['portrange 1-70000', /port range 1-70000 is out of range \(0-65535\)/],
      ['vlan 99999', /VLAN ID 99999 is out of range \(0-4095\) at column 6$/],
      ['vlan 1x', /expected a VLAN ID after 'vlan', got '1x'/],
      ['vlan 10 20', /expected 'and' or 'or' before '20' at column 9$/],
      ['pcp 8', /priority 8 is out of range \(0-7\) at column 5$/],
      ['pcp', /expected a priority \(0-7\) after 'pcp' at column 4$/],
      ['len 60', /expected '<', '<=', '>', '>=', '=' or '!=' after 'len', got '60' at column 5$/],
      ['len <', /expected a length after 'len <' at column 6$/],
      ['proto 256', /protocol 256 is out of range \(0-255\)/],
      ['icmp-type 300', /ICMP type 300 is out of range \(0-255\)/],
      ['ether', /expected 'host', 'src', 'dst', 'broadcast', 'multicast' or 'proto' after 'ether' at column 6$/],
      ['ether foo', /after 'ether', got 'foo' at column 7$/],
      ['ip src 02:42:0a:00:00:05', /expected an IPv4 address after 'ip src', got '02:42:0a:00:00:05'/],
      ['tcp src 10.0.0.1', /expected 'port' or 'portrange' after 'tcp src', got '10\.0\.0\.1' at column 9$/],
      ['arp proto 1', /'proto' does not apply to 'arp' at column 5$/],
      ['80', /'80' needs a keyword before it, e\.g\. 'port 80' at column 1$/],
      ['tcp or 10.0.0.1', /'10\.0\.0\.1' needs a keyword before it, e\.g\. 'host 10\.0\.0\.1' at column 8$/],
      ['10.0.0.0/8', /e\.g\. 'net 10\.0\.0\.0\/8' at column 1$/],
      ['aa:bb:cc:dd:ee:ff', /e\.g\. 'ether host aa:bb:cc:dd:ee:ff' at column 1$/],
      ['((tcp)', /expected '\)' to close the '\(' of column 1 at column 7$/],
      ['and tcp', /expected an expression, got 'and' at column 1$/],
      ['tcp and and udp', /expected an expression after 'and', got 'and' at column 9$/],
      ['()', /expected an expression after '\(', got '\)' at column 2$/],
      ['not', /expected an expression after 'not' at column 4$/],
      ['(tcp) (udp)', /expected 'and' or 'or' before '\(' at column 7$/],
      ['(tcp udp)', /expected 'and', 'or' or '\)' before 'udp' at column 6$/],
      ['tcp # comment', /unexpected character '#' at column 5$/],
      ['tcp\u0000', /unexpected character '\\x00' at column 4$/],
      ['host 10.0.0.1 port 80', /expected 'and' or 'or' before 'port' at column 15$/],
    ];
    for (const [src, re] of bad) expect(err(src), src).toMatch(re);
  });

  it('FilterError carries the column', () => {
    try {
      compileFilter('tcp and vlan 5000');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FilterError);
      expect(e).toBeInstanceOf(Error);
      expect((e as FilterError).column).toBe(14);
      expect((e as FilterError).name).toBe('FilterError');
    }
  });

  it('hostile nesting fails cleanly at the depth limit, not with a stack overflow', () => {
    const open = '('.repeat(FILTER_MAX_SOURCE);
    expect(err(open)).toBe(
      `filter: expression nests too deeply (more than ${FILTER_MAX_DEPTH} levels of '(' and 'not') at column ${FILTER_MAX_DEPTH + 1}`);
    expect(err('!'.repeat(FILTER_MAX_SOURCE))).toMatch(/nests too deeply .* at column 33$/);
    expect(err('not '.repeat(200) + 'tcp')).toMatch(/nests too deeply .* at column 129$/);
    const deep = '('.repeat(FILTER_MAX_DEPTH + 1) + 'tcp' + ')'.repeat(FILTER_MAX_DEPTH + 1);
    expect(err(deep)).toMatch(/nests too deeply/);
    expect(err('('.repeat(FILTER_MAX_DEPTH) + 'not tcp' + ')'.repeat(FILTER_MAX_DEPTH))).toMatch(/nests too deeply/);
    expect(err('x'.repeat(100_000))).toMatch(/too long \(100000 characters/);
    // long but flat is fine at any length up to the limit (and/or chains do not recurse)
    expect(() => compileFilter('tcp' + ' or tcp'.repeat(140))).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------
// Truncation and bounds

/** A view of buf that throws when anything reads outside [lo, hi). */
function guarded(buf: Uint8Array, lo: number, hi: number): Uint8Array {
  return new Proxy(buf, {
    get(target, prop) {
      if (typeof prop === 'string' && /^-?\d+$/.test(prop)) {
        const i = Number(prop);
        if (i < lo || i >= hi) throw new Error(`read at ${i} outside [${lo}, ${hi})`);
        return target[i];
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

const EVERY_PRIMITIVE = [
  `ether host ${M1}`, `ether src ${M2}`, `ether dst ${M2}`, 'broadcast', 'multicast', 'ether proto 0x0800',
  'host 10.0.0.5', 'src 10.0.0.1', 'dst 10.0.0.7', 'net 10.0.0.0/24', 'src net 10.0.0.0/8', 'dst net 10.0.1.0/24',
  'ip', 'arp', 'ip6', 'tcp', 'udp', 'icmp', 'proto 47', 'port 80', 'src port 5353', 'dst port 53',
  'portrange 50-90', 'tcp port 80', 'udp dst port 53', 'vlan', 'vlan 10', 'pcp 5', 'len > 30', 'icmp-type 8',
  'arp host 10.0.0.1', 'ip host 10.0.0.7',
];

describe('compileFilter: malformed and truncated frames', () => {
  const frames = [SYN, DNS, PING, PONG, WHO_HAS, IS_AT, MDNS, V6, LLDP, tagged(SYN, 10, 5), qinq(DNS, 100, 10), qinq(WHO_HAS, 1, 2)];
  const filters = EVERY_PRIMITIVE.map((s) => compileFilter(s));
  filters.push(compileFilter(`not (${EVERY_PRIMITIVE.join(' or ')})`));

  it('every length from 0 to the full frame: no throw, no read outside [off, off+len), same as the reference', () => {
    let checked = 0;
    for (const frame of frames) {
      for (let len = 0; len <= frame.length; len++) {
        const off = 19;
        const buf = placeAt(frame, off, 64, 0xff);
        const g = guarded(buf, off, off + len);
        for (let i = 0; i < filters.length; i++) {
          const f = filters[i];
          const got = f.match(g, off, len);
          expect(typeof got).toBe('boolean');
          if (i < EVERY_PRIMITIVE.length) {
            expect(got, `${EVERY_PRIMITIVE[i]} at len ${len}`).toBe(refEval(refParse(EVERY_PRIMITIVE[i]), buf, off, len));
          }
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(10_000);
  });

  it('a cut IPv4 packet (total length beyond the frame) matches no IPv4 field', () => {
    const cut = SYN.subarray(0, 14 + 20 + 2); // ports half there, total length says 40
    expect(m('ip', cut)).toBe(true); // the EtherType says so
    expect(m('host 10.0.0.5', cut)).toBe(false);
    expect(m('tcp', cut)).toBe(false);
    expect(m('port 40000', cut)).toBe(false);
  });

  it('bad version, bad IHL, bad total length: no IPv4 field matches', () => {
    const mut = (fn: (b: Uint8Array) => void): Uint8Array => { const b = SYN.slice(); fn(b); return b; };
    const v6hdr = mut((b) => { b[14] = 0x65; });
    const ihl4 = mut((b) => { b[14] = 0x44; });
    const ihlBig = mut((b) => { b[14] = 0x4f; });
    const tlShort = mut((b) => { writeU16(b, 16, 19); });
    const tlLong = mut((b) => { writeU16(b, 16, SYN.length - 14 + 1); });
    for (const b of [v6hdr, ihl4, ihlBig, tlShort, tlLong]) {
      expect(m('ip', b)).toBe(true);
      expect(m('host 10.0.0.5 or tcp or port 80 or net 0.0.0.0/0', b)).toBe(false);
    }
    // IP options: ports are found after them
    const withOpts = buildEthernet({
      dst: M2, src: M1, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({
        src: '10.0.0.5', dst: '10.0.0.7', protocol: IPPROTO_UDP, options: new Uint8Array([1, 1, 1, 0]),
        payload: buildUdp({ src: '10.0.0.5', dst: '10.0.0.7', srcPort: 7, dstPort: 9 }),
      }),
    });
    expect(m('udp src port 7 and dst port 9', withOpts)).toBe(true);
    // Ethernet padding after the IPv4 total length is not read as L4
    const shortUdp = ipv4Frame({ protocol: IPPROTO_UDP, l4: new Uint8Array(2) });
    const pad = padded(shortUdp);
    pad.fill(0x00, shortUdp.length);
    expect(m('port 0', pad)).toBe(false);
    expect(m('udp', pad)).toBe(true);
  });

  it('off/len past the end of the buffer are clamped, negative ones match nothing', () => {
    const f = compileFilter('tcp and port 80');
    expect(f.match(SYN, 0, SYN.length + 100)).toBe(true);
    expect(f.match(SYN, 10, 1000)).toBe(false);
    expect(f.match(SYN, 1000, 10)).toBe(false);
    expect(f.match(SYN, -1, 10)).toBe(false);
    expect(f.match(SYN, 0, -1)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------
// Reference evaluator: an AST, a printer, a (deliberately plain) parser for the few
// strings above, and an evaluator over the wire views.

type Dir = 'src' | 'dst' | 'any';
type Ast =
  | { k: 'and' | 'or'; a: Ast[] }
  | { k: 'not'; a: Ast }
  | { k: 'mac'; dir: Dir; mac: string }
  | { k: 'bcast' } | { k: 'mcast' } | { k: 'vlan' }
  | { k: 'etype'; v: number }
  | { k: 'ipaddr'; dir: Dir; only: 'ip' | 'arp' | 'both'; ip: string; bits: number }
  | { k: 'proto'; v: number }
  | { k: 'port'; dir: Dir; proto: 'tcp' | 'udp' | 'any'; lo: number; hi: number }
  | { k: 'vid'; v: number } | { k: 'pcp'; v: number } | { k: 'icmptype'; v: number }
  | { k: 'len'; op: '<' | '<=' | '>' | '>=' | '=' | '!='; v: number };

/** Parse the single primitives of EVERY_PRIMITIVE (not a general parser). */
function refParse(s: string): Ast {
  const w = s.split(' ');
  const dirOf = (x: string): Dir => (x === 'src' ? 'src' : x === 'dst' ? 'dst' : 'any');
  if (w[0] === 'ether') {
    if (w[1] === 'proto') return { k: 'etype', v: Number(w[2]) };
    return { k: 'mac', dir: dirOf(w[1]), mac: w[2] };
  }
  if (w[0] === 'broadcast') return { k: 'bcast' };
  if (w[0] === 'multicast') return { k: 'mcast' };
  if (w[0] === 'ip' && w.length === 1) return { k: 'etype', v: ETHERTYPE_IPV4 };
  if (w[0] === 'arp' && w.length === 1) return { k: 'etype', v: ETHERTYPE_ARP };
  if (w[0] === 'ip6') return { k: 'etype', v: ETHERTYPE_IPV6 };
  if ((w[0] === 'ip' || w[0] === 'arp') && w[1] === 'host') return { k: 'ipaddr', dir: 'any', only: w[0], ip: w[2], bits: 32 };
  if (w[0] === 'tcp' && w.length === 1) return { k: 'proto', v: 6 };
  if (w[0] === 'udp' && w.length === 1) return { k: 'proto', v: 17 };
  if (w[0] === 'icmp') return { k: 'proto', v: 1 };
  if (w[0] === 'proto') return { k: 'proto', v: Number(w[1]) };
  if (w[0] === 'vlan') return w.length === 1 ? { k: 'vlan' } : { k: 'vid', v: Number(w[1]) };
  if (w[0] === 'pcp') return { k: 'pcp', v: Number(w[1]) };
  if (w[0] === 'icmp-type') return { k: 'icmptype', v: Number(w[1]) };
  if (w[0] === 'len') return { k: 'len', op: w[1] as '>', v: Number(w[2]) };
  let proto: 'tcp' | 'udp' | 'any' = 'any';
  let i = 0;
  if (w[0] === 'tcp' || w[0] === 'udp') { proto = w[0]; i = 1; }
  let dir: Dir = 'any';
  if (w[i] === 'src' || w[i] === 'dst') { dir = w[i] as Dir; i++; }
  if (w[i] === 'port') return { k: 'port', dir, proto, lo: Number(w[i + 1]), hi: Number(w[i + 1]) };
  if (w[i] === 'portrange') {
    const [a, b] = w[i + 1].split('-').map(Number);
    return { k: 'port', dir, proto, lo: a, hi: b };
  }
  if (w[i] === 'host') i++;
  if (w[i] === 'net') {
    const [ip, bits] = w[i + 1].split('/');
    return { k: 'ipaddr', dir, only: 'both', ip, bits: bits === undefined ? 32 : Number(bits) };
  }
  return { k: 'ipaddr', dir, only: 'both', ip: w[i], bits: 32 };
}

const ethV = new EthernetView();
const vlanV = new VlanView();
const ipV = new Ipv4View();
const arpV = new ArpView();

interface RefFrame {
  ok: boolean; // Ethernet header + tags complete
  etherType: number;
  vid: number; // outermost, -1 untagged
  pcp: number;
  l3: number;
  l3len: number;
}

function refL2(buf: Uint8Array, off: number, len: number): RefFrame {
  const r: RefFrame = { ok: false, etherType: -1, vid: -1, pcp: -1, l3: 0, l3len: 0 };
  if (!ethV.reset(buf, off, len)) return r;
  const isTpid = (t: number): boolean => t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ;
  let et = ethV.etherType;
  let hdr = 14;
  if (isTpid(et)) {
    if (!vlanV.reset(buf, off, len)) return r;
    r.vid = vlanV.vid;
    r.pcp = vlanV.pcp;
    et = vlanV.innerEtherType;
    hdr = 18;
    if (isTpid(et)) {
      if (!vlanV.reset(buf, off + 4, len - 4)) { r.vid = -1; r.pcp = -1; return r; }
      et = vlanV.innerEtherType;
      hdr = 22;
    }
  }
  r.ok = true;
  r.etherType = et;
  r.l3 = off + hdr;
  r.l3len = len - hdr;
  return r;
}

function refEval(n: Ast, buf: Uint8Array, off: number, len: number): boolean {
  const f = refL2(buf, off, len);
  const ipOk = f.ok && f.etherType === ETHERTYPE_IPV4 && ipV.reset(buf, f.l3, f.l3len) && ipV.check();
  const arpOk = f.ok && f.etherType === ETHERTYPE_ARP && arpV.reset(buf, f.l3, f.l3len) && arpV.isEthernetIpv4;
  const l4 = (): { proto: number; off: number; len: number } | null => {
    if (!ipOk) return null;
    ipV.reset(buf, f.l3, f.l3len);
    if (ipV.fragOffset !== 0) return null;
    return { proto: ipV.protocol, off: ipV.payloadOffset, len: ipV.payloadLength };
  };
  const ev = (x: Ast): boolean => {
    switch (x.k) {
      case 'and': return x.a.every(ev);
      case 'or': return x.a.some(ev);
      case 'not': return !ev(x.a);
      case 'mac': {
        if (!f.ok) return false;
        const want = parseMac(x.mac);
        const eq = (o: number): boolean => want.every((b, i) => buf[o + i] === b);
        return x.dir === 'src' ? eq(off + 6) : x.dir === 'dst' ? eq(off) : eq(off) || eq(off + 6);
      }
      case 'bcast': return f.ok && ethV.reset(buf, off, len) && ethV.dstIsBroadcast;
      case 'mcast': return f.ok && ethV.reset(buf, off, len) && ethV.dstIsMulticast;
      case 'vlan': return f.ok && f.vid >= 0;
      case 'vid': return f.ok && f.vid === x.v;
      case 'pcp': return f.ok && f.pcp === x.v;
      case 'etype': return f.ok && f.etherType === x.v;
      case 'len': {
        switch (x.op) {
          case '<': return len < x.v;
          case '<=': return len <= x.v;
          case '>': return len > x.v;
          case '>=': return len >= x.v;
          case '=': return len === x.v;
          default: return len !== x.v;
        }
      }
      case 'ipaddr': {
        const want = parseIp(x.ip);
        const inNet = (a: number): boolean => (x.bits === 0 ? true : a >>> (32 - x.bits) === want >>> (32 - x.bits));
        const pick = (s: number, d: number): boolean => (x.dir === 'src' ? inNet(s) : x.dir === 'dst' ? inNet(d) : inNet(s) || inNet(d));
        if (x.only !== 'arp' && ipOk) {
          ipV.reset(buf, f.l3, f.l3len);
          if (pick(ipV.src, ipV.dst)) return true;
        }
        if (x.only !== 'ip' && arpOk) {
          arpV.reset(buf, f.l3, f.l3len);
          if (pick(arpV.spa, arpV.tpa)) return true;
        }
        return false;
      }
      case 'proto': {
        if (!ipOk) return false;
        ipV.reset(buf, f.l3, f.l3len);
        return ipV.protocol === x.v;
      }
      case 'port': {
        const s = l4();
        if (s === null || s.len < 4) return false;
        if (s.proto !== IPPROTO_TCP && s.proto !== IPPROTO_UDP) return false;
        if (x.proto === 'tcp' && s.proto !== IPPROTO_TCP) return false;
        if (x.proto === 'udp' && s.proto !== IPPROTO_UDP) return false;
        const sp = readU16(buf, s.off);
        const dp = readU16(buf, s.off + 2);
        const inR = (p: number): boolean => p >= x.lo && p <= x.hi;
        return x.dir === 'src' ? inR(sp) : x.dir === 'dst' ? inR(dp) : inR(sp) || inR(dp);
      }
      case 'icmptype': {
        const s = l4();
        return s !== null && s.proto === IPPROTO_ICMP && s.len >= 1 && buf[s.off] === x.v;
      }
    }
  };
  return ev(n);
}

// ---------------------------------------------------------------------------------------
// Randomized: random frames, random expressions, compiled vs reference

const MACS = [M1, M2, GW, BROADCAST, MDNS_MAC];
const IPS = ['10.0.0.5', '10.0.0.7', '10.0.0.1', '10.0.1.9', '192.168.1.1', '200.0.0.1'];
const PORTS = [53, 80, 443, 5353, 40000];

function randomFrame(r: () => number): Uint8Array {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const o = { srcMac: pick(MACS), dstMac: pick(MACS), srcIp: pick(IPS), dstIp: pick(IPS) };
  let f: Uint8Array;
  const kind = Math.floor(r() * 9);
  switch (kind) {
    case 0: f = tcpFrame({ ...o, srcPort: pick(PORTS), dstPort: pick(PORTS), flags: TCP_SYN | TCP_ACK }); break;
    case 1: f = udpFrame({ ...o, srcPort: pick(PORTS), dstPort: pick(PORTS), payload: new Uint8Array(Math.floor(r() * 30)) }); break;
    case 2: f = icmpEcho({ ...o, id: 1, seq: 2, reply: r() < 0.5 }); break;
    case 3: f = ipv4Frame({ ...o, src: o.srcIp, dst: o.dstIp, protocol: IPPROTO_ICMP, l4: buildIcmp({ type: pick([3, 11, 8, 0]), code: 0 }) }); break;
    case 4: f = arpRequest({ srcMac: o.srcMac, srcIp: o.srcIp, targetIp: o.dstIp }); break;
    case 5: f = arpReply(o); break;
    case 6: f = ipv6Frame(o.srcMac, o.dstMac); break;
    case 7: {
      // fragments of TCP/UDP
      const proto = pick([IPPROTO_TCP, IPPROTO_UDP]);
      const l4 = proto === IPPROTO_TCP
        ? buildTcp({ src: o.srcIp, dst: o.dstIp, srcPort: pick(PORTS), dstPort: pick(PORTS), flags: TCP_ACK })
        : buildUdp({ src: o.srcIp, dst: o.dstIp, srcPort: pick(PORTS), dstPort: pick(PORTS) });
      f = ipv4Frame({ ...o, src: o.srcIp, dst: o.dstIp, protocol: proto, l4, fragOffset: pick([0, 0, 1, 185]), flags: pick([0, IPV4_FLAG_MF]) });
      break;
    }
    default: {
      const n = Math.floor(r() * 40);
      f = new Uint8Array(n);
      for (let i = 0; i < n; i++) f[i] = Math.floor(r() * 256);
      if (n >= 14 && r() < 0.5) { f[12] = 0x08; f[13] = pick([0x00, 0x06]); }
    }
  }
  if (r() < 0.3) f = padded(f);
  const tags = Math.floor(r() * 4); // 0..3
  for (let t = 0; t < tags && f.length >= 12 && r() < 0.7; t++) {
    f = tagged(f, pick([0, 1, 10, 100, 4095]), Math.floor(r() * 8), 0, pick([ETHERTYPE_VLAN, ETHERTYPE_QINQ]));
  }
  // corruption
  const c = r();
  if (c < 0.1 && f.length > 0) f[Math.floor(r() * f.length)] = Math.floor(r() * 256);
  else if (c < 0.2) f = f.subarray(0, Math.floor(r() * (f.length + 1)));
  return f;
}

function randomPrimitive(r: () => number): Ast {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const dir = (): Dir => pick(['src', 'dst', 'any'] as const);
  switch (Math.floor(r() * 14)) {
    case 0: return { k: 'mac', dir: dir(), mac: pick(MACS) };
    case 1: return pick([{ k: 'bcast' }, { k: 'mcast' }, { k: 'vlan' }] as Ast[]);
    case 2: return { k: 'etype', v: pick([ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_IPV6, 0x8100]) };
    case 3:
    case 4: return { k: 'ipaddr', dir: dir(), only: pick(['ip', 'arp', 'both', 'both'] as const), ip: pick(IPS), bits: 32 };
    case 5: {
      const bits = pick([0, 1, 8, 16, 24, 31, 32]);
      const a = parseIp(pick(IPS));
      const net = bits === 0 ? 0 : (a & (-1 << (32 - bits))) >>> 0;
      const ip = `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}`;
      return { k: 'ipaddr', dir: dir(), only: pick(['ip', 'arp', 'both'] as const), ip, bits };
    }
    case 6: return { k: 'proto', v: pick([1, 6, 17, 47]) };
    case 7:
    case 8: { const p = pick(PORTS); return { k: 'port', dir: dir(), proto: pick(['tcp', 'udp', 'any'] as const), lo: p, hi: p }; }
    case 9: { const a = pick([0, 53, 80, 1000]); return { k: 'port', dir: dir(), proto: pick(['tcp', 'udp', 'any'] as const), lo: a, hi: a + pick([0, 1, 500, 50000]) }; }
    case 10: return { k: 'vid', v: pick([0, 1, 10, 100, 4095]) };
    case 11: return { k: 'pcp', v: Math.floor(r() * 8) };
    case 12: return { k: 'icmptype', v: pick([0, 3, 8, 11]) };
    default: return { k: 'len', op: pick(['<', '<=', '>', '>=', '=', '!='] as const), v: pick([14, 42, 60, 64, 70]) };
  }
}

function randomAst(r: () => number, depth: number): Ast {
  const x = r();
  if (depth <= 0 || x < 0.35) return randomPrimitive(r);
  if (x < 0.5) return { k: 'not', a: randomAst(r, depth - 1) };
  const n = 2 + Math.floor(r() * 3);
  const a: Ast[] = [];
  for (let i = 0; i < n; i++) a.push(randomAst(r, depth - 1));
  return { k: x < 0.75 ? 'and' : 'or', a };
}

/** Print with random spellings and only the parentheses precedence needs (plus random extra ones). */
function print(n: Ast, r: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const kw = (s: string): string => (r() < 0.2 ? s.toUpperCase() : s);
  const d = (dir: Dir): string => (dir === 'any' ? '' : `${kw(dir)} `);
  const wrap = (s: string, need: boolean): string => (need || r() < 0.1 ? `(${s})` : s);
  switch (n.k) {
    case 'and': return n.a.map((c) => wrap(print(c, r), c.k === 'or')).join(pick([' and ', ' && ', '&&', ' AND ']));
    case 'or': return n.a.map((c) => wrap(print(c, r), false)).join(pick([' or ', ' || ', '||', ' Or ']));
    case 'not': return `${pick(['not ', '!', '! ', 'NOT '])}${wrap(print(n.a, r), n.a.k === 'and' || n.a.k === 'or')}`;
    case 'mac': {
      const mac = r() < 0.3 ? n.mac.toUpperCase().replace(/:/g, '-') : n.mac;
      if (n.dir === 'any') return pick([`ether host ${mac}`, `mac ${mac}`, `host ${mac}`]);
      return pick([`ether ${n.dir} ${mac}`, `ether ${n.dir} host ${mac}`, `${n.dir} ${mac}`, `${n.dir} host ${mac}`]);
    }
    case 'bcast': return pick(['broadcast', 'ether broadcast']);
    case 'mcast': return pick(['multicast', 'ether multicast']);
    case 'vlan': return kw('vlan');
    case 'etype': {
      const names: Record<number, string> = { [ETHERTYPE_IPV4]: 'ip', [ETHERTYPE_ARP]: 'arp', [ETHERTYPE_IPV6]: 'ip6' };
      return names[n.v] !== undefined && r() < 0.7 ? kw(names[n.v]) : `ether proto 0x${n.v.toString(16)}`;
    }
    case 'ipaddr': {
      const pre = n.only === 'both' ? '' : `${n.only} `;
      if (n.bits === 32 && r() < 0.6) return `${pre}${d(n.dir)}${pick(n.dir === 'any' ? ['host '] : ['host ', ''])}${n.ip}`;
      return `${pre}${d(n.dir)}net ${n.ip}${n.bits === 32 && r() < 0.5 ? '' : `/${n.bits}`}`;
    }
    case 'proto': {
      const names: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };
      return names[n.v] !== undefined && r() < 0.6 ? kw(names[n.v]) : pick([`proto ${n.v}`, `ip proto ${n.v}`]);
    }
    case 'port': {
      const pre = n.proto === 'any' ? '' : `${n.proto} `;
      const val = n.lo === n.hi && r() < 0.7 ? `port ${n.lo}` : `portrange ${n.lo}-${n.hi}`;
      return `${pre}${d(n.dir)}${val}`;
    }
    case 'vid': return `vlan ${n.v}`;
    case 'pcp': return `pcp ${n.v}`;
    case 'icmptype': return `icmp-type ${n.v}`;
    case 'len': {
      if (n.op === '<=' && r() < 0.3) return `less ${n.v}`;
      if (n.op === '>=' && r() < 0.3) return `greater ${n.v}`;
      return `len${pick([' ', ''])}${n.op === '=' ? pick(['=', '==']) : n.op}${pick([' ', ''])}${n.v}`;
    }
  }
}

describe('compileFilter: randomized against the reference evaluator', () => {
  it('2000 random expressions x 40 random frames agree', () => {
    const r = rng(0x5eed);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 400; i++) frames.push(randomFrame(r));
    let agree = 0;
    let matched = 0;
    for (let e = 0; e < 2000; e++) {
      let ast = randomAst(r, 4);
      let src = print(ast, r);
      while (src.length > 1024) {
        ast = randomAst(r, 4);
        src = print(ast, r);
      }
      let f: CompiledFilter;
      try {
        f = compileFilter(src);
      } catch (err) {
        throw new Error(`${src}: ${(err as Error).message}`);
      }
      for (let k = 0; k < 40; k++) {
        const frame = frames[Math.floor(r() * frames.length)];
        const off = Math.floor(r() * 8);
        const buf = placeAt(frame, off, 16, Math.floor(r() * 256));
        const got = f.match(buf, off, frame.length);
        const want = refEval(ast, buf, off, frame.length);
        if (got !== want) {
          throw new Error(`disagree on ${JSON.stringify(src)} (want ${want}) for frame ${Buffer.from(frame).toString('hex')}`);
        }
        agree++;
        if (got) matched++;
      }
    }
    expect(agree).toBe(80_000);
    // both answers are well represented
    expect(matched).toBeGreaterThan(10_000);
    expect(agree - matched).toBeGreaterThan(10_000);
  });

  it('every single random primitive agrees on every random frame (incl. truncated prefixes)', () => {
    const r = rng(7);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 150; i++) frames.push(randomFrame(r));
    for (let e = 0; e < 300; e++) {
      const ast = randomPrimitive(r);
      const src = print(ast, r);
      const f = compileFilter(src);
      for (const frame of frames) {
        const cut = Math.floor(r() * (frame.length + 1));
        for (const len of [frame.length, cut]) {
          const got = f.match(frame, 0, len);
          const want = refEval(ast, frame, 0, len);
          if (got !== want) throw new Error(`disagree on ${JSON.stringify(src)} (want ${want}) len ${len} for ${Buffer.from(frame).toString('hex')}`);
        }
      }
    }
  });
});
