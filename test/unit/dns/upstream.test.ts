import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseQuery, type ParsedQuery } from '../../../dataplane/dns/message';
import { Forwarder, LengthPrefixedReader, parseUpstream, readResolvConf } from '../../../control/dns/upstream';
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
