import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseQuery, type ParsedQuery } from '../../../dataplane/dns/message';
import { Forwarder, LengthPrefixedReader, parseUpstream, readResolvConf, type Upstream } from '../../../control/dns/upstream';
import { UplinkUdpTransport, type UplinkAddress } from '../../../control/dns/uplink';
import { Neigh, NEIGH_DEFAULTS, UPLINK_NET } from '../../../dataplane/tables/neigh';
import { CT_FORWARDER_PORT_MAX, CT_FORWARDER_PORT_MIN, Conntrack } from '../../../dataplane/tables/conntrack';
import {
  ARP_OP_REQUEST, ArpView, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetView, IPPROTO_ICMP, IPPROTO_UDP, Ipv4View, UdpView,
  buildEthernet, buildIpv4, fold, ipToString, macHi, macLo, macToString, onesSum, parseIp, parseMac,
} from '../../../dataplane/wire';
import { udpFrame } from '../../fixtures/frames';
import { waitFor } from '../../fixtures/harness';
import { closedUdpPort, decode, fakeAnswer, fakeUpstream, makeQuery, type FakeHandler, type FakeUpstream } from './helpers';

function parsed(msg: Uint8Array): ParsedQuery {
  const r = parseQuery(msg);
  if (!r.ok) throw new Error(r.reason);
  return r.query;
}

describe('parseUpstream', () => {
  it.each([
    ['1.1.1.1', { host: '1.1.1.1', port: 53 }],
    ['127.0.0.53', { host: '127.0.0.53', port: 53 }],
    [' 10.0.0.1:5353 ', { host: '10.0.0.1', port: 5353 }],
    ['10.0.0.1:65535', { host: '10.0.0.1', port: 65535 }],
  ])('%j', (text, up) => {
    expect(parseUpstream(text)).toEqual(up);
  });

  it.each(['', 'dns.google', '1.1.1', '1.1.1.1:', '1.1.1.1:0', '1.1.1.1:65536', '1.1.1.1:053', '1.1.1.1:53:53', '::1', '[::1]:53', '256.1.1.1'])(
    'refuses %j with a clear message',
    (text) => {
      expect(() => parseUpstream(text)).toThrow(/invalid DNS server .*expected IPv4 or IPv4:PORT/);
    },
  );
});

describe('readResolvConf', () => {
  let dir = '';
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = '';
  });

  it('reads IPv4 nameserver lines, in order, without duplicates, ignoring the rest', () => {
    dir = mkdtempSync(join(tmpdir(), 'vsw-dns-'));
    const file = join(dir, 'resolv.conf');
    writeFileSync(file, [
      '# generated',
      'search example.com',
      'nameserver 127.0.0.53',
      'nameserver   10.0.0.1   # office',
      'nameserver 2001:db8::1',
      '; nameserver 9.9.9.9',
      'nameserver 10.0.0.1',
      'nameserver',
      'nameserver not-an-ip',
      'options edns0 trust-ad',
      'nameserver\t8.8.8.8',
    ].join('\n'));
    expect(readResolvConf(file)).toEqual([
      { host: '127.0.0.53', port: 53 },
      { host: '10.0.0.1', port: 53 },
      { host: '8.8.8.8', port: 53 },
    ]);
  });

  it('returns [] for a file that cannot be read', () => {
    expect(readResolvConf('/nonexistent/resolv.conf')).toEqual([]);
  });
});

describe('LengthPrefixedReader', () => {
  it('splits messages however the bytes arrive', () => {
    const stream = Buffer.from([0, 3, 1, 2, 3, 0, 0, 0, 2, 9, 8, 0, 1]);
    const whole = new LengthPrefixedReader().push(stream);
    expect(whole.map((b) => [...b])).toEqual([[1, 2, 3], [], [9, 8]]);
    const r = new LengthPrefixedReader();
    const got: number[][] = [];
    for (const byte of stream) got.push(...r.push(Uint8Array.of(byte)).map((b) => [...b]));
    expect(got).toEqual([[1, 2, 3], [], [9, 8]]);
    expect(r.buffered).toBe(2); // the start of the last message
  });
});

describe('Forwarder (against a fake upstream on 127.0.0.1)', () => {
  const fakes: FakeUpstream[] = [];
  const forwarders: Forwarder[] = [];
  afterEach(async () => {
    for (const f of forwarders.splice(0)) f.close();
    for (const f of fakes.splice(0)) await f.close();
  });
  async function fake(h: FakeHandler): Promise<FakeUpstream> {
    const f = await fakeUpstream(h);
    fakes.push(f);
    return f;
  }
  function forwarder(ports: number[], timeoutMs = 300, maxInFlight?: number): Forwarder {
    const f = new Forwarder({ upstreams: ports.map((port) => ({ host: '127.0.0.1', port })), timeoutMs, maxInFlight });
    forwarders.push(f);
    return f;
  }
  const query = makeQuery('www.example.test', 1, { id: 0x5151 });
  const q = parsed(query);

  it('forwards with a fresh random ID and gives back the answer under the client ID', async () => {
    const up = await fake((m) => [fakeAnswer(m, { addrs: ['203.0.113.7'] })]);
    const f = forwarder([up.port]);
    const ids = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const a = await f.forward(query, q);
      expect(a).not.toBeNull();
      const d = decode(a as Uint8Array);
      expect(d.id).toBe(0x5151);
      expect(d.answers.map((r) => r.data)).toEqual(['203.0.113.7']);
      ids.add(up.udpQueries[i].readUInt16BE(0));
      // apart from the ID, the query went out unchanged
      expect([...up.udpQueries[i].subarray(2)]).toEqual([...query.subarray(2)]);
    }
    expect(ids.size).toBeGreaterThan(1); // 4 random 16-bit IDs, all equal: 2^-48
    expect(f.inFlight()).toBe(0);
  });

  it('copies the query before returning, so the caller may reuse its buffer', async () => {
    const up = await fake((m) => [fakeAnswer(m)]);
    const f = forwarder([up.port]);
    const buf = Uint8Array.from(query);
    const p = f.forward(buf, q);
    buf.fill(0);
    expect(decode((await p) as Uint8Array).questions[0].name).toBe('www.example.test');
  });

  it('null after the timeout when the upstream does not answer', async () => {
    const up = await fake(() => null);
    const f = forwarder([up.port], 150);
    const t0 = Date.now();
    expect(await f.forward(query, q)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(up.udpQueries.length).toBe(1);
  });

  it('tries the next upstream after a timeout', async () => {
    const silent = await fake(() => null);
    const good = await fake((m) => [fakeAnswer(m, { addrs: ['198.51.100.1'] })]);
    const f = forwarder([silent.port, good.port], 150);
    const d = decode((await f.forward(query, q)) as Uint8Array);
    expect(d.answers[0].data).toBe('198.51.100.1');
    expect(silent.udpQueries.length).toBe(1);
  });

  it('fails fast on a port with nothing listening (ICMP port unreachable) and moves on', async () => {
    const good = await fake((m) => [fakeAnswer(m)]);
    const f = forwarder([await closedUdpPort(), good.port], 5000);
    const t0 = Date.now();
    expect(await f.forward(query, q)).not.toBeNull();
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('ignores answers with a wrong ID or a wrong question, accepts the right one after them', async () => {
    const up = await fake((m) => {
      const id = m.readUInt16BE(0);
      return [
        fakeAnswer(m, { id: id ^ 1, addrs: ['6.6.6.6'] }),
        fakeAnswer(m, { name: 'www.evil.test', addrs: ['6.6.6.7'] }),
        fakeAnswer(m, { name: 'www.example.tesu', addrs: ['6.6.6.8'] }),
        Buffer.from(m), // the query itself (QR clear)
        Buffer.from([1, 2, 3]),
        fakeAnswer(m, { addrs: ['203.0.113.7'] }),
      ];
    });
    const f = forwarder([up.port]);
    const d = decode((await f.forward(query, q)) as Uint8Array);
    expect(d.answers.map((r) => r.data)).toEqual(['203.0.113.7']);
  });

  it('accepts the question in any letter case (the upstream may echo 0x20 case)', async () => {
    const up = await fake((m) => [fakeAnswer(m, { name: 'WWW.Example.TEST' })]);
    const f = forwarder([up.port]);
    expect(await f.forward(query, q)).not.toBeNull();
  });

  it('null when only spoofed answers arrive', async () => {
    const up = await fake((m) => [fakeAnswer(m, { id: m.readUInt16BE(0) ^ 0x8000 }), fakeAnswer(m, { name: 'other.test' })]);
    const f = forwarder([up.port], 150);
    expect(await f.forward(query, q)).toBeNull();
  });

  it('retries over TCP when the UDP answer is truncated', async () => {
    const many = Array.from({ length: 50 }, (_, i) => `10.0.${i}.1`);
    const up = await fake((m, via) => [via === 'udp' ? fakeAnswer(m, { tc: true, addrs: [] }) : fakeAnswer(m, { addrs: many })]);
    const f = forwarder([up.port]);
    const d = decode((await f.forward(query, q)) as Uint8Array);
    expect(d.tc).toBe(false);
    expect(d.id).toBe(0x5151);
    expect(d.answers.length).toBe(50);
    expect(up.tcpQueries.length).toBe(1);
  });

  it('returns the TC answer as is with retryTcp false, or when the TCP retry fails', async () => {
    const up = await fake((m, via) => (via === 'udp' ? [fakeAnswer(m, { tc: true, addrs: [] })] : [fakeAnswer(m, { id: 0 }), fakeAnswer(m, { id: 1 })]));
    const f = forwarder([up.port]);
    const noRetry = decode((await f.forward(query, q, { retryTcp: false })) as Uint8Array);
    expect(noRetry).toMatchObject({ id: 0x5151, tc: true });
    expect(up.tcpQueries.length).toBe(0);
    // TCP answers with a wrong ID (well, almost surely): falls back to the TC answer
    const fallback = decode((await f.forward(query, q)) as Uint8Array);
    expect(fallback).toMatchObject({ id: 0x5151, tc: true });
    expect(up.tcpQueries.length).toBe(1);
  });

  it('bounds the queries in flight; the extra one gets null at once', async () => {
    const up = await fake(() => null);
    const f = forwarder([up.port], 200, 2);
    const a = f.forward(query, q);
    const b = f.forward(query, q);
    expect(f.inFlight()).toBe(2);
    const t0 = Date.now();
    expect(await f.forward(query, q)).toBeNull();
    expect(Date.now() - t0).toBeLessThan(100);
    expect(await Promise.all([a, b])).toEqual([null, null]);
    expect(f.inFlight()).toBe(0);
    expect(up.udpQueries.length).toBe(2);
  });

  it('null without upstreams; setUpstreams replaces them', async () => {
    const f = forwarder([]);
    expect(await f.forward(query, q)).toBeNull();
    const up = await fake((m) => [fakeAnswer(m)]);
    f.setUpstreams([{ host: '127.0.0.1', port: up.port }]);
    expect(f.getUpstreams()).toEqual([{ host: '127.0.0.1', port: up.port }]);
    expect(await f.forward(query, q)).not.toBeNull();
  });

  it('close() ends the tries under way (null) and refuses new ones', async () => {
    const up = await fake(() => null);
    const f = forwarder([up.port], 10_000);
    const p = f.forward(query, q);
    // A try under way: the upstream has the query (and never answers it).
    await waitFor('the upstream to receive the query', () => up.udpQueries.length === 1, { timeoutMs: 5_000, intervalMs: 5 });
    const t0 = Date.now();
    f.close();
    expect(await p).toBeNull();
    expect(Date.now() - t0).toBeLessThan(500);
    expect(await f.forward(query, q)).toBeNull();
    expect(f.inFlight()).toBe(0);
  });

  it('close() right after forward() (before the socket connected) is safe', async () => {
    const up = await fake((m) => [fakeAnswer(m)]);
    const f = forwarder([up.port]);
    const p = f.forward(query, q);
    f.close();
    expect(await p).toBeNull();
    expect(f.inFlight()).toBe(0);
    // The closed forwarder's socket connects late (a lookup, then the connect event) and must
    // neither throw nor send. A second forwarder's full round trip to the same upstream comes
    // after that event, so by then the upstream has seen every query it will get: only one.
    const g = forwarder([up.port]);
    expect(await g.forward(query, q)).not.toBeNull();
    g.close();
    expect(up.udpQueries.length).toBe(1);
  });
});

describe('UplinkUdpTransport (queries out of the uplink, answers punted back)', () => {
  const UP_IP = '198.51.100.2';
  const UP_MAC = '52:54:00:00:00:02';
  const GW = '198.51.100.1';
  const GW_MAC = '52:54:00:00:00:01';
  const FAR = '192.0.2.53';          // a resolver behind the gateway
  const NEAR = '198.51.100.53';      // a resolver on the uplink subnet
  const NEAR_MAC = '52:54:00:00:00:35';
  const NOW = 1000;
  const num = (t: string): number => parseIp(t) >>> 0;
  const forwarders: Forwarder[] = [];
  afterEach(() => { for (const f of forwarders.splice(0)) f.close(); });

  function setup() {
    const neigh = new Neigh({ ...NEIGH_DEFAULTS, maxEntries: 16 });
    const sent: { port: number; frame: Uint8Array }[] = [];
    const ct = new Conntrack({ maxEntries: 16, maxPerSource: 16, portMin: 1024, portMax: 65535 });
    const host = { neigh, ct, now: () => NOW, sendFrame: (port: number, frame: Uint8Array) => { sent.push({ port, frame: frame.slice() }); return true; } };
    const mac = parseMac(UP_MAC);
    const addr: UplinkAddress = { portId: 9, ip: num(UP_IP), mask: 0xffffff00, gateway: num(GW), macHi: macHi(mac, 0), macLo: macLo(mac, 0) };
    const t = new UplinkUdpTransport(host, addr);
    const learn = (ip: string, m: string) => { const b = parseMac(m); neigh.learn(UPLINK_NET, num(ip), macHi(b, 0), macLo(b, 0), NOW); };
    const fwd = (server: string, timeoutMs = 500): Forwarder => {
      const up: Upstream = { host: server, port: 53, transport: t };
      const f = new Forwarder({ upstreams: [up], timeoutMs });
      forwarders.push(f);
      return f;
    };
    return { neigh, ct, sent, t, learn, fwd };
  }

  /** The UDP query frames sent, parsed (checksums are the sender's business: checked by the integration test's resolver). */
  function queries(sent: { port: number; frame: Uint8Array }[]) {
    const eth = new EthernetView();
    const ip = new Ipv4View();
    const udp = new UdpView();
    return sent.filter((s) => eth.reset(s.frame, 0, s.frame.length) && eth.etherType === ETHERTYPE_IPV4).map((s) => {
      expect(ip.reset(s.frame, 14, s.frame.length - 14) && ip.check()).toBe(true);
      expect(ip.protocol).toBe(IPPROTO_UDP);
      expect(udp.reset(s.frame, ip.payloadOffset, ip.payloadLength) && udp.check()).toBe(true);
      return {
        port: s.port, dstMac: macToString(s.frame, 0), srcMac: macToString(s.frame, 6), src: ipToString(ip.src), dst: ipToString(ip.dst),
        sport: udp.srcPort, dport: udp.dstPort, msg: Buffer.from(s.frame.subarray(udp.payloadOffset, udp.payloadOffset + udp.payloadLength)),
      };
    });
  }

  /** An answer as it comes back from the uplink (the frame the dataplane punts). */
  function answerFrame(o: { src: string; sport: number; dport: number; payload: Uint8Array; dst?: string }): Uint8Array {
    return udpFrame({ srcMac: GW_MAC, dstMac: UP_MAC, srcIp: o.src, dstIp: o.dst ?? UP_IP, srcPort: o.sport, dstPort: o.dport, payload: o.payload });
  }

  const query = makeQuery('www.example.test', 1, { id: 0x5151 });
  const q = parsed(query);

  it('sends from the uplink address and a random port of the range, to the gateway MAC; the answer comes back under the client ID', async () => {
    const s = setup();
    s.learn(GW, GW_MAC);
    const pending = s.fwd(FAR).forward(query, q);
    await waitFor('the query frame', () => queries(s.sent).length === 1);
    const [sq] = queries(s.sent);
    expect(sq).toMatchObject({ port: 9, dstMac: GW_MAC, srcMac: UP_MAC, src: UP_IP, dst: FAR, dport: 53 });
    expect(sq.sport).toBeGreaterThanOrEqual(CT_FORWARDER_PORT_MIN);
    expect(sq.sport).toBeLessThanOrEqual(CT_FORWARDER_PORT_MAX);
    expect([...sq.msg.subarray(2)]).toEqual([...query.subarray(2)]);
    // The workers see the port in use (they punt only answers to such a port).
    expect(s.ct.forwarderPortInUse(sq.sport)).toBe(true);
    expect(new Conntrack(s.ct.cfg, s.ct.sab).forwarderPortInUse(sq.sport)).toBe(true); // another thread's view
    expect(s.ct.forwarderPortInUse(sq.sport === CT_FORWARDER_PORT_MAX ? sq.sport - 1 : sq.sport + 1)).toBe(false);
    s.t.deliver(answerFrame({ src: FAR, sport: 53, dport: sq.sport, payload: fakeAnswer(sq.msg, { addrs: ['203.0.113.7'] }) }));
    const d = decode((await pending) as Uint8Array);
    expect(d.id).toBe(0x5151);
    expect(d.answers.map((r) => r.data)).toEqual(['203.0.113.7']);
    expect(s.t.counters).toEqual({ sent: 1, matched: 1, unmatched: 0, failed: 0, refused: 0 });
    expect(s.t.inFlight).toBe(0);
    expect(s.ct.forwarderPortInUse(sq.sport)).toBe(false);
  });

  it('drops and counts what does not match (source, ports, ID, question, not UDP), accepts the right answer after', async () => {
    const s = setup();
    s.learn(GW, GW_MAC);
    const pending = s.fwd(FAR).forward(query, q);
    await waitFor('the query frame', () => queries(s.sent).length === 1);
    const [sq] = queries(s.sent);
    const good = fakeAnswer(sq.msg, { addrs: ['203.0.113.7'] });
    const id = sq.msg.readUInt16BE(0);
    const wrong = [
      answerFrame({ src: '192.0.2.99', sport: 53, dport: sq.sport, payload: good }),             // another source address
      answerFrame({ src: FAR, sport: 5353, dport: sq.sport, payload: good }),                    // another source port
      answerFrame({ src: FAR, sport: 53, dport: sq.sport === CT_FORWARDER_PORT_MAX ? sq.sport - 1 : sq.sport + 1, payload: good }), // no try there
      answerFrame({ src: FAR, sport: 53, dport: sq.sport, dst: '198.51.100.3', payload: good }), // not the uplink address
      answerFrame({ src: FAR, sport: 53, dport: sq.sport, payload: fakeAnswer(sq.msg, { id: id ^ 1, addrs: ['6.6.6.6'] }) }), // wrong ID
      answerFrame({ src: FAR, sport: 53, dport: sq.sport, payload: fakeAnswer(sq.msg, { name: 'www.evil.test', addrs: ['6.6.6.7'] }) }), // wrong question
      new Uint8Array(20),                                                                       // not even IPv4
    ];
    for (const f of wrong) s.t.deliver(f);
    expect(s.t.counters).toMatchObject({ matched: 0, unmatched: wrong.length });
    s.t.deliver(answerFrame({ src: FAR, sport: 53, dport: sq.sport, payload: good }));
    const d = decode((await pending) as Uint8Array);
    expect(d.answers.map((r) => r.data)).toEqual(['203.0.113.7']);
    expect(s.t.counters).toEqual({ sent: 1, matched: 1, unmatched: wrong.length, failed: 0, refused: 0 });
    // After the try: even the right answer again is unmatched.
    s.t.deliver(answerFrame({ src: FAR, sport: 53, dport: sq.sport, payload: good }));
    expect(s.t.counters.unmatched).toBe(wrong.length + 1);
  });

  it('only spoofed answers: null after the timeout, every one counted', async () => {
    const s = setup();
    s.learn(GW, GW_MAC);
    const pending = s.fwd(FAR, 200).forward(query, q);
    await waitFor('the query frame', () => queries(s.sent).length === 1);
    const [sq] = queries(s.sent);
    for (let i = 0; i < 3; i++) {
      s.t.deliver(answerFrame({ src: FAR, sport: 53, dport: sq.sport, payload: fakeAnswer(sq.msg, { id: sq.msg.readUInt16BE(0) ^ (i + 1) }) }));
    }
    expect(await pending).toBeNull();
    expect(s.t.counters).toEqual({ sent: 1, matched: 0, unmatched: 3, failed: 0, refused: 0 });
  });

  it('a resolver on the uplink subnet whose MAC is unknown: ARP first, the query once it answers', async () => {
    const s = setup();
    s.learn(GW, GW_MAC);
    const pending = s.fwd(NEAR, 1000).forward(query, q);
    // An ARP request who-has NEAR, from the uplink address; no query yet.
    const arp = new ArpView();
    await waitFor('the ARP request', () => s.sent.length === 1);
    const f = s.sent[0].frame;
    expect(new EthernetView().reset(f, 0, f.length) && readEtherType(f)).toBe(ETHERTYPE_ARP);
    expect(arp.reset(f, 14, f.length - 14)).toBe(true);
    expect({ op: arp.op, spa: ipToString(arp.spa), tpa: ipToString(arp.tpa), dst: macToString(f, 0) })
      .toEqual({ op: ARP_OP_REQUEST, spa: UP_IP, tpa: NEAR, dst: 'ff:ff:ff:ff:ff:ff' });
    expect(queries(s.sent)).toEqual([]);
    // The neighbour answers (a worker learns it): the query goes, straight to it.
    s.learn(NEAR, NEAR_MAC);
    await waitFor('the query frame', () => queries(s.sent).length === 1);
    const [sq] = queries(s.sent);
    expect(sq).toMatchObject({ dstMac: NEAR_MAC, dst: NEAR, src: UP_IP });
    s.t.deliver(answerFrame({ src: NEAR, sport: 53, dport: sq.sport, payload: fakeAnswer(sq.msg) }));
    expect(await pending).not.toBeNull();
    expect(s.t.counters).toEqual({ sent: 1, matched: 1, unmatched: 0, failed: 0, refused: 0 });
  });

  it('a next hop that never answers ARP: null after the try timeout, counted as failed, nothing sent but ARP', async () => {
    const s = setup();
    const t0 = Date.now();
    expect(await s.fwd(FAR, 150).forward(query, q)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(queries(s.sent)).toEqual([]);
    expect(s.sent.length).toBe(1); // one ARP request for the gateway (the table's rate limit: 1/s)
    expect(s.t.counters).toEqual({ sent: 0, matched: 0, unmatched: 0, failed: 1, refused: 0 });
    expect(s.t.inFlight).toBe(0);
  });

  it('tries at once use different source ports; a full range fails the try at once (failed)', async () => {
    const s = setup();
    s.learn(GW, GW_MAC);
    const mac = parseMac(UP_MAC);
    const small = new UplinkUdpTransport({ neigh: s.neigh, ct: s.ct, now: () => NOW, sendFrame: () => true },
      { portId: 9, ip: num(UP_IP), mask: 0xffffff00, gateway: num(GW), macHi: macHi(mac, 0), macLo: macLo(mac, 0) }, { min: 61500, max: 61501 });
    const f = new Forwarder({ upstreams: [{ host: FAR, port: 53, transport: small }], timeoutMs: 200 });
    forwarders.push(f);
    const a = f.forward(query, q);
    const b = f.forward(query, q);
    await waitFor('two tries', () => small.inFlight === 2);
    const t0 = Date.now();
    expect(await f.forward(query, q)).toBeNull();
    expect(Date.now() - t0).toBeLessThan(100);
    expect(small.counters).toMatchObject({ sent: 2, failed: 1 });
    expect(await a).toBeNull();
    expect(await b).toBeNull();
  });

  it('an ICMP port unreachable about the query ends the try at once (refused); other ICMP errors do not', async () => {
    const s = setup();
    s.learn(GW, GW_MAC);
    const f = s.fwd(FAR, 3000);
    const t0 = Date.now();
    const pending = f.forward(query, q);
    await waitFor('the query frame', () => queries(s.sent).length === 1);
    const sent = s.sent[s.sent.length - 1].frame;
    // The error quotes our query's IP header and 8 bytes of UDP.
    const quote = sent.subarray(14, 14 + 28);
    const icmp = (type: number, code: number, src = FAR): Uint8Array =>
      icmpErrorFrame({ srcMac: GW_MAC, dstMac: UP_MAC, srcIp: src, dstIp: UP_IP, type, code, quote });
    s.t.deliver(icmp(11, 0));       // time exceeded: ignored, as Linux does for UDP
    s.t.deliver(icmp(3, 1));        // host unreachable: likewise
    const other = Uint8Array.from(quote);
    other[20 + 2] ^= 0x10;          // about another port of ours, with no try
    s.t.deliver(icmpErrorFrame({ srcMac: GW_MAC, dstMac: UP_MAC, srcIp: FAR, dstIp: UP_IP, type: 3, code: 3, quote: other }));
    expect(s.t.counters).toMatchObject({ unmatched: 3, refused: 0 });
    s.t.deliver(icmp(3, 3, GW));    // port unreachable (from whichever router): the try ends
    expect(await pending).toBeNull();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(s.t.counters).toEqual({ sent: 1, matched: 0, unmatched: 3, failed: 0, refused: 1 });
  });

  it('close() ends the tries waiting for ARP', async () => {
    const s = setup();
    const f = s.fwd(FAR, 5000);
    const pending = f.forward(query, q);
    await waitFor('the try', () => s.t.inFlight === 1);
    f.close();
    expect(await pending).toBeNull();
    expect(s.t.inFlight).toBe(0);
  });
});

describe('Forwarder: an upstream without a transport goes through the host stack, counted', () => {
  it('counts a port with nothing listening as refused', async () => {
    const port = await closedUdpPort();
    const f = new Forwarder({ upstreams: [{ host: '127.0.0.1', port }], timeoutMs: 2000 });
    try {
      const query = makeQuery('www.example.test', 1, { id: 7 });
      expect(await f.forward(query, parsed(query))).toBeNull();
      expect(f.host.counters).toMatchObject({ sent: 1, refused: 1 });
    } finally {
      f.close();
    }
  });

  it('counts sent and matched on the forwarder\'s host transport', async () => {
    const up = await fakeUpstream((m) => [fakeAnswer(m, { id: m.readUInt16BE(0) ^ 1 }), fakeAnswer(m)]);
    const f = new Forwarder({ upstreams: [{ host: '127.0.0.1', port: up.port }], timeoutMs: 500 });
    try {
      const query = makeQuery('www.example.test', 1, { id: 7 });
      expect(await f.forward(query, parsed(query))).not.toBeNull();
      expect(f.host.counters).toEqual({ sent: 1, matched: 1, unmatched: 1, failed: 0, refused: 0 });
    } finally {
      f.close();
      await up.close();
    }
  });
});

/** An ICMP error (type, code) quoting `quote`, as it arrives from the uplink. */
function icmpErrorFrame(o: { srcMac: string; dstMac: string; srcIp: string; dstIp: string; type: number; code: number; quote: Uint8Array }): Uint8Array {
  const icmp = new Uint8Array(8 + o.quote.length);
  icmp[0] = o.type;
  icmp[1] = o.code;
  icmp.set(o.quote, 8);
  const c = ~fold(onesSum(icmp, 0, icmp.length)) & 0xffff;
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  return buildEthernet({ dst: o.dstMac, src: o.srcMac, etherType: ETHERTYPE_IPV4, payload: buildIpv4({ src: o.srcIp, dst: o.dstIp, protocol: IPPROTO_ICMP, payload: icmp }) });
}

function readEtherType(f: Uint8Array): number {
  return (f[12] << 8) | f[13];
}
