// Attachments (docs/DESIGN.md "Attachments"): the API's routes over the fake engine, and
// the engine's own rules (control/engine/attachments.ts) over stand-ins for the veths and
// the switch: what is refused before anything is made, idempotent re-posts, a failure that
// leaves nothing behind, published ports per endpoint, and the state file's shape.

import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startApi, type ApiServer } from '../../control/api';
import { Client } from '../../control/client';
import type { AttachmentCreate } from '../../control/types';
import { FakeEngine } from '../fixtures/fake-engine';

const made: string[] = [];
let failVeth: Error | undefined;
vi.mock('../../control/netns', async (orig) => ({
  ...(await orig<typeof import('../../control/netns')>()),
  netnsExists: (p: string) => p === '/run/netns/sb' || p === '/proc/1/ns/net',
  nextInnerIfName: async () => 'eth0',
  createVeth: async (host: string, ns: string, mtu: number, inner: string) => {
    if (failVeth) throw failVeth;
    made.push(`veth ${host} ${inner} ${ns || '-'} ${mtu}`);
  },
  configureEndpoint: async (ns: string, ifname: string, cfg: { ip: string; defaultRoute: boolean }) => {
    made.push(`config ${ns} ${ifname} ${cfg.ip} ${cfg.defaultRoute ? 'default' : 'nodefault'}`);
  },
  deleteLink: async (name: string) => { made.push(`delete ${name}`); },
}));

// After the mock: the engine modules see the stand-in netns.
const { Attachments } = await import('../../control/engine/attachments');
const { Records, checkState } = await import('../../control/engine/records');
const { routerView } = await import('../../control/engine/networks');
const { PortBook } = await import('../../control/engine/ports');

function raw(sock: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath: sock, method, path: p, agent: false, headers: text ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const t = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, json: t ? JSON.parse(t) : undefined });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

const CNI: AttachmentCreate = { owner: 'cni', endpoint: 'abc123/eth0', sandbox: 'abc123', name: 'pod1', network: 'bridge', netns: '/run/netns/sb', ifname: 'eth0' };

describe('the /attachments routes', () => {
  let tmp: string;
  let engine: FakeEngine;
  let api: ApiServer;
  let sock: string;
  let client: Client;
  beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-att-')); });
  afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });
  beforeEach(async () => {
    engine = new FakeEngine();
    sock = path.join(tmp, `s${made.length}${Math.random().toString(16).slice(2, 6)}`, 'vsw.sock');
    api = await startApi(engine, sock);
    client = new Client(sock);
  });
  afterEach(async () => { await api.close(); });

  it('POST makes one (201); the same again is 200 with the same answer; other fields are 409', async () => {
    const first = await raw(sock, 'POST', '/attachments', CNI);
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ owner: 'cni', endpoint: 'abc123/eth0', sandbox: 'abc123', name: 'pod1', network: 'bridge', innerIf: 'eth0', netns: '/run/netns/sb', aliases: [], publish: [] });
    const again = await raw(sock, 'POST', '/attachments', CNI);
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    const other = await raw(sock, 'POST', '/attachments', { ...CNI, name: 'pod2' });
    expect(other.status).toBe(409);
    expect(other.json.error.code).toBe('E_CONFLICT');
  });

  it('GET and DELETE take the endpoint URL-encoded ("/" included); DELETE of an unknown one is 404, which the client calls done', async () => {
    await client.attach(CNI);
    expect((await client.listAttachments()).map((a) => a.endpoint)).toEqual(['abc123/eth0']);
    expect((await raw(sock, 'GET', `/attachments/${encodeURIComponent('abc123/eth0')}`)).json.name).toBe('pod1');
    expect((await raw(sock, 'GET', '/attachments/nope')).status).toBe(404);
    expect((await raw(sock, 'DELETE', `/attachments/${encodeURIComponent('abc123/eth0')}`)).status).toBe(204);
    expect((await raw(sock, 'DELETE', `/attachments/${encodeURIComponent('abc123/eth0')}`)).status).toBe(404);
    expect(await client.detach('abc123/eth0')).toBe(false);
    expect(await client.attachment('abc123/eth0')).toBeUndefined();
  });

  it('PUT .../publish replaces the published ports, with hostIp and proto filled in', async () => {
    await client.attach({ ...CNI, owner: 'docker', endpoint: 'ep1', netns: undefined });
    const a = await client.publishAttachment('ep1', [{ hostPort: 8080, containerPort: 80 } as never]);
    expect(a.publish).toEqual([{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' }]);
    expect((await client.publishAttachment('ep1', [])).publish).toEqual([]);
    expect((await raw(sock, 'PUT', '/attachments/ep1/publish', {})).status).toBe(400);
    expect((await raw(sock, 'POST', '/attachments/ep1/publish', { publish: [] })).status).toBe(405);
  });

  it.each([
    [{ ...CNI, owner: 'podman' }, "field 'owner' must be one of docker, cni"],
    [{ ...CNI, endpoint: undefined }, "field 'endpoint' is required"],
    [{ ...CNI, colour: 'red' }, "unknown field 'colour'"],
    [{ ...CNI, mtu: 'big' }, "field 'mtu' must be an integer"],
    [{ ...CNI, defaultRoute: 'yes' }, "field 'defaultRoute' must be a boolean"],
    [{ ...CNI, publish: [{ hostPort: 0, containerPort: 80 }] }, "field 'publish[0].hostPort' must be an integer from 1 to 65535"],
    [{ ...CNI, aliases: 'web' }, "field 'aliases' must be an array of strings"],
  ])('a malformed POST is 400 with the field named and reaches no engine: %j', async (body, message) => {
    const r = await raw(sock, 'POST', '/attachments', body);
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain(message);
    expect(engine.calls.some((c) => c[0] === 'createAttachment')).toBe(false);
  });
});

describe('the engine\'s attachments', () => {
  type Deps = ConstructorParameters<typeof Attachments>[0];
  let records: InstanceType<typeof Records>;
  let saves: number;
  let opened: string[];
  let att: InstanceType<typeof Attachments>;
  const published: { container: string; ports: unknown[] }[] = [];

  beforeEach(() => {
    made.length = 0;
    failVeth = undefined;
    saves = 0;
    opened = [];
    records = new Records();
    records.state = {
      networks: [
        { name: 'bridge', id: 0, subnet: '10.89.0.0/24', gateway: '10.89.0.1', ipRange: '10.89.0.0/24', mtu: 1500, default: true, created: '', tap: 'vsw0' },
        { name: 'inner', id: 1, subnet: '10.89.1.0/24', gateway: '10.89.1.1', ipRange: '10.89.1.0/24', mtu: 1400, default: false, created: '', tap: 'vsw1', internal: true },
      ],
      containers: [{
        name: 'web', id: 'aaaa', mode: 'bridge', netns: 'web', cmd: [], detach: false, rm: false, status: 'created', created: '',
        endpoints: [{ network: 'bridge', ip: '10.89.0.2', mac: '02:42:0a:59:00:02', hostIf: 'vswaaaa0001', innerIf: 'eth0', aliases: ['www'] }],
        ports: [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' }],
      }],
    };
    published.length = 0;
    const deps: Deps = {
      records,
      endpoints: {
        open: async (c, n, e) => { opened.push(`${c.name} ${n.name} ${e.hostIf}`); },
        unplug: async (_c, e) => { opened.push(`unplug ${e.hostIf}`); },
      },
      events: { emit: () => undefined },
      router: {
        checkPublish: (container, network, ports) => {
          if (network?.internal && ports.length > 0) throw new Error(`network '${network.name}' is internal: it has no published ports`);
          const taken = records.state.containers.find((c) => c.name !== container && (c.ports ?? []).some((p) => ports.some((m) => m.hostPort === p.hostPort)));
          if (taken) throw new Error(`already published by container '${taken.name}'`);
        },
      },
      store: { save: () => { saves++; } },
      syncRouter: async () => undefined,
    };
    att = new Attachments(deps);
  });

  it('makes the veth into the sandbox, configures it there, opens the port, and saves the intent before it and the result after', async () => {
    const { attachment, created } = await att.create(CNI);
    expect(created).toBe(true);
    expect(attachment).toMatchObject({ ip: '10.89.0.3', mac: '02:42:0a:59:00:03', prefixLen: 24, gateway: '10.89.0.1', mtu: 1500 });
    expect(made).toEqual([`veth ${attachment.hostIf} eth0 /run/netns/sb 1500`, 'config /run/netns/sb eth0 10.89.0.3 default']);
    expect(opened).toEqual([`pod1 bridge ${attachment.hostIf}`]);
    expect(saves).toBe(2);
    const c = records.container('pod1');
    expect(c).toMatchObject({ mode: 'cni', sandbox: 'abc123', status: 'running' });
    expect(c.endpoints[0].attachment).toMatchObject({ endpoint: 'abc123/eth0', status: 'created', netns: '/run/netns/sb', defaultRoute: true });
    expect(checkState(records.state)).toBeUndefined();
  });

  it('Docker style: no netns, so nothing is configured; the inner end gets a vsw name; a second network joins the same container', async () => {
    const a = (await att.create({ owner: 'docker', endpoint: 'E1', sandbox: '/var/run/docker/netns/x', name: 'app', network: 'bridge', mac: '02:AA:00:00:00:01' })).attachment;
    expect(a.innerIf).toMatch(/^vsi[0-9a-f]{8}$/);
    expect(a.mac).toBe('02:aa:00:00:00:01');
    expect(made).toEqual([`veth ${a.hostIf} ${a.innerIf} - 1500`]);
    const b = (await att.create({ owner: 'docker', endpoint: 'E2', sandbox: '/var/run/docker/netns/x', name: 'app', network: 'inner' })).attachment;
    expect(b.mtu).toBe(1400);
    expect(records.container('app').endpoints.map((e) => e.network)).toEqual(['bridge', 'inner']);
    expect(att.list().map((x) => x.endpoint)).toEqual(['E1', 'E2']);
    await att.remove('E1');
    expect(records.container('app').endpoints.map((e) => e.network)).toEqual(['inner']);
    await att.remove('E2');
    expect(records.state.containers.map((c) => c.name)).toEqual(['web']);
  });

  it.each([
    [{ network: 'nope' }, "network 'nope' not found"],
    [{ name: 'web' }, "container 'web' already exists (a bridge container)"],
    [{ name: 'WEB' }, "collides with container 'web'"],
    [{ aliases: ['web'] }, "alias 'web' of container 'pod1' would answer to the DNS name 'web'"],
    [{ ip: '10.89.0.2' }, '10.89.0.2'],
    [{ mac: '02:42:0a:59:00:02' }, "MAC 02:42:0a:59:00:02 is already used by container 'web' on network 'bridge'"],
    [{ mac: 'ff:ff:ff:ff:ff:ff' }, 'multicast/broadcast'],
    [{ ifname: 'a/b' }, "ifname 'a/b'"],
    [{ netns: 'sb' }, "netns 'sb' must be an absolute path"],
    [{ netns: '/run/netns/gone' }, 'netns /run/netns/gone does not exist'],
    [{ mtu: 20 }, 'mtu 20: expected 68 to 65535'],
    [{ publish: [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' as const }] }, "already published by container 'web'"],
    [{ network: 'inner', publish: [{ hostIp: '0.0.0.0', hostPort: 9090, containerPort: 80, proto: 'tcp' as const }] }, 'is internal'],
  ])('refused before anything is made or saved: %j', async (change, message) => {
    await expect(att.create({ ...CNI, ...change })).rejects.toThrow(message);
    expect(made).toEqual([]);
    expect(saves).toBe(0);
    expect(records.state.containers.map((c) => c.name)).toEqual(['web']);
  });

  it('a sandbox is one container: the same sandbox under another name, or twice on a network, is refused', async () => {
    await att.create(CNI);
    await expect(att.create({ ...CNI, endpoint: 'abc123/eth1', name: 'pod9', ifname: 'eth1' })).rejects.toThrow("sandbox 'abc123' is container 'pod1' in vsw, not 'pod9'");
    await expect(att.create({ ...CNI, endpoint: 'abc123/eth1', ifname: 'eth1' })).rejects.toThrow("container 'pod1' is already connected to network 'bridge'");
  });

  it('posted again: the same fields (absent ones left to what was chosen) get the same answer; a different field is named in the refusal', async () => {
    const a = (await att.create(CNI)).attachment;
    const again = await att.create({ ...CNI, ifname: undefined });
    expect(again).toEqual({ attachment: a, created: false });
    await expect(att.create({ ...CNI, ip: '10.89.0.9' })).rejects.toThrow(`attachment 'abc123/eth0' already exists with ip "${a.ip}", not "10.89.0.9"`);
    await expect(att.create({ ...CNI, netns: undefined })).rejects.toThrow('already exists with netns "/run/netns/sb", not null');
    expect(made.length).toBe(2);
  });

  it('a veth that cannot be made leaves no record, and the state is saved without it', async () => {
    failVeth = new Error("interface 'eth0' already exists in namespace '/run/netns/sb'");
    await expect(att.create(CNI)).rejects.toThrow('already exists in namespace');
    expect(records.state.containers.map((c) => c.name)).toEqual(['web']);
    expect(saves).toBe(2);
  });

  it('published ports are per endpoint, replaced by publish(), and told to the router under the endpoint\'s network and address', async () => {
    const a = (await att.create({ ...CNI, publish: [{ hostIp: '0.0.0.0', hostPort: 9000, containerPort: 90, proto: 'udp' }] })).attachment;
    const view = (): unknown => routerView(records, new PortBook()).published.filter((p) => p.container === 'pod1');
    expect(view()).toEqual([{ container: 'pod1', network: 'bridge', ip: a.ip, ports: [{ hostIp: '0.0.0.0', hostPort: 9000, containerPort: 90, proto: 'udp' }] }]);
    await expect(att.publish(CNI.endpoint, [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' }])).rejects.toThrow("already published by container 'web'");
    expect((await att.publish(CNI.endpoint, [])).publish).toEqual([]);
    expect(view()).toEqual([]);
    await expect(att.publish('nope', [])).rejects.toThrow("attachment 'nope' not found");
  });

  it('state.json: an attachment record must have its fields; two with one key are refused', async () => {
    await att.create(CNI);
    const bad = JSON.parse(JSON.stringify(records.state));
    bad.containers[1].endpoints[0].attachment.status = 'half';
    expect(checkState(bad)).toBe('containers[1].endpoints[0].attachment.status: expected one of creating, created, got string \'half\'');
    const twice = JSON.parse(JSON.stringify(records.state));
    twice.containers.push({ ...twice.containers[1], name: 'pod2' });
    expect(checkState(twice)).toBe("attachment endpoints[1].name: 'abc123/eth0' appears twice");
  });
});
