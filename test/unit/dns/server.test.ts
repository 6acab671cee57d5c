import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { QTYPE, RCODE } from '../../../dataplane/dns/message';
import { DnsRegistry } from '../../../dataplane/dns/registry';
import { DnsServer, DNS_RESULTS, TCP_CUTS, type DnsServerOptions } from '../../../control/dns/server';
import { decode, fakeAnswer, fakeUpstream, makeQuery, mutate, prng, type Decoded, type FakeHandler, type FakeUpstream } from './helpers';
import { waitFor } from '../../fixtures/harness';

const NETS = ['front'];

function registry(): DnsRegistry {
  const r = new DnsRegistry();
  r.setNetwork('front', 'rotate');
  r.setNetwork('back', 'fixed');
  r.addEndpoint('front', 'web1', '10.1.0.2', ['web']);
  r.addEndpoint('front', 'web2', '10.1.0.3', ['web']);
  r.addEndpoint('back', 'db', '10.2.0.2', []);
  return r;
}

const servers: DnsServer[] = [];
const fakes: FakeUpstream[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const f of fakes.splice(0)) await f.close();
});

function server(opts: Partial<DnsServerOptions> = {}): DnsServer {
  const s = new DnsServer({ registry: registry(), upstreams: [], timeoutMs: 200, ...opts });
  servers.push(s);
  return s;
}

async function withUpstream(h: FakeHandler, opts: Partial<DnsServerOptions> = {}): Promise<{ s: DnsServer; up: FakeUpstream }> {
  const up = await fakeUpstream(h);
  fakes.push(up);
  return { s: server({ upstreams: [{ host: '127.0.0.1', port: up.port }], ...opts }), up };
}

async function ask(s: DnsServer, msg: Uint8Array, nets = NETS, transport: 'udp' | 'tcp' = 'udp'): Promise<Decoded> {
  const r = await s.handle(msg, nets, transport);
  if (r === null) throw new Error('dropped');
  return decode(r);
}

describe('DnsServer.handle: local names', () => {
  it('A for a local name: every address, TTL 600, authoritative, rotating', async () => {
    const s = server();
    const firsts = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const r = await ask(s, makeQuery('web', QTYPE.A, { id: 100 + i }));
      expect(r).toMatchObject({ id: 100 + i, qr: true, aa: true, ra: true, rd: true, tc: false, rcode: RCODE.NOERROR });
      expect(r.answers.map((a) => a.ttl)).toEqual([600, 600]);
      expect([...r.answers.map((a) => a.data)].sort()).toEqual(['10.1.0.2', '10.1.0.3']);
      firsts.add(r.answers[0].data);
    }
    expect(firsts.size).toBe(2);
    expect(s.counters.local).toBe(2);
  });

  it('NAME.NET, any letter case, custom TTL; the answer echoes the client case', async () => {
    const s = server({ ttl: 30 });
    const r = await ask(s, makeQuery('WEB1.Front', QTYPE.A));
    expect(r.answers).toMatchObject([{ name: 'WEB1.Front', type: 1, ttl: 30, data: '10.1.0.2' }]);
  });

  it('ANY for a local name answers its A records', async () => {
    const r = await ask(server(), makeQuery('web1', QTYPE.ANY));
    expect(r.answers.map((a) => a.data)).toEqual(['10.1.0.2']);
  });

  it.each([QTYPE.AAAA, QTYPE.MX, QTYPE.TXT, QTYPE.SOA, QTYPE.CNAME, 65])('type %d for a local name: empty NOERROR', async (type) => {
    const s = server();
    const r = await ask(s, makeQuery('web1', type));
    expect(r).toMatchObject({ rcode: RCODE.NOERROR, aa: true, answers: [] });
    expect(s.counters.local).toBe(1);
  });

  it('an unknown name under a client network: NXDOMAIN, not forwarded', async () => {
    const { s, up } = await withUpstream((m) => [fakeAnswer(m)]);
    const r = await ask(s, makeQuery('nosuch.front', QTYPE.A));
    expect(r).toMatchObject({ rcode: RCODE.NXDOMAIN, aa: true, answers: [] });
    expect((await ask(s, makeQuery('x.nosuch.FRONT', QTYPE.AAAA))).rcode).toBe(RCODE.NXDOMAIN);
    expect(up.udpQueries.length).toBe(0);
    expect(s.counters.nxdomain).toBe(2);
  });

  it('names of networks the client is not attached to are not visible (forwarded)', async () => {
    const { s, up } = await withUpstream((m) => [fakeAnswer(m, { rcode: RCODE.NXDOMAIN, addrs: [] })]);
    const r = await ask(s, makeQuery('db', QTYPE.A));
    expect(r.rcode).toBe(RCODE.NXDOMAIN);
    expect(r.aa).toBe(false);
    expect(up.udpQueries.length).toBe(1);
    expect((await ask(s, makeQuery('db', QTYPE.A), ['back'])).answers[0].data).toBe('10.2.0.2');
  });

  it('PTR of a container address in the client networks: container.network', async () => {
    const s = server();
    const r = await ask(s, makeQuery('2.0.1.10.in-addr.arpa', QTYPE.PTR));
    expect(r).toMatchObject({ rcode: RCODE.NOERROR, aa: true });
    expect(r.answers).toMatchObject([{ name: '2.0.1.10.in-addr.arpa', type: QTYPE.PTR, ttl: 600, data: 'web1.front' }]);
  });

  it('PTR of other addresses is forwarded', async () => {
    const { s, up } = await withUpstream((m) => [fakeAnswer(m, { rcode: RCODE.NXDOMAIN, addrs: [] })]);
    expect((await ask(s, makeQuery('2.0.2.10.in-addr.arpa', QTYPE.PTR))).rcode).toBe(RCODE.NXDOMAIN);
    expect((await ask(s, makeQuery('8.8.8.8.in-addr.arpa', QTYPE.PTR))).rcode).toBe(RCODE.NXDOMAIN);
    expect(up.udpQueries.length).toBe(2);
  });

  it('REFUSED for a client with no networks (not an open resolver)', async () => {
    const { s, up } = await withUpstream((m) => [fakeAnswer(m)]);
    expect((await ask(s, makeQuery('example.com'), [])).rcode).toBe(RCODE.REFUSED);
    expect((await ask(s, makeQuery('web'), [])).rcode).toBe(RCODE.REFUSED);
    expect(up.udpQueries.length).toBe(0);
    expect(s.counters.refused).toBe(2);
  });

  it('follows registry changes', async () => {
    const reg = registry();
    const s = server({ registry: reg });
    reg.addEndpoint('front', 'web3', '10.1.0.4', ['web']);
    expect((await ask(s, makeQuery('web'))).answers.length).toBe(3);
    reg.removeEndpoint('front', 'web1');
    reg.removeEndpoint('front', 'web2');
    expect((await ask(s, makeQuery('web'))).answers.map((a) => a.data)).toEqual(['10.1.0.4']);
  });
});

describe('DnsServer.handle: size limits', () => {
  function crowded(): DnsRegistry {
    const r = new DnsRegistry();
    r.setNetwork('front', 'fixed');
    for (let i = 0; i < 60; i++) r.addEndpoint('front', `c${i}`, `10.1.${i}.2`, ['many']);
    return r;
  }

  it('UDP without EDNS: 512 bytes, TC set, the answers that fit', async () => {
    const bytes = (await server({ registry: crowded() }).handle(makeQuery('many'), NETS, 'udp')) as Uint8Array;
    expect(bytes.length).toBeLessThanOrEqual(512);
    const r = decode(bytes);
    expect(r.tc).toBe(true);
    expect(r.answers.length).toBe(30); // (512 - 12 - 10) / 16
  });

  it('UDP with EDNS: up to the client size, at most maxUdpSize; an OPT in the answer', async () => {
    const s = server({ registry: crowded() });
    const r = await ask(s, makeQuery('many', QTYPE.A, { edns: 4096 }));
    expect(r.tc).toBe(false);
    expect(r.answers.length).toBe(60);
    expect(r.opt?.udpSize).toBe(4096);
    const small = server({ registry: crowded(), maxUdpSize: 600 });
    const bytes = (await small.handle(makeQuery('many', QTYPE.A, { edns: 4096 }), NETS, 'udp')) as Uint8Array;
    expect(bytes.length).toBeLessThanOrEqual(600);
    expect(decode(bytes)).toMatchObject({ tc: true, opt: { udpSize: 600 } });
  });

  it('TCP: everything', async () => {
    const r = await ask(server({ registry: crowded() }), makeQuery('many'), NETS, 'tcp');
    expect(r.tc).toBe(false);
    expect(r.answers.length).toBe(60);
  });

  it('a forwarded answer too big for the UDP client becomes an empty TC answer', async () => {
    const many = Array.from({ length: 100 }, (_, i) => `10.0.${i}.1`);
    const { s } = await withUpstream((m) => [fakeAnswer(m, { addrs: many })]);
    const r = await ask(s, makeQuery('big.example'));
    expect(r).toMatchObject({ id: 0x1234, tc: true, rcode: 0, answers: [] });
    expect(r.questions[0].name).toBe('big.example');
    const t = await ask(s, makeQuery('big.example'), NETS, 'tcp');
    expect(t.answers.length).toBe(100);
  });
});

describe('DnsServer.handle: forwarding', () => {
  it('forwards unknown names and returns the upstream answer under the client ID', async () => {
    const { s, up } = await withUpstream((m) => [fakeAnswer(m, { addrs: ['203.0.113.7'] })]);
    const r = await ask(s, makeQuery('www.example.test', QTYPE.A, { id: 4321 }));
    expect(r.id).toBe(4321);
    expect(r.answers.map((a) => a.data)).toEqual(['203.0.113.7']);
    expect(up.udpQueries.length).toBe(1);
    expect(s.counters.forwarded).toBe(1);
  });

  it('SERVFAIL without upstreams', async () => {
    const s = server();
    const r = await ask(s, makeQuery('www.example.test', QTYPE.A, { id: 9 }));
    expect(r).toMatchObject({ id: 9, rcode: RCODE.SERVFAIL, questions: [{ name: 'www.example.test' }] });
    expect(s.counters.servfail).toBe(1);
  });

  it('SERVFAIL when the upstream does not answer (after the timeout)', async () => {
    const { s } = await withUpstream(() => null, { timeoutMs: 100 });
    const t0 = Date.now();
    expect((await ask(s, makeQuery('www.example.test'))).rcode).toBe(RCODE.SERVFAIL);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
  });

  it('SERVFAIL when only spoofed answers come back', async () => {
    const { s } = await withUpstream((m) => [fakeAnswer(m, { id: m.readUInt16BE(0) ^ 0x0101 })], { timeoutMs: 100 });
    expect((await ask(s, makeQuery('www.example.test'))).rcode).toBe(RCODE.SERVFAIL);
  });

  it('over TCP a truncated UDP answer is fetched again over TCP; over UDP the TC answer goes back', async () => {
    const { s, up } = await withUpstream((m, via) => [via === 'udp' ? fakeAnswer(m, { tc: true, addrs: [] }) : fakeAnswer(m, { addrs: ['1.2.3.4'] })]);
    const u = await ask(s, makeQuery('www.example.test'), NETS, 'udp');
    expect(u).toMatchObject({ tc: true, answers: [] });
    expect(up.tcpQueries.length).toBe(0);
    const t = await ask(s, makeQuery('www.example.test'), NETS, 'tcp');
    expect(t).toMatchObject({ tc: false });
    expect(t.answers.map((a) => a.data)).toEqual(['1.2.3.4']);
    expect(up.tcpQueries.length).toBe(1);
  });

  it('SERVFAIL at once past maxInFlight', async () => {
    const { s } = await withUpstream(() => null, { timeoutMs: 300, maxInFlight: 1 });
    const first = s.handle(makeQuery('a.example'), NETS, 'udp');
    expect(s.inFlight()).toBe(1);
    const t0 = Date.now();
    expect((await ask(s, makeQuery('b.example'))).rcode).toBe(RCODE.SERVFAIL);
    expect(Date.now() - t0).toBeLessThan(150);
    expect(decode((await first) as Uint8Array).rcode).toBe(RCODE.SERVFAIL);
  });

  it('setUpstreams takes effect for the next query', async () => {
    const s = server();
    const up = await fakeUpstream((m) => [fakeAnswer(m)]);
    fakes.push(up);
    s.setUpstreams([{ host: '127.0.0.1', port: up.port }]);
    expect((await ask(s, makeQuery('www.example.test'))).rcode).toBe(RCODE.NOERROR);
  });
});

describe('DnsServer.handle: bad queries', () => {
  it('drops short messages and responses, counted', async () => {
    const s = server();
    expect(await s.handle(new Uint8Array(5), NETS, 'udp')).toBeNull();
    const resp = makeQuery('web');
    resp[2] |= 0x80;
    expect(await s.handle(resp, NETS, 'udp')).toBeNull();
    expect(s.counters.dropped).toBe(2);
  });

  it('FORMERR and NOTIMP, counted, with the query ID', async () => {
    const s = server();
    const two = makeQuery('web', QTYPE.A, { id: 77 });
    two[5] = 2;
    expect(await ask(s, two)).toMatchObject({ id: 77, qr: true, rcode: RCODE.FORMERR });
    expect(await ask(s, makeQuery('web', QTYPE.A, { id: 78, opcode: 2 }))).toMatchObject({ id: 78, rcode: RCODE.NOTIMP });
    expect(await ask(s, makeQuery('version.bind', QTYPE.TXT, { id: 79, cls: 3 }))).toMatchObject({ id: 79, rcode: RCODE.NOTIMP });
    expect(await ask(s, makeQuery('web', QTYPE.A, { id: 80, edns: 1232, ednsVersion: 2 }))).toMatchObject({ id: 80, rcode: 0, opt: { extRcode: 1 } });
    expect(s.counters).toMatchObject({ formerr: 2, notimp: 2 });
  });

  it('the counters name every result, and what TCP cut', () => {
    expect(Object.keys(server().counters).sort()).toEqual([...DNS_RESULTS, ...TCP_CUTS].sort());
  });

  it('fuzz: thousands of random and mutated messages; never a throw, each answer well-formed with the query ID', async () => {
    const s = server(); // no upstreams: anything forwarded is an immediate SERVFAIL
    const rnd = prng(7);
    const seeds = [
      makeQuery('web'),
      makeQuery('web1.front', QTYPE.AAAA, { edns: 1232 }),
      makeQuery('2.0.1.10.in-addr.arpa', QTYPE.PTR),
      makeQuery('x.front', QTYPE.MX, { edns: 4096, ednsData: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8] }),
      makeQuery('example.com'),
    ];
    let answered = 0;
    for (let i = 0; i < 6000; i++) {
      const msg = i % 3 === 0
        ? Uint8Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256))
        : mutate(seeds[i % seeds.length], rnd);
      const transport = rnd() < 0.5 ? 'udp' : 'tcp';
      const out = await s.handle(msg, rnd() < 0.1 ? [] : ['front', 'back'], transport);
      if (out === null) continue;
      answered++;
      const d = decode(out);
      expect(d.qr).toBe(true);
      expect(d.id).toBe((msg[0] << 8) | msg[1]);
      expect(d.questions.length).toBeLessThanOrEqual(1);
      if (transport === 'udp') expect(out.length).toBeLessThanOrEqual(4096);
    }
    expect(answered).toBeGreaterThan(2000);
    const total = Object.values(s.counters).reduce((a, b) => a + b, 0);
    expect(total).toBe(6000);
  });
});

describe('DnsServer.listenTcp (a real client on 127.0.0.1)', () => {
  function frame(msg: Uint8Array): Buffer {
    const f = Buffer.alloc(2 + msg.length);
    f.writeUInt16BE(msg.length, 0);
    f.set(msg, 2);
    return f;
  }

  /** Connect; collect framed answers; resolves helpers. */
  async function connect(port: number): Promise<{ sock: net.Socket; answers: Decoded[]; closed: Promise<void>; next(n: number): Promise<Decoded[]> }> {
    const sock = net.createConnection({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    sock.on('error', () => undefined);
    const answers: Decoded[] = [];
    let buf = Buffer.alloc(0);
    const waiters: (() => void)[] = [];
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        answers.push(decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      waiters.splice(0).forEach((w) => w());
    });
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    const next = async (n: number): Promise<Decoded[]> => {
      while (answers.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
      return answers.splice(0, n);
    };
    return { sock, answers, closed, next };
  }

  /** listening(), and how many connections the listener holds open (net.Server getConnections). */
  async function listeningWithCount(s: DnsServer): Promise<{ port: number; open(): Promise<number> }> {
    const srv = await s.listenTcp('127.0.0.1', 0, () => NETS);
    return {
      port: (srv.address() as net.AddressInfo).port,
      open: () => new Promise((resolve, reject) => srv.getConnections((e, n) => (e ? reject(e) : resolve(n)))),
    };
  }

  async function listening(s: DnsServer, netsOf: (ip: string) => string[] = () => NETS): Promise<number> {
    const srv = await s.listenTcp('127.0.0.1', 0, netsOf);
    return (srv.address() as net.AddressInfo).port;
  }

  it('answers several queries on one connection, however the bytes are split', async () => {
    const s = server();
    const seen: string[] = [];
    const port = await listening(s, (ip) => {
      seen.push(ip);
      return NETS;
    });
    const c = await connect(port);
    // two queries in one write
    c.sock.write(Buffer.concat([frame(makeQuery('web1', QTYPE.A, { id: 1 })), frame(makeQuery('web2', QTYPE.A, { id: 2 }))]));
    const [a, b] = (await c.next(2)).sort((x, y) => x.id - y.id);
    expect(a.answers.map((r) => r.data)).toEqual(['10.1.0.2']);
    expect(b.answers.map((r) => r.data)).toEqual(['10.1.0.3']);
    // one query a byte at a time
    for (const byte of frame(makeQuery('web1.front', QTYPE.A, { id: 3 }))) {
      c.sock.write(Uint8Array.of(byte));
      await new Promise((r) => setImmediate(r));
    }
    expect((await c.next(1))[0]).toMatchObject({ id: 3, answers: [{ data: '10.1.0.2' }] });
    expect(seen[0]).toBe('127.0.0.1');
    c.sock.destroy();
  });

  it('big local answers are not truncated over TCP', async () => {
    const reg = new DnsRegistry();
    for (let i = 0; i < 200; i++) reg.addEndpoint('front', `c${i}`, `10.1.${i}.2`, ['many']);
    const s = server({ registry: reg });
    const c = await connect(await listening(s));
    c.sock.write(frame(makeQuery('many')));
    const [r] = await c.next(1);
    expect(r.tc).toBe(false);
    expect(r.answers.length).toBe(200);
    c.sock.destroy();
  });

  it('REFUSED when netsOf knows no networks for the client (or throws)', async () => {
    const s = server();
    const c = await connect(await listening(s, () => []));
    c.sock.write(frame(makeQuery('web')));
    expect((await c.next(1))[0].rcode).toBe(RCODE.REFUSED);
    c.sock.destroy();
    const c2 = await connect(await listening(s, () => {
      throw new Error('boom');
    }));
    c2.sock.write(frame(makeQuery('web')));
    expect((await c2.next(1))[0].rcode).toBe(RCODE.REFUSED);
    c2.sock.destroy();
  });

  it('FORMERR keeps the connection; an undecodable message closes it', async () => {
    const s = server();
    const c = await connect(await listening(s));
    const bad = makeQuery('web', QTYPE.A, { id: 5 });
    bad[5] = 0; // QDCOUNT 0
    c.sock.write(frame(bad));
    expect((await c.next(1))[0]).toMatchObject({ id: 5, rcode: RCODE.FORMERR });
    c.sock.write(frame(makeQuery('web1', QTYPE.A, { id: 6 })));
    expect((await c.next(1))[0].id).toBe(6);
    c.sock.write(frame(Uint8Array.of(1, 2, 3))); // too short to answer
    await c.closed;
    expect(s.counters.dropped).toBe(1);
  });

  it('closes idle connections', async () => {
    const s = server({ tcpIdleMs: 100 });
    const c = await connect(await listening(s));
    const t0 = Date.now();
    await c.closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(80);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('a half-sent message does not keep a connection past the idle timeout', async () => {
    const s = server({ tcpIdleMs: 150 });
    const c = await connect(await listening(s));
    c.sock.write(Buffer.from([0xff, 0xff, 1, 2, 3])); // announces 65535 bytes, sends 3
    await c.closed;
  });

  it('accepts at most tcpMaxConnections at once', async () => {
    const s = server({ tcpMaxConnections: 2 });
    const { port, open } = await listeningWithCount(s);
    const a = await connect(port);
    const b = await connect(port);
    await waitFor('the server to hold both connections', async () => (await open()) === 2, { timeoutMs: 5_000, intervalMs: 5 });
    const c = await connect(port);
    await c.closed; // the third is closed at once
    a.sock.write(frame(makeQuery('web1', QTYPE.A, { id: 11 })));
    expect((await a.next(1))[0].id).toBe(11);
    a.sock.destroy();
    await a.closed;
    await waitFor('the server to see a close', async () => (await open()) === 1, { timeoutMs: 5_000, intervalMs: 5 });
    const d = await connect(port); // a slot is free again
    d.sock.write(frame(makeQuery('web2', QTYPE.A, { id: 12 })));
    expect((await d.next(1))[0].id).toBe(12);
    b.sock.destroy();
    d.sock.destroy();
  });

  it('accepts at most tcpMaxPerClient connections from one address', async () => {
    const s = server({ tcpMaxPerClient: 1 });
    const { port, open } = await listeningWithCount(s);
    const a = await connect(port);
    await waitFor('the server to hold the first connection', async () => (await open()) === 1, { timeoutMs: 5_000, intervalMs: 5 });
    const b = await connect(port);
    await b.closed;
    a.sock.write(frame(makeQuery('web1', QTYPE.A, { id: 13 })));
    expect((await a.next(1))[0].id).toBe(13);
    a.sock.destroy();
    await a.closed;
    await waitFor('the server to see both closes', async () => (await open()) === 0, { timeoutMs: 5_000, intervalMs: 5 });
    const c = await connect(port);
    c.sock.write(frame(makeQuery('web1', QTYPE.A, { id: 14 })));
    expect((await c.next(1))[0].id).toBe(14);
    c.sock.destroy();
  });

  /** connect() from a local address of its own (127.0.0.0/8 is all loopback): another client. */
  async function connectFrom(port: number, localAddress: string): Promise<Awaited<ReturnType<typeof connect>>> {
    const sock = net.createConnection({ host: '127.0.0.1', port, localAddress });
    sock.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    const answers: Decoded[] = [];
    let buf = Buffer.alloc(0);
    const waiters: (() => void)[] = [];
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        answers.push(decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      waiters.splice(0).forEach((w) => w());
    });
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    const next = async (n: number): Promise<Decoded[]> => {
      while (answers.length < n) {
        if (sock.destroyed) throw new Error('the server closed the connection');
        await new Promise<void>((resolve) => { waiters.push(resolve); sock.once('close', () => resolve()); });
      }
      return answers.splice(0, n);
    };
    return { sock, answers, closed, next };
  }

  /**
   * Slowloris: from each address, `per` connections that each send one byte of a query every
   * `everyMs`, and reconnect as soon as the server closes one. stop() ends it all.
   */
  function slowloris(port: number, addrs: string[], per: number, everyMs: number): { stop(): void; open(): number } {
    const bytes = frame(makeQuery('web1'));
    const socks = new Map<net.Socket, number>();
    let stopped = false;
    const open = (local: string): void => {
      if (stopped) return;
      const sock = net.createConnection({ host: '127.0.0.1', port, localAddress: local });
      sock.on('error', () => undefined);
      sock.once('connect', () => socks.set(sock, 0));
      sock.once('close', () => { socks.delete(sock); setImmediate(() => open(local)); });
    };
    for (const a of addrs) for (let i = 0; i < per; i++) open(a);
    const tick = setInterval(() => {
      for (const [sock, at] of socks) {
        sock.write(bytes.subarray(at % bytes.length, (at % bytes.length) + 1));
        socks.set(sock, at + 1);
      }
    }, everyMs);
    return {
      stop() { stopped = true; clearInterval(tick); for (const sock of socks.keys()) sock.destroy(); },
      open: () => socks.size,
    };
  }

  it('a message trickled a byte at a time is cut at its deadline, however often bytes come', async () => {
    const s = server({ tcpIdleMs: 5_000, tcpQueryDeadlineMs: 300 });
    const c = await connect(await listening(s));
    const bytes = frame(makeQuery('web1'));
    let i = 0;
    const t0 = Date.now();
    const tick = setInterval(() => { if (i < bytes.length) c.sock.write(bytes.subarray(i, ++i)); }, 40);
    try {
      await c.closed;
    } finally {
      clearInterval(tick);
    }
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(Date.now() - t0).toBeLessThan(2_000); // the idle time (5 s) never restarted
    expect(i).toBeLessThan(bytes.length);
    expect(s.counters['tcp-deadline']).toBe(1);
  });

  it('the first message must come within the deadline from accept; a quick client keeps its connection', async () => {
    const s = server({ tcpIdleMs: 5_000, tcpQueryDeadlineMs: 200 });
    const port = await listening(s);
    const silent = await connect(port);
    const quick = await connect(port);
    quick.sock.write(frame(makeQuery('web1', QTYPE.A, { id: 21 })));
    expect((await quick.next(1))[0].id).toBe(21);
    await silent.closed;
    // Past the deadline of its accept, the quick one is idle (5 s), not cut.
    quick.sock.write(frame(makeQuery('web2', QTYPE.A, { id: 22 })));
    expect((await quick.next(1))[0].id).toBe(22);
    expect(s.counters['tcp-deadline']).toBe(1);
    quick.sock.destroy();
  });

  it('a full table: a newcomer evicts from the client holding the most, the others keep theirs', async () => {
    const s = server({ tcpMaxConnections: 4, tcpMaxPerClient: 3 });
    const { port, open } = await listeningWithCount(s);
    const a = [await connectFrom(port, '127.0.0.2'), await connectFrom(port, '127.0.0.2'), await connectFrom(port, '127.0.0.2')];
    const b = await connectFrom(port, '127.0.0.3');
    await waitFor('the server to hold 4 connections', async () => (await open()) === 4, { timeoutMs: 5_000, intervalMs: 5 });
    const c = await connectFrom(port, '127.0.0.4');
    await a[0].closed; // the oldest of the client with 3
    c.sock.write(frame(makeQuery('web1', QTYPE.A, { id: 31 })));
    expect((await c.next(1))[0].id).toBe(31);
    b.sock.write(frame(makeQuery('web2', QTYPE.A, { id: 32 })));
    expect((await b.next(1))[0].id).toBe(32);
    // a 2, b 1, c 1: b (holding 1) evicts from a (holding 2) ...
    const b2 = await connectFrom(port, '127.0.0.3');
    await Promise.race([a[1].closed, a[2].closed]);
    // ... a 1, b 2, c 1: b (holding 2) finds nobody holding more than 2: refused.
    const b3 = await connectFrom(port, '127.0.0.3');
    await b3.closed;
    expect(s.counters['tcp-evicted']).toBe(2);
    expect(s.counters['tcp-refused']).toBe(1);
    for (const x of [...a, b, b2, c]) x.sock.destroy();
  });

  it('slowloris: 4 clients x 16 connections trickling bytes cannot keep a fifth client from being answered', async () => {
    const s = server({ tcpIdleMs: 3_000, tcpQueryDeadlineMs: 1_500 });
    const { port, open } = await listeningWithCount(s);
    const attack = slowloris(port, ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'], 16, 100);
    try {
      await waitFor('the attackers to hold all 64 slots', async () => (await open()) === 64 && attack.open() >= 64,
        { timeoutMs: 10_000, intervalMs: 20 });
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        const c = await connectFrom(port, '127.0.0.6');
        c.sock.write(frame(makeQuery('web1', QTYPE.A, { id: 40 + i })));
        expect((await c.next(1))[0]).toMatchObject({ id: 40 + i, answers: [{ data: '10.1.0.2' }] });
        times.push(Date.now() - t0);
        c.sock.destroy();
        await c.closed;
      }
      expect(Math.max(...times)).toBeLessThan(1_000); // well inside the deadline: not a slot freed by a cut
      await waitFor('the attackers to be cut at their deadline', () => s.counters['tcp-deadline'] > 0, { timeoutMs: 5_000, intervalMs: 20 });
      expect(s.counters['tcp-evicted']).toBeGreaterThanOrEqual(5);
    } finally {
      attack.stop();
    }
  }, 30_000);

  it('rejects when the port cannot be bound', async () => {
    const s = server();
    const port = await listening(s);
    await expect(s.listenTcp('127.0.0.1', port, () => NETS)).rejects.toThrow(/EADDRINUSE/);
  });

  it('close() stops the listener and closes the connections', async () => {
    const s = server();
    const port = await listening(s);
    const c = await connect(port);
    await s.close();
    await c.closed;
    await expect(connect(port)).rejects.toThrow(/ECONNREFUSED/);
  });
});
