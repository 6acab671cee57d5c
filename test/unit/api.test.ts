import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES, startApi, STREAM_QUEUE_BYTES, streamSkipped, type ApiServer } from '../../control/api';
import { Client } from '../../control/client';
import { VswError } from '../../control/errors';
import type {
  ConntrackEntryInfo, ContainerInfo, DaemonInfo, EndpointInfo, FdbEntryInfo, NeighEntryInfo, NetworkInfo, PortStatsInfo, VswEvent,
} from '../../control/types';
import { waitFor } from '../fixtures/harness';
import { FakeEngine } from '../fixtures/fake-engine';

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-api-')); });
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

/** A raw request, for what the Client never sends (bad JSON, wrong methods, huge bodies). */
function raw(sock: string, method: string, p: string, body?: string | Buffer, headers: http.OutgoingHttpHeaders = {}):
Promise<{ status: number; headers: http.IncomingHttpHeaders; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, method, path: p, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function rejection(p: Promise<unknown>): Promise<VswError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(VswError);
    return e as VswError;
  }
  throw new Error('expected the request to fail');
}

describe('API over a Unix socket', () => {
  let engine: FakeEngine;
  let api: ApiServer;
  let sock: string;
  let client: Client;
  let n = 0;

  beforeEach(async () => {
    engine = new FakeEngine();
    sock = path.join(tmp, `run${n++}`, 'vsw.sock');
    api = await startApi(engine, sock);
    client = new Client(sock);
  });
  afterEach(async () => { await api.close(); });

  it('creates the directory 0700 and the socket 0600', () => {
    expect(fs.statSync(path.dirname(sock)).mode & 0o777).toBe(0o700);
    const st = fs.statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  /** A streaming GET read to its end: the body and the trailers. */
  function stream(p: string): Promise<{ status: number; body: Buffer; trailers: NodeJS.Dict<string> }> {
    return new Promise((resolve, reject) => {
      const req = http.get({ socketPath: sock, path: p, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), trailers: res.trailers }));
      });
      req.on('error', reject);
    });
  }

  it('GET /capture?count=N: a pcap of N frames, then the lost count as a trailer; stage and filter reach the engine', async () => {
    engine.portStats = [{ id: 1, name: 'vswab', network: 'bridge', rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: {} }];
    engine.captureFrames = [new Uint8Array(60).fill(1), new Uint8Array(64).fill(2), new Uint8Array(70).fill(3)];
    engine.streamLost = 7;
    const r = await stream('/capture?port=vswab&count=2&stage=post-nat&filter=icmp');
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(24 + (16 + 60) + (16 + 64));   // header + two records
    expect(r.trailers['x-vsw-lost']).toBe('7');
    expect(engine.calls.find((c) => c[0] === 'startCapture')).toEqual(['startCapture', 'vswab', { stage: 'post-nat', filter: 'icmp' }]);
  });

  it('GET /capture?all=1: NDJSON lines naming each frame\'s port and direction; no port, stage or direction with it', async () => {
    engine.captureFrames = [new Uint8Array(60).fill(1), new Uint8Array(64).fill(2)];
    const r = await stream('/capture?all=1&count=2&filter=icmp');
    expect(r.status).toBe(200);
    expect(r.body.toString().trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { port: 'vswab', dir: 'in', timeMs: 1_700_000_000_000, frame: '01'.repeat(60) },
      { port: 'vswcd', dir: 'out', timeMs: 1_700_000_000_001, frame: '02'.repeat(64) },
    ]);
    expect(engine.calls.find((c) => c[0] === 'startCaptureAll')).toEqual(['startCaptureAll', { filter: 'icmp' }]);
    expect((await raw(sock, 'GET', '/capture?all=1&port=vswab')).json.error.message).toMatch(/no port, stage or direction/);
    expect((await raw(sock, 'GET', '/capture?port=vswab&direction=sideways')).json.error.message).toBe('direction must be one of in, out, both');
  });

  it('POST /inject: NDJSON progress lines and the summary; a bad request is an ordinary error, a late failure a last error line', async () => {
    engine.portStats = [{ id: 1, name: 'vswab', network: 'bridge', rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: {} }];
    const post = (body: object): Promise<{ status: number; lines: any[] }> => new Promise((resolve, reject) => {
      const text = JSON.stringify(body);
      const req = http.request({ socketPath: sock, method: 'POST', path: '/inject', agent: false, headers: { 'content-type': 'application/json', 'content-length': text.length } }, (res) => {
        let t = '';
        res.on('data', (d) => { t += d; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, lines: t.trim().split('\n').map((l) => JSON.parse(l)) }));
      });
      req.on('error', reject);
      req.end(text);
    });
    const ok = await post({ port: 'vswab', pcap: '/x.pcap', timing: 'rate', rate: 10, loop: 2, filter: 'icmp' });
    expect(ok.status).toBe(200);
    expect(ok.lines.map((l) => l.type)).toEqual(['progress', 'progress', 'summary']);
    expect(ok.lines[2]).toMatchObject({ sent: 2, forwarded: 1, dropped: { reflected: 1 } });
    expect(engine.calls.find((c) => c[0] === 'inject')).toEqual(['inject', { port: 'vswab', pcap: '/x.pcap', timing: 'rate', rate: 10, loop: 2, filter: 'icmp' }]);
    const missing = await post({ port: 'nosuch', pcap: '/x.pcap' });
    expect([missing.status, missing.lines[0].error.code]).toEqual([404, 'E_NOT_FOUND']);
    const late = await post({ port: 'vswab', pcap: '/fail.pcap' });
    expect(late.status).toBe(200);
    expect(late.lines.at(-1)).toEqual({ type: 'error', code: 'E_INVALID_ARGUMENT', message: '/fail.pcap: truncated frame at byte 100' });
    expect((await raw(sock, 'POST', '/inject', JSON.stringify({ port: 'vswab', pcap: '/x.pcap', speed: 1 }))).status).toBe(400);
  });

  it('GET /trace?count=N: NDJSON traces, then the lost count', async () => {
    engine.traces = [1, 2, 3].map((i) => ({ frame: `f${i}`, steps: [], verdict: { kind: 'drop' as const, ports: [], reason: 'runt' } }));
    const r = await stream('/trace?net=bridge&filter=arp&count=2');
    expect(r.body.toString().trim().split('\n').map((l) => JSON.parse(l).frame)).toEqual(['f1', 'f2']);
    expect(r.trailers['x-vsw-lost']).toBe('0');
    expect(engine.calls.find((c) => c[0] === 'startTrace')).toEqual(['startTrace', { network: 'bridge', filter: 'arp', count: 2 }]);
  });

  /**
   * A streaming GET whose reader the test controls: lines so far, pause()/resume(), and a
   * wait for a line that matches. The http client stops reading the socket once paused.
   */
  function slowReader(p: string): Promise<{ lines: () => any[]; pause(): void; resume(): void; close(): void; waitLine(f: (l: any) => boolean): Promise<any> }> {
    return new Promise((resolve, reject) => {
      const req = http.get({ socketPath: sock, path: p, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { text += d; });
        const lines = (): any[] => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
        resolve({
          lines, pause: () => res.pause(), resume: () => res.resume(), close: () => req.destroy(),
          waitLine: (f) => waitFor('a line', () => lines().find(f), { timeoutMs: 5_000, intervalMs: 10 }),
        });
      });
      req.on('error', reject);
    });
  }

  /** An event of about 200 bytes of JSON. */
  const bigEvent = (i: number): VswEvent => ({ time: '2026-01-01T00:00:00.000Z', type: 'mac-learned', seq: i, pad: 'x'.repeat(150) });

  it('GET /events: first a ready line; a client that stops reading gets what fits in its queue, then a skipped line with the rest', async () => {
    const r = await slowReader('/events');
    expect((await r.waitLine((l) => l.type === 'ready')).time).toMatch(/^\d{4}-/);
    expect(engine.eventSubs.size).toBe(1);
    r.pause();
    const before = streamSkipped().events;
    const N = 100_000; // ~20 MB of JSON: far more than the socket and the queue hold
    for (let i = 0; i < N; i++) for (const fn of engine.eventSubs) fn(bigEvent(i));
    r.resume();
    const skipped = await r.waitLine((l) => l.type === 'skipped');
    const got = r.lines().filter((l) => l.type === 'mac-learned');
    expect(skipped.count).toBeGreaterThan(N / 2);
    expect(got.length + skipped.count).toBe(N);            // every event delivered or counted
    expect(got.length * 200).toBeLessThan(STREAM_QUEUE_BYTES + 4 * 1024 * 1024); // the queue + kernel buffers, not 20 MB
    expect(got.map((l) => l.seq)).toEqual([...Array(got.length).keys()]); // in order, the oldest kept
    expect(streamSkipped().events - before).toBe(skipped.count);
    // Caught up: events flow again.
    for (const fn of engine.eventSubs) fn(bigEvent(N));
    expect((await r.waitLine((l) => l.seq === N)).type).toBe('mac-learned');
    r.close();
    await waitFor('the API to unsubscribe', () => engine.eventSubs.size === 0, { timeoutMs: 5_000, intervalMs: 10 });
  });

  it('GET /trace: a client that stops reading gets a skipped line inline and the total in the lost trailer', async () => {
    engine.traces = Array.from({ length: 50_000 }, (_, i) => ({ frame: `f${i}`.padEnd(200, '0'), steps: [], verdict: { kind: 'drop' as const, ports: [], reason: 'runt' } }));
    const before = streamSkipped().trace;
    const r = await slowReader('/trace');
    r.pause(); // before the fake's timer sends its 50,000 traces
    await waitFor('the traces to be sent', () => streamSkipped().trace > before, { timeoutMs: 5_000, intervalMs: 5 });
    r.resume();
    const skipped = await r.waitLine((l) => l.type === 'skipped');
    expect(r.lines().filter((l) => l.frame).length + skipped.count).toBe(50_000);
    expect(streamSkipped().trace - before).toBe(skipped.count);
    r.close();
  });

  it('GET /info', async () => {
    const info = await client.get<DaemonInfo>('/info');
    expect(info.defaultNetwork).toBe('bridge');
    expect(info.netnsPath).toMatch(/^\/proc\/\d+\/ns\/net$/);
  });

  it('networks: create (201), list, inspect, remove (204)', async () => {
    const created = await raw(sock, 'POST', '/networks', JSON.stringify({ name: 'n1', subnet: '10.9.0.0/24', mtu: 9000 }),
      { 'Content-Type': 'application/json' });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: 'n1', subnet: '10.9.0.0/24', gateway: '10.9.0.1', mtu: 9000, default: false });

    const n2 = await client.post<NetworkInfo>('/networks', { name: 'n2', gateway: '172.18.0.254', ipRange: '172.18.1.0/24' });
    expect(n2).toMatchObject({ subnet: '172.18.0.0/16', gateway: '172.18.0.254', ipRange: '172.18.1.0/24', mtu: 1500 });
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'n2', gateway: '172.18.0.254', ipRange: '172.18.1.0/24' }]);

    const list = await client.get<NetworkInfo[]>('/networks');
    expect(list.map((x) => x.name)).toEqual(['bridge', 'n1', 'n2']);
    expect((await client.get<NetworkInfo>('/networks/n1')).subnet).toBe('10.9.0.0/24');

    const del = await raw(sock, 'DELETE', '/networks/n1');
    expect(del.status).toBe(204);
    expect(del.json).toBeUndefined();
    await client.del('/networks/n2');
    expect((await client.get<NetworkInfo[]>('/networks')).map((x) => x.name)).toEqual(['bridge']);
  });

  it('URL-decodes names', async () => {
    await client.post('/networks', { name: 'a.b_c-1' });
    await client.get<NetworkInfo>(`/networks/${encodeURIComponent('a.b_c-1')}`);
    await client.get<NetworkInfo>('/networks/a%2eb_c-1');
    expect(engine.calls.filter((c) => c[0] === 'inspectNetwork')).toEqual([
      ['inspectNetwork', 'a.b_c-1'], ['inspectNetwork', 'a.b_c-1'],
    ]);
    const e = await rejection(client.get('/networks/%E0%A4%A'));
    expect(e.status).toBe(400);
    expect(e.code).toBe('E_INVALID_ARGUMENT');
  });

  it('engine errors keep their status and code', async () => {
    await client.post('/networks', { name: 'n1', subnet: '10.1.0.0/16' });
    let e = await rejection(client.post('/networks', { name: 'n1' }));
    expect([e.status, e.code]).toEqual([409, 'E_CONFLICT']);
    e = await rejection(client.post('/networks', { name: 'n3', subnet: '10.1.2.0/24' }));
    expect([e.status, e.code]).toEqual([409, 'E_CONFLICT']);
    expect(e.message).toMatch(/overlaps/);
    e = await rejection(client.post('/networks', { name: 'n4', subnet: '10.1.2.0/33' }));
    expect([e.status, e.code]).toEqual([400, 'E_INVALID_ARGUMENT']);
    e = await rejection(client.get('/networks/nope'));
    expect([e.status, e.code, e.message]).toEqual([404, 'E_NOT_FOUND', 'no such network: nope']);
    e = await rejection(client.del('/containers/nope'));
    expect([e.status, e.code]).toEqual([404, 'E_NOT_FOUND']);
  });

  it('other errors become 500 E_INTERNAL with the message, and the server survives', async () => {
    const logged: string[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => { logged.push(a.join(' ')); };
    try {
      engine.failNext = new TypeError('kaboom');
      const e = await rejection(client.get('/networks'));
      expect([e.status, e.code, e.message]).toEqual([500, 'E_INTERNAL', 'kaboom']);
      engine.failNext = 'a string';
      const e2 = await rejection(client.get('/stats'));
      expect([e2.status, e2.code]).toEqual([500, 'E_INTERNAL']);
    } finally {
      console.error = orig;
    }
    expect(logged.join('\n')).toMatch(/GET \/networks.*kaboom/);
    expect((await client.get<NetworkInfo[]>('/networks')).length).toBe(1);
  });

  it('containers: create, list, inspect, exited, remove', async () => {
    const r = await raw(sock, 'POST', '/containers', JSON.stringify({ name: 'c1', cmd: ['sleep', '9'], detach: true }));
    expect(r.status).toBe(201);
    const c1 = r.json as ContainerInfo;
    expect(c1).toMatchObject({ name: 'c1', mode: 'bridge', netns: 'c1', status: 'running', cmd: ['sleep', '9'] });
    expect(c1.networks[0]).toMatchObject({ network: 'bridge', ip: '172.17.0.2', prefixLen: 16 });

    const c2 = await client.post<ContainerInfo>('/containers', { name: 'c2', network: 'host', rm: false, detach: false });
    expect(c2).toMatchObject({ mode: 'host', netns: '' });
    expect(engine.calls).toContainEqual(['createContainer', { name: 'c2', network: 'host', rm: false, detach: false }]);

    expect((await client.get<ContainerInfo[]>('/containers')).map((c) => c.name)).toEqual(['c1', 'c2']);
    expect((await client.get<ContainerInfo>('/containers/c1')).id).toBe(c1.id);

    const ex = await raw(sock, 'POST', '/containers/c2/exited', JSON.stringify({ code: 3 }));
    expect(ex.status).toBe(204);
    expect(await client.get<ContainerInfo>('/containers/c2')).toMatchObject({ status: 'exited', exitCode: 3 });

    // running: refused without force, removed with ?force=1
    const e = await rejection(client.del('/containers/c1'));
    expect(e.code).toBe('E_CONFLICT');
    await client.del('/containers/c1?force=1');
    expect(engine.calls).toContainEqual(['removeContainer', 'c1', false]);
    expect(engine.calls).toContainEqual(['removeContainer', 'c1', true]);
    await client.del('/containers/c2');
    expect(await client.get<ContainerInfo[]>('/containers')).toEqual([]);
  });

  it('connect (EndpointInfo) and disconnect (204)', async () => {
    await client.post('/networks', { name: 'n1', subnet: '10.5.0.0/24' });
    await client.post('/containers', { name: 'c1', network: 'none' });
    const ep = await client.post<EndpointInfo>('/networks/n1/connect', { container: 'c1', ip: '10.5.0.77' });
    expect(ep).toMatchObject({ container: 'c1', network: 'n1', ip: '10.5.0.77', prefixLen: 24 });
    const inspected = await client.get<NetworkInfo>('/networks/n1');
    expect(inspected.endpoints.map((x) => x.ip)).toEqual(['10.5.0.77']);
    const busy = await rejection(client.del('/networks/n1'));
    expect(busy.code).toBe('E_CONFLICT');
    const outside = await rejection(client.post('/networks/n1/connect', { container: 'c1', ip: '10.6.0.1' }));
    expect(outside.code).toMatch(/E_(CONFLICT|INVALID_ARGUMENT)/);
    const r = await raw(sock, 'POST', '/networks/n1/disconnect', JSON.stringify({ container: 'c1' }));
    expect(r.status).toBe(204);
    await client.del('/networks/n1');
  });

  it('GET /fdb (optionally ?net=NAME) and GET /stats', async () => {
    await client.post('/networks', { name: 'n1' });
    const entries: FdbEntryInfo[] = [
      { network: 'bridge', mac: '02:42:ac:11:00:02', vlan: 0, port: 'vsw00000001', portId: 1, container: 'c1', ageSeconds: 3 },
      { network: 'n1', mac: '02:42:ac:12:00:02', vlan: 0, port: 'vsw00000002', portId: 2, ageSeconds: 7 },
    ];
    engine.fdbEntries = entries;
    expect(await client.get<FdbEntryInfo[]>('/fdb')).toEqual(entries);
    expect(await client.get<FdbEntryInfo[]>('/fdb?net=n1')).toEqual([entries[1]]);
    expect(engine.calls).toContainEqual(['fdb', undefined]);
    expect(engine.calls).toContainEqual(['fdb', 'n1']);
    expect((await rejection(client.get('/fdb?net=zz'))).code).toBe('E_NOT_FOUND');

    const stats: PortStatsInfo[] = [{ id: 1, name: 'vsw00000001', network: 'bridge', rxPackets: 1, rxBytes: 60, txPackets: 2, txBytes: 120, drops: { fdb_full: 1 } }];
    engine.portStats = stats;
    expect(await client.get<PortStatsInfo[]>('/stats')).toEqual(stats);
  });

  it('GET /info carries the uplink (null without one)', async () => {
    expect((await client.get<DaemonInfo>('/info')).uplink).toBeNull();
    engine.uplink = { device: 'eth0', ip: '198.51.100.2/24', gateway: '198.51.100.1', mac: '02:00:00:00:00:01', portId: 3 };
    expect((await client.get<DaemonInfo>('/info')).uplink).toEqual(engine.uplink);
  });

  it('networks: internal, icc, dnsOrder reach the engine only when sent', async () => {
    const n = await client.post<NetworkInfo>('/networks', { name: 'n1', internal: true, icc: false, dnsOrder: 'fixed' });
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'n1', internal: true, icc: false, dnsOrder: 'fixed' }]);
    expect(n).toMatchObject({ internal: true, icc: false, dnsOrder: 'fixed', gatewayMac: expect.any(String) });
    await client.post('/networks', { name: 'n2', internal: null, icc: true, dnsOrder: 'random' });
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'n2', icc: true, dnsOrder: 'random' }]);
    await client.post('/networks', { name: 'n3' });
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'n3' }]);
    expect(await client.get<NetworkInfo>('/networks/n3')).toMatchObject({ internal: false, icc: true, dnsOrder: 'rotate' });
  });

  it('containers: publish (defaults filled in), aliases, links', async () => {
    await client.post('/containers', { name: 'db' });
    const c = await client.post<ContainerInfo>('/containers', {
      name: 'web',
      publish: [{ hostPort: 8080, containerPort: 80 }, { hostIp: '10.89.0.1', hostPort: 53, containerPort: 5353, proto: 'udp' }],
      aliases: ['www', 'web.local'],
      links: [{ name: 'db', alias: 'database' }, { name: 'db' }],
    });
    expect(engine.calls).toContainEqual(['createContainer', {
      name: 'web',
      publish: [
        { hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' },
        { hostIp: '10.89.0.1', hostPort: 53, containerPort: 5353, proto: 'udp' },
      ],
      aliases: ['www', 'web.local'],
      links: [{ name: 'db', alias: 'database' }, { name: 'db' }],
    }]);
    expect(c.ports).toHaveLength(2);
    expect(c.links).toEqual([{ name: 'db', alias: 'database' }, { name: 'db' }]);
    expect(c.networks[0].aliases).toEqual(['www', 'web.local']);
    expect((await client.get<ContainerInfo>('/containers/db')).ports).toEqual([]);
    // null = absent
    await client.post('/containers', { name: 'x', publish: null, aliases: null, links: null });
    expect(engine.calls).toContainEqual(['createContainer', { name: 'x' }]);
    // the engine's own refusals keep their codes
    const taken = await rejection(client.post('/containers', { name: 'y', publish: [{ hostPort: 8080, containerPort: 1 }] }));
    expect([taken.status, taken.code]).toEqual([409, 'E_CONFLICT']);
    const link = await rejection(client.post('/containers', { name: 'z', links: [{ name: 'nope' }] }));
    expect([link.status, link.code]).toEqual([404, 'E_NOT_FOUND']);
  });

  it('connect: {container, ip?, aliases?} -> engine.connectWith', async () => {
    await client.post('/networks', { name: 'n1', subnet: '10.5.0.0/24' });
    await client.post('/containers', { name: 'c1', network: 'none' });
    await client.post('/containers', { name: 'c2', network: 'none' });
    const ep = await client.post<EndpointInfo>('/networks/n1/connect', { container: 'c1', ip: '10.5.0.9', aliases: ['db'] });
    expect(ep).toMatchObject({ container: 'c1', ip: '10.5.0.9', aliases: ['db'] });
    expect(engine.calls).toContainEqual(['connectWith', 'n1', 'c1', { ip: '10.5.0.9', aliases: ['db'] }]);
    await client.post('/networks/n1/connect', { container: 'c2' });
    expect(engine.calls).toContainEqual(['connectWith', 'n1', 'c2', {}]);
    expect(engine.calls.filter((c) => c[0] === 'connect')).toEqual([]);
  });

  it('GET /neigh (optionally ?net=NAME or uplink) and GET /conntrack', async () => {
    await client.post('/networks', { name: 'n1' });
    const neigh: NeighEntryInfo[] = [
      { network: 'bridge', ip: '172.17.0.2', mac: '02:42:ac:11:00:02', state: 'reachable', ageSeconds: 1 },
      { network: 'uplink', ip: '198.51.100.1', mac: '', state: 'incomplete', ageSeconds: 0 },
    ];
    engine.neighEntries = neigh;
    expect(await client.get<NeighEntryInfo[]>('/neigh')).toEqual(neigh);
    expect(await client.get<NeighEntryInfo[]>('/neigh?net=n1')).toEqual([]);
    expect(await client.get<NeighEntryInfo[]>('/neigh?net=')).toEqual(neigh);
    expect(engine.calls.filter((c) => c[0] === 'neigh')).toEqual([['neigh', undefined], ['neigh', 'n1'], ['neigh', undefined]]);
    expect((await rejection(client.get('/neigh?net=zz'))).code).toBe('E_NOT_FOUND');
    expect((await rejection(client.get('/neigh?net=uplink'))).message).toMatch(/no uplink/);
    engine.uplink = { device: 'eth0', ip: '198.51.100.2/24', gateway: '198.51.100.1', mac: '02:00:00:00:00:01', portId: 3 };
    expect(await client.get<NeighEntryInfo[]>('/neigh?net=uplink')).toEqual([neigh[1]]);

    const ct: ConntrackEntryInfo[] = [{
      proto: 'icmp', state: 'REPLIED', kind: 'masquerade', network: 'bridge', expiresInSeconds: 29,
      orig: { src: '172.17.0.2', sport: 7, dst: '1.1.1.1', dport: 7 },
      reply: { src: '1.1.1.1', sport: 7, dst: '198.51.100.2', dport: 7 },
      packets: [1, 1], bytes: [84, 84],
    }];
    engine.conntrackEntries = ct;
    expect(await client.get<ConntrackEntryInfo[]>('/conntrack')).toEqual(ct);
    for (const p of ['/neigh/x', '/conntrack/x']) expect((await raw(sock, 'GET', p)).status).toBe(404);
  });

  it('invalid JSON and non-object bodies are 400 E_INVALID_ARGUMENT', async () => {
    let r = await raw(sock, 'POST', '/networks', '{"name": ');
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('E_INVALID_ARGUMENT');
    expect(r.json.error.message).toMatch(/not valid JSON/);
    r = await raw(sock, 'POST', '/networks', '[1,2]');
    expect([r.status, r.json.error.code]).toEqual([400, 'E_INVALID_ARGUMENT']);
    r = await raw(sock, 'POST', '/containers', 'null');
    expect(r.status).toBe(400);
  });

  it('wrong field types are 400 naming the field', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['/networks', { name: 5 }, /'name' must be a string/],
      ['/networks', {}, /'name' is required/],
      ['/networks', { name: 'x', mtu: 1500.5 }, /'mtu' must be an integer/],
      ['/networks', { name: 'x', mtu: '1500' }, /'mtu' must be an integer/],
      ['/networks', { name: 'x', subnet: ['10.0.0.0/8'] }, /'subnet' must be a string/],
      ['/networks', { name: 'x', bogus: 1 }, /unknown field 'bogus'/],
      ['/containers', { name: 'c', cmd: 'sleep 1' }, /'cmd' must be an array of strings/],
      ['/containers', { name: 'c', cmd: ['sleep', 1] }, /'cmd' must be an array of strings/],
      ['/containers', { name: 'c', detach: 'yes' }, /'detach' must be a boolean/],
      ['/containers', { name: 'c', rm: 1 }, /'rm' must be a boolean/],
      ['/containers', { name: 'c', network: 7 }, /'network' must be a string/],
      ['/networks/bridge/connect', { container: 1 }, /'container' must be a string/],
      ['/networks/bridge/connect', { container: 'c', ip: 10 }, /'ip' must be a string/],
      ['/networks/bridge/disconnect', {}, /'container' is required/],
      ['/networks', { name: 'x', internal: 'yes' }, /'internal' must be a boolean/],
      ['/networks', { name: 'x', icc: 0 }, /'icc' must be a boolean/],
      ['/networks', { name: 'x', dnsOrder: 'sorted' }, /'dnsOrder' must be one of rotate, random, fixed/],
      ['/networks', { name: 'x', dnsOrder: 1 }, /'dnsOrder' must be a string/],
      ['/containers', { name: 'c', publish: '8080:80' }, /'publish' must be an array of port mappings/],
      ['/containers', { name: 'c', publish: [{ hostPort: 8080 }] }, /'publish\[0\]\.containerPort' must be an integer from 1 to 65535/],
      ['/containers', { name: 'c', publish: [{ hostPort: 70000, containerPort: 80 }] }, /'publish\[0\]\.hostPort' must be an integer from 1 to 65535/],
      ['/containers', { name: 'c', publish: [{ hostPort: 80, containerPort: 80, proto: 'sctp' }] }, /'publish\[0\]\.proto' must be 'tcp' or 'udp'/],
      ['/containers', { name: 'c', publish: [{ hostPort: 80, containerPort: 80, hostIp: '::' }] }, /'publish\[0\]\.hostIp': '::' is not an IPv4 address/],
      ['/containers', { name: 'c', publish: [{ hostPort: 80, containerPort: 80 }, { hostPort: 80, containerPort: 81 }] }, /published twice/],
      ['/containers', { name: 'c', aliases: 'www' }, /'aliases' must be an array of strings/],
      ['/containers', { name: 'c', aliases: ['a b'] }, /invalid alias 'a b'/],
      ['/containers', { name: 'c', links: [{ name: 'db', alias: '-x' }] }, /invalid link alias '-x'/],
      ['/containers', { name: 'c', links: ['db'] }, /'links\[0\]' must be an object/],
      ['/containers', { name: 'c', ports: [] }, /unknown field 'ports'/],
      ['/networks/bridge/connect', { container: 'c', aliases: [1] }, /'aliases' must be an array of strings/],
      ['/networks/bridge/connect', { container: 'c', aliases: ['bad name'] }, /invalid alias 'bad name'/],
      ['/networks/bridge/connect', { container: 'c', alias: 'x' }, /unknown field 'alias'/],
    ];
    for (const [p, body, re] of cases) {
      const e = await rejection(client.post(p, body));
      expect([p, e.status, e.code]).toEqual([p, 400, 'E_INVALID_ARGUMENT']);
      expect(e.message).toMatch(re);
    }
    await client.post('/containers', { name: 'c' });
    for (const code of [-1, 256, 1.5, '3', null]) {
      const e = await rejection(client.post('/containers/c/exited', { code }));
      expect(e.status).toBe(400);
      expect(e.message).toMatch(/'code'/);
    }
    expect(engine.calls.filter((c) => ['createNetwork', 'createContainer', 'connectWith'].includes(c[0] as string))).toEqual([
      ['createContainer', { name: 'c' }],
    ]);
  });

  it('a body over 1 MiB is 413, and the server keeps serving', async () => {
    const big = Buffer.alloc(MAX_BODY_BYTES + 10, 0x20);
    const r = await raw(sock, 'POST', '/networks', big);
    expect(r.status).toBe(413);
    expect(r.json.error.message).toMatch(/too large/);
    // chunked (no Content-Length)
    const r2 = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: sock, method: 'POST', path: '/networks', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write(Buffer.alloc(300 * 1024, 0x20));
      req.end();
    });
    expect(r2).toBe(413);
    expect(engine.calls.filter((c) => c[0] === 'createNetwork')).toEqual([]);
    // exactly the limit is accepted (whitespace + a valid object)
    const ok = Buffer.concat([Buffer.from('{"name":"big"}'), Buffer.alloc(MAX_BODY_BYTES - 14, 0x20)]);
    expect((await raw(sock, 'POST', '/networks', ok)).status).toBe(201);
  });

  it('unknown routes are 404 E_NOT_FOUND, wrong methods 405', async () => {
    for (const p of ['/', '/nope', '/networks/a/b/c', '/networks/bridge/frobnicate', '/containers/x/y', '/info/x']) {
      const r = await raw(sock, 'GET', p);
      expect([p, r.status, r.json.error.code]).toEqual([p, 404, 'E_NOT_FOUND']);
    }
    const cases: Array<[string, string]> = [
      ['DELETE', '/info'], ['PUT', '/networks'], ['POST', '/networks/bridge'], ['GET', '/networks/bridge/connect'],
      ['DELETE', '/containers'], ['GET', '/containers/c/exited'], ['POST', '/fdb'], ['POST', '/stats'],
      ['POST', '/neigh'], ['DELETE', '/conntrack'],
    ];
    for (const [m, p] of cases) {
      const r = await raw(sock, m, p);
      expect([m, p, r.status]).toEqual([m, p, 405]);
      expect(r.headers.allow).toBeTruthy();
      expect(r.json.error.message).toMatch(/not allowed/);
    }
  });

  it('tolerates a trailing slash', async () => {
    expect((await raw(sock, 'GET', '/networks/')).status).toBe(200);
  });

  it('malformed HTTP does not crash the server', async () => {
    await new Promise<void>((resolve) => {
      const s = net.connect(sock, () => s.write('THIS IS NOT HTTP\r\n\r\n'));
      s.on('data', () => {});
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    expect((await client.get<NetworkInfo[]>('/networks')).length).toBe(1);
  });

  it('a second API on the same live socket fails clearly', async () => {
    await expect(startApi(new FakeEngine(), sock)).rejects.toThrow(`a vsw daemon is already listening on ${sock}`);
    // the first one is untouched
    expect((await client.get<DaemonInfo>('/info')).defaultNetwork).toBe('bridge');
  });

  it('close() removes the socket; the client then reports the daemon unreachable', async () => {
    await api.close();
    expect(fs.existsSync(sock)).toBe(false);
    const e = await rejection(client.get('/info'));
    expect(e.code).toBe('E_DAEMON_UNREACHABLE');
    expect(e.message).toBe(`cannot reach the vsw daemon at ${sock} (is \`vsw daemon\` running? set --socket or VSW_SOCKET)`);
    api = await startApi(engine, sock); // for afterEach
  });
});

describe('API: /impair', () => {
  let engine: FakeEngine;
  let api: ApiServer;
  let sock: string;
  let k = 0;
  beforeEach(async () => {
    engine = new FakeEngine();
    engine.portStats = [{ id: 1, name: 'vsw1', network: 'bridge', rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: {} }];
    sock = path.join(tmp, `impair${k++}`, 'vsw.sock');
    api = await startApi(engine, sock);
  });
  afterEach(async () => { await api.close(); });

  it('POST sets, GET lists, DELETE removes; fields are checked and named', async () => {
    const set = await raw(sock, 'POST', '/impair', JSON.stringify({ port: 'vsw1', delay: '10ms', rate: '1mbit', burst: '32k' }));
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({ port: 'vsw1', direction: 'out', settings: 'delay 10ms rate 1mbit burst 32k' });
    expect((await raw(sock, 'GET', '/impair')).json).toHaveLength(1);
    const unknown = await raw(sock, 'POST', '/impair', JSON.stringify({ port: 'vsw1', latency: '10ms' }));
    expect([unknown.status, unknown.json.error.message]).toEqual([400, expect.stringMatching(/unknown field 'latency'/)]);
    const badUnit = await raw(sock, 'POST', '/impair', JSON.stringify({ port: 'vsw1', delay: 10 }));
    expect([badUnit.status, badUnit.json.error.message]).toEqual([400, "field 'delay' must be a string"]);
    const badValue = await raw(sock, 'POST', '/impair', JSON.stringify({ port: 'vsw1', loss: '150%' }));
    expect(badValue.status).toBe(400);
    const noPort = await raw(sock, 'POST', '/impair', JSON.stringify({ port: 'nope', delay: '1ms' }));
    expect(noPort.status).toBe(404);
    expect((await raw(sock, 'DELETE', '/impair/vsw1')).status).toBe(204);
    expect((await raw(sock, 'DELETE', '/impair/vsw1')).status).toBe(404);
    expect((await raw(sock, 'PUT', '/impair')).status).toBe(405);
  });
});

describe('socket file handling', () => {
  it('replaces a stale socket file', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'stale-'));
    const sock = path.join(dir, 'vsw.sock');
    // A socket file nobody listens on, like the one a crashed (SIGKILLed) daemon leaves.
    const r = spawnSync(process.execPath, ['-e',
      `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(r.signal).toBe('SIGKILL');
    expect(fs.existsSync(sock)).toBe(true);
    const api = await startApi(new FakeEngine(), sock);
    try {
      expect((await new Client(sock).get<DaemonInfo>('/info')).defaultNetwork).toBe('bridge');
      expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    } finally {
      await api.close();
    }
  });

  it('refuses to replace something that is not a socket', async () => {
    const p = path.join(tmp, 'regular-file');
    fs.writeFileSync(p, 'keep me');
    await expect(startApi(new FakeEngine(), p)).rejects.toThrow(/not a socket/);
    expect(fs.readFileSync(p, 'utf8')).toBe('keep me');
  });

  it('unreachable daemon: no socket file', async () => {
    const sock = path.join(tmp, 'none', 'vsw.sock');
    const e = await rejection(new Client(sock).get('/info'));
    expect(e.code).toBe('E_DAEMON_UNREACHABLE');
    expect(e.message).toContain(`cannot reach the vsw daemon at ${sock}`);
  });

  it('client timeout', async () => {
    const sock = path.join(tmp, 'slow.sock');
    const srv = net.createServer(() => { /* never answers */ });
    await new Promise<void>((r) => srv.listen(sock, () => r()));
    try {
      const e = await rejection(new Client(sock, { timeoutMs: 200 }).get('/info'));
      expect(e.message).toMatch(/did not answer GET \/info/);
    } finally {
      srv.close();
    }
  });
});
