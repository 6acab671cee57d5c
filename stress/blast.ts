// The suite's frame generator: `ip netns exec NS node dist/stress/blast.js 'SPEC-JSON'` opens
// an AF_PACKET socket on one interface of that namespace (the project's native addon,
// workers/io.ts) and sends frames with batched sendmmsg, as fast as the kernel takes them or
// at `pps`. It prints one JSON line: {"offered", "sent", "refused", "ms"}.
//
// Kinds (spec.kind):
//   macflood  unicast/broadcast frames, each from a new random source MAC (a MAC flood)
//   flows     UDP datagrams to dstIp:dstPort, one new source port per frame, from each of
//             srcIps in turn (connection-table exhaustion); UDP checksum 0 (none)
//   hostile   a cycle of malformed and hostile frames (runts, bad headers, bad ARP, VLAN
//             tags, fragments, TTL 1, link-local and multicast sources, garbage to the
//             gateway MAC, ...), see hostileFrames()
//   dns       UDP DNS queries to dstIp:53: malformed ones, names it owns, names it forwards
//
// It runs only in the namespace it is started in; nothing here chooses where frames go
// beyond the interface given.

import {
  ARP_OP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN, IPPROTO_ICMP, IPPROTO_TCP,
  IPPROTO_UDP, TCP_SYN, buildArp, buildEthernet, buildIcmpEcho, buildIpv4, buildTcp, buildUdp, makeTci,
} from '../dataplane/wire';
import { KIND_PACKET, loadIo } from '../workers/io';

export interface BlastSpec {
  iface: string;
  kind: 'macflood' | 'flows' | 'hostile' | 'dns';
  /** Frames to send (the run stops at count or seconds, whichever comes first). */
  count: number;
  seconds?: number;
  /** Frames per second at most (default: as fast as possible). */
  pps?: number;
  srcMac: string;
  srcIp: string;
  dstMac: string;
  dstIp: string;
  dstPort?: number;
  /** flows: the source addresses, in turn (default [srcIp]). */
  srcIps?: string[];
  /** flows: spread over this many destination ports from dstPort on (default 1). */
  dstPorts?: number;
  /** The number of distinct frames: frame i is frame i % cycle (default: count). Sending a
   * cycle twice makes sure every flow arrives although the switch's queue may drop some. */
  cycle?: number;
  /** dns: names the switch owns (answered locally). */
  names?: string[];
}

const BATCH = 64;
const SLOT = 2048;

let seed = 0x2545f491;
function rnd(): number {
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return seed >>> 0;
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rnd() & 0xff;
  return b;
}

function vlanTagged(frame: Uint8Array, vid: number, tpid = ETHERTYPE_VLAN): Uint8Array {
  const out = new Uint8Array(frame.length + 4);
  out.set(frame.subarray(0, 12), 0);
  out[12] = tpid >> 8; out[13] = tpid & 0xff;
  const tci = makeTci(vid);
  out[14] = tci >> 8; out[15] = tci & 0xff;
  out.set(frame.subarray(12), 16);
  return out;
}

function dnsQuery(id: number, name: string, qtype = 1): Uint8Array {
  const labels = name.split('.').filter((l) => l !== '');
  const q: number[] = [id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of labels) { q.push(l.length); for (const c of l) q.push(c.charCodeAt(0) & 0x7f); }
  q.push(0, qtype >> 8, qtype & 0xff, 0, 1);
  return Uint8Array.from(q);
}

/** Malformed DNS messages: short headers, pointer loops, huge label lengths, many questions, answers as queries. */
function hostileDns(i: number): Uint8Array {
  switch (i % 8) {
    case 0: return randomBytes(rnd() % 12);                                         // shorter than a header
    case 1: return Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]); // pointer to itself
    case 2: return Uint8Array.from([0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 0x61, 0x62]);       // label runs past the end
    case 3: { const b = dnsQuery(i & 0xffff, 'x.example.test'); b[5] = 200; return b; }       // 200 questions
    case 4: { const b = dnsQuery(i & 0xffff, 'a.b'); b[2] = 0x81; return b; }                 // a response, not a query
    case 5: return randomBytes(12 + (rnd() % 500));
    case 6: { const b = dnsQuery(i & 0xffff, `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`); return b; }
    default: { const b = dnsQuery(i & 0xffff, 'y.example.test'); b[4] = 0; b[5] = 0; return b; } // no question
  }
}

/** A cycle of hostile frames from srcMac/srcIp (see the header). */
function hostileFrames(s: BlastSpec): Uint8Array[] {
  const out: Uint8Array[] = [];
  const ip = (o: { protocol: number; payload: Uint8Array; ttl?: number; flags?: number; fragOffset?: number; dst?: string; src?: string }): Uint8Array =>
    buildEthernet({ dst: s.dstMac, src: s.srcMac, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: o.src ?? s.srcIp, dst: o.dst ?? s.dstIp, protocol: o.protocol, ttl: o.ttl, flags: o.flags, fragOffset: o.fragOffset, payload: o.payload }) });
  for (let k = 0; k < 16; k++) {
    out.push(randomBytes(1 + (rnd() % 13)));                                                            // runt
    out.push(buildEthernet({ dst: s.dstMac, src: '01:00:5e:00:00:01', etherType: ETHERTYPE_IPV4, payload: randomBytes(46) })); // multicast source
    out.push(buildEthernet({ dst: '00:00:00:00:00:00', src: '00:00:00:00:00:00', etherType: 0x1234, payload: randomBytes(46) })); // zero source
    out.push(buildEthernet({ dst: '01:80:c2:00:00:00', src: s.srcMac, etherType: 0x0026, payload: randomBytes(46) })); // STP
    out.push(buildEthernet({ dst: '01:80:c2:00:00:03', src: s.srcMac, etherType: 0x888e, payload: randomBytes(46) })); // 802.1X
    out.push(buildEthernet({ dst: s.dstMac, src: s.srcMac, etherType: ETHERTYPE_IPV6, payload: randomBytes(60) })); // IPv6 to the gateway
    out.push(buildEthernet({ dst: s.dstMac, src: s.srcMac, etherType: ETHERTYPE_IPV4, payload: randomBytes(rnd() % 19) })); // IPv4 shorter than a header
    { const f = ip({ protocol: IPPROTO_UDP, payload: buildUdp({ src: s.srcIp, dst: s.dstIp, srcPort: 1000 + k, dstPort: 9, payload: randomBytes(20) }) });
      f[14] = 0x4f; out.push(f); }                                                                      // IHL 60 > what is there
    { const f = ip({ protocol: IPPROTO_UDP, payload: buildUdp({ src: s.srcIp, dst: s.dstIp, srcPort: 1000 + k, dstPort: 9, payload: randomBytes(20) }) });
      f[16] = 0xff; f[17] = 0xff; out.push(f); }                                                        // total length 65535
    { const f = ip({ protocol: IPPROTO_UDP, payload: buildUdp({ src: s.srcIp, dst: s.dstIp, srcPort: 1000 + k, dstPort: 9, payload: randomBytes(20) }) });
      f[24] ^= 0x55; out.push(f); }                                                                     // bad header checksum
    { const f = ip({ protocol: IPPROTO_UDP, payload: buildUdp({ src: s.srcIp, dst: s.dstIp, srcPort: 2000 + k, dstPort: 9, payload: randomBytes(20) }) });
      f[14] = 0x65; out.push(f); }                                                                      // version 6 in an IPv4 frame
    out.push(ip({ protocol: IPPROTO_UDP, payload: randomBytes(5) }));                                   // UDP shorter than its header
    out.push(ip({ protocol: IPPROTO_TCP, payload: randomBytes(11) }));                                  // TCP shorter than its header
    { const t = buildTcp({ src: s.srcIp, dst: s.dstIp, srcPort: 3000 + k, dstPort: 80, flags: TCP_SYN });
      t[12] = 0xf0; out.push(ip({ protocol: IPPROTO_TCP, payload: t })); }                             // TCP data offset 60 > segment
    out.push(ip({ protocol: IPPROTO_ICMP, payload: randomBytes(3) }));                                  // ICMP shorter than its header
    out.push(ip({ protocol: IPPROTO_ICMP, payload: buildIcmpEcho({ type: 8, id: k, seq: k }), ttl: 1 })); // TTL 1: time exceeded
    out.push(ip({ protocol: IPPROTO_UDP, payload: randomBytes(40), flags: 1, fragOffset: 0 }));         // first fragment
    out.push(ip({ protocol: IPPROTO_UDP, payload: randomBytes(40), fragOffset: 100 + k }));             // later fragment
    out.push(ip({ protocol: 47, payload: randomBytes(40) }));                                           // GRE: NAT cannot carry it
    out.push(ip({ protocol: IPPROTO_UDP, payload: buildUdp({ src: s.srcIp, dst: s.dstIp, srcPort: 53, dstPort: 53, payload: hostileDns(k) }) }));
    out.push(ip({ protocol: IPPROTO_UDP, dst: '255.255.255.255', payload: buildUdp({ src: s.srcIp, dst: '255.255.255.255', srcPort: 68, dstPort: 67, payload: randomBytes(30) }) }));
    out.push(ip({ protocol: IPPROTO_UDP, dst: '224.0.0.251', payload: buildUdp({ src: s.srcIp, dst: '224.0.0.251', srcPort: 5353, dstPort: 5353, payload: randomBytes(30) }) }));
    out.push(ip({ protocol: IPPROTO_TCP, payload: buildTcp({ src: s.srcIp, dst: s.dstIp, srcPort: 4000 + k, dstPort: 80, flags: 0xff }) })); // every TCP flag
    out.push(buildEthernet({ dst: 'ff:ff:ff:ff:ff:ff', src: s.srcMac, etherType: ETHERTYPE_ARP, payload: randomBytes(rnd() % 28) })); // ARP cut short
    { const a = buildArp({ op: ARP_OP_REQUEST, sha: s.srcMac, spa: s.srcIp, tpa: s.dstIp }); a[1] = 6; a[4] = 8;
      out.push(buildEthernet({ dst: 'ff:ff:ff:ff:ff:ff', src: s.srcMac, etherType: ETHERTYPE_ARP, payload: a })); } // not Ethernet/IPv4
    out.push(buildEthernet({ dst: 'ff:ff:ff:ff:ff:ff', src: s.srcMac, etherType: ETHERTYPE_ARP,
      payload: buildArp({ op: 7, sha: s.srcMac, spa: s.srcIp, tpa: s.dstIp }) }));                     // unknown opcode
    out.push(buildEthernet({ dst: 'ff:ff:ff:ff:ff:ff', src: s.srcMac, etherType: ETHERTYPE_ARP,
      payload: buildArp({ op: ARP_OP_REQUEST, sha: 'ff:ff:ff:ff:ff:ff', spa: s.dstIp, tpa: s.srcIp }) })); // claims the gateway with a broadcast MAC
    const plain = buildEthernet({ dst: s.dstMac, src: s.srcMac, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src: s.srcIp, dst: s.dstIp, protocol: IPPROTO_ICMP, payload: buildIcmpEcho({ type: 8, id: 99, seq: k }) }) });
    out.push(vlanTagged(plain, 1 + (k % 4094)));                                                        // tagged on an access port
    out.push(vlanTagged(vlanTagged(plain, 10), 20, ETHERTYPE_QINQ));                                    // QinQ
    out.push(vlanTagged(plain, 0));                                                                     // priority tag
    // (A frame whose 802.1Q tag is cut short is not sent: the receiving kernel drops it while
    // untagging, before any packet socket sees it, so no switch can count it.)
    out.push(buildEthernet({ dst: s.dstMac, src: s.srcMac, etherType: rnd() & 0xffff, payload: randomBytes(46 + (rnd() % 1400)) })); // garbage
    out.push(buildEthernet({ dst: randomMac(false), src: s.srcMac, etherType: ETHERTYPE_IPV4, payload: randomBytes(20 + (rnd() % 200)) })); // unknown unicast garbage
  }
  return out;
}

function randomMac(local: boolean): string {
  const b = randomBytes(6);
  b[0] = local ? ((b[0] & 0xfe) | 0x02) : (b[0] & 0xfe);
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function macBytes(mac: string): number[] {
  return mac.split(':').map((x) => parseInt(x, 16));
}

function main(): void {
  const s = JSON.parse(process.argv[2]) as BlastSpec;
  const io = loadIo();
  const { fd } = io.openPacket(s.iface, false, false);
  const buf = new Uint8Array(BATCH * SLOT);
  const offs = new Int32Array(BATCH);
  const lens = new Int32Array(BATCH);
  for (let i = 0; i < BATCH; i++) offs[i] = i * SLOT;

  let fill: (i: number, at: number) => number;
  if (s.kind === 'macflood') {
    const dst = macBytes(s.dstMac);
    const payload = randomBytes(46);
    fill = (i, at) => {
      // Half to the victim's MAC (unicast), half broadcast; every source MAC new (locally administered unicast).
      const d = (i & 1) === 0 ? dst : [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
      for (let k = 0; k < 6; k++) buf[at + k] = d[k];
      const r = rnd();
      buf[at + 6] = 0x02; buf[at + 7] = (i >>> 24) & 0xff; buf[at + 8] = (i >>> 16) & 0xff;
      buf[at + 9] = (i >>> 8) & 0xff; buf[at + 10] = i & 0xff; buf[at + 11] = r & 0xff;
      buf[at + 12] = 0x88; buf[at + 13] = 0xb5; // local experimental EtherType
      buf.set(payload, at + 14);
      return 60;
    };
  } else if (s.kind === 'flows') {
    const srcs = s.srcIps ?? [s.srcIp];
    const templates = srcs.map((src) => buildEthernet({ dst: s.dstMac, src: s.srcMac, etherType: ETHERTYPE_IPV4,
      payload: buildIpv4({ src, dst: s.dstIp, protocol: IPPROTO_UDP,
        payload: buildUdp({ src, dst: s.dstIp, srcPort: 1, dstPort: s.dstPort ?? 9, payload: new Uint8Array(18), checksum: false }) }) }));
    const cycle = s.cycle ?? s.count;
    fill = (j, at) => {
      const i = j % cycle;
      const t = templates[i % templates.length];
      buf.set(t, at);
      const n = Math.floor(i / templates.length);
      const sport = 1024 + (n % 64000);
      buf[at + 34] = sport >> 8; buf[at + 35] = sport & 0xff;
      const dport = (s.dstPort ?? 9) + (n % (s.dstPorts ?? 1)) + Math.floor(n / 64000);
      buf[at + 36] = dport >> 8; buf[at + 37] = dport & 0xff;
      return t.length;
    };
  } else {
    const frames = s.kind === 'hostile' ? hostileFrames(s) : (() => {
      const out: Uint8Array[] = [];
      const names = s.names ?? [];
      for (let k = 0; k < 256; k++) {
        const q = k % 4 === 0 ? hostileDns(k) : k % 4 === 1 && names.length > 0 ? dnsQuery(k, names[k % names.length])
          : k % 4 === 2 ? dnsQuery(k, `h${k}.example.test`) : dnsQuery(k, `nx${k}.invalid`, 28);
        out.push(buildEthernet({ dst: s.dstMac, src: s.srcMac, etherType: ETHERTYPE_IPV4,
          payload: buildIpv4({ src: s.srcIp, dst: s.dstIp, protocol: IPPROTO_UDP,
            payload: buildUdp({ src: s.srcIp, dst: s.dstIp, srcPort: 10000 + k, dstPort: 53, payload: q }) }) }));
      }
      return out;
    })();
    fill = (i, at) => {
      const f = frames[i % frames.length];
      const n = Math.min(f.length, SLOT);
      buf.set(f.subarray(0, n), at);
      return n;
    };
  }

  const t0 = Date.now();
  const stopAt = s.seconds ? t0 + s.seconds * 1000 : Infinity;
  let sent = 0;
  let refused = 0;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let offered = 0;
  while (offered < s.count && Date.now() < stopAt) {
    const n = Math.min(BATCH, s.count - offered);
    for (let j = 0; j < n; j++) lens[j] = fill(offered + j, offs[j]);
    // send() returns fewer than asked when the socket is full (retry after a breath) or
    // when the kernel refused a frame (EINVAL/EMSGSIZE: skipped, never taken): after three
    // tries the rest of the batch counts as refused.
    let done = 0;
    for (let tries = 0; done < n && tries < 3; tries++) {
      done += io.send(fd, KIND_PACKET, buf, offs.subarray(done), lens.subarray(done), n - done);
      if (done < n) Atomics.wait(pause, 0, 0, 1);
    }
    refused += n - done;
    offered += n;
    sent += done;
    if (s.pps) {
      const due = t0 + (sent / s.pps) * 1000;
      const wait = due - Date.now();
      if (wait > 0) Atomics.wait(pause, 0, 0, wait);
    }
  }
  io.close(fd);
  process.stdout.write(`${JSON.stringify({ offered, sent, refused, ms: Date.now() - t0 })}\n`);
}

if (require.main === module) main();
