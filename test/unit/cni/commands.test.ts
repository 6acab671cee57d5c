// vsw-cni's handlers driven as a runtime drives a plugin (CNI_* environment + the network
// configuration on stdin, SPEC.md 1.0.0), against a fake daemon on a Unix socket; the
// result and error JSON checked against the spec's shapes.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCni, type CniDeps } from '../../../control/cni/commands';
import { attachmentName } from '../../../control/cni/config';
import { fakeIpam, network, startFakeDaemon, type FakeDaemon } from './fake-daemon';

let tmp: string;
let d: FakeDaemon;
let NETNS: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-cni-'));
  // Stands for /run/netns/X: ADD only checks that the path exists (the daemon enters it).
  NETNS = path.join(tmp, 'netns');
  fs.writeFileSync(NETNS, '');
});
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });
beforeEach(async () => {
  d = await startFakeDaemon(tmp);
  d.networks.set('cninet', network('cninet'));
});
afterEach(async () => { await d.close(); });

const ID = 'a'.repeat(64);

function env(command: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    CNI_COMMAND: command, CNI_CONTAINERID: ID, CNI_NETNS: NETNS, CNI_IFNAME: 'eth0',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web1', CNI_PATH: tmp,
  };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete e[k]; else e[k] = v;
  }
  return e;
}

function conf(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: '1.0.0', name: 'podnet', type: 'vsw', network: 'cninet', socket: d.sock, ...extra });
}

async function call(command: string, config: string, extra: Record<string, string | undefined> = {}, deps?: CniDeps) {
  const r = await runCni(env(command, extra), config, deps);
  return { ...r, json: r.stdout === '' ? undefined : JSON.parse(r.stdout) };
}

/** An error result: exit 1 and exactly the spec's keys. */
function expectError(r: { code: number; json: any }, code: number, msg?: RegExp): void {
  expect(r.code).toBe(1);
  expect(Object.keys(r.json).sort()).toEqual(expect.arrayContaining(['cniVersion', 'code', 'msg']));
  for (const k of Object.keys(r.json)) expect(['cniVersion', 'code', 'msg', 'details']).toContain(k);
  expect(r.json.code).toBe(code);
  if (msg) expect(r.json.msg).toMatch(msg);
}

const attachCalls = (): unknown[] => d.log.filter((l) => l.path.startsWith('/attachments'));

describe('VERSION', () => {
  it('answers the supported versions, echoing the version asked with', async () => {
    const r = await call('VERSION', JSON.stringify({ cniVersion: '0.4.0' }));
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
  });

  it('answers with nothing on stdin too (1.0.0)', async () => {
    const r = await call('VERSION', '');
    expect(r.json.cniVersion).toBe('1.0.0');
    expect(r.json.supportedVersions).toContain('0.3.1');
  });
});

describe('ADD', () => {
  it('attaches through the daemon and returns the 1.0.0 result', async () => {
    const r = await call('ADD', conf({
      capabilities: { portMappings: true, aliases: true },
      runtimeConfig: {
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }, { hostPort: 5353, containerPort: 53, protocol: 'udp' }],
        aliases: { podnet: ['web', 'www', 'web'] },
      },
    }));
    expect(r.code, r.stdout).toBe(0);
    expect(r.json).toEqual({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'vswab12cd34' }, { name: 'eth0', mac: '02:42:0a:59:07:0a', sandbox: NETNS }],
      ips: [{ address: '10.89.7.10/24', gateway: '10.89.7.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.89.7.1' }],
      dns: { nameservers: ['10.89.7.1'] },
    });
    const post = d.log.find((l) => l.method === 'POST' && l.path === '/attachments');
    expect(post?.body).toEqual({
      owner: 'cni', endpoint: `${ID}/eth0`, sandbox: ID, name: 'web1', network: 'cninet', ifname: 'eth0', netns: NETNS,
      defaultRoute: true, aliases: ['web', 'www'],
      publish: [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' }, { hostIp: '0.0.0.0', hostPort: 5353, containerPort: 53, proto: 'udp' }],
    });
  });

  it('speaks 0.3.1 and 0.4.0 too: ips carry their version', async () => {
    for (const v of ['0.3.1', '0.4.0']) {
      const r = await call('ADD', conf({ cniVersion: v }), { CNI_IFNAME: `net${v.replace(/\./g, '')}` });
      expect(r.code, r.stdout).toBe(0);
      expect(r.json.cniVersion).toBe(v);
      expect(r.json.ips[0]).toMatchObject({ version: '4', interface: 1 });
    }
  });

  it('passes CNI_ARGS IP and MAC, and the mtu and defaultRoute keys', async () => {
    const r = await call('ADD', conf({ mtu: 1400, defaultRoute: false }), { CNI_ARGS: 'IP=10.89.7.77;MAC=02:AA:bb:cc:dd:ee' });
    expect(r.code, r.stdout).toBe(0);
    const post = d.log.find((l) => l.method === 'POST' && l.path === '/attachments')?.body as Record<string, unknown>;
    expect(post).toMatchObject({ ip: '10.89.7.77', mac: '02:aa:bb:cc:dd:ee', mtu: 1400, defaultRoute: false, name: ID.slice(0, 12) });
    expect(r.json.ips[0].address).toBe('10.89.7.77/24');
    expect(r.json.routes).toBeUndefined();
  });

  it('a second ADD of the same interface returns the same result', async () => {
    const a = await call('ADD', conf());
    const b = await call('ADD', conf());
    expect(b.code).toBe(0);
    expect(b.json).toEqual(a.json);
    expect(d.attachments.size).toBe(1);
  });

  it('creates the network when absent, from subnet and gateway', async () => {
    const r = await call('ADD', conf({ network: 'fresh', subnet: '10.77.0.0/24', gateway: '10.77.0.1', mtu: 1450 }));
    expect(r.code, r.stdout).toBe(0);
    expect(d.log.find((l) => l.method === 'POST' && l.path === '/networks')?.body).toEqual({ name: 'fresh', subnet: '10.77.0.0/24', gateway: '10.77.0.1', mtu: 1450 });
    expect(r.json.ips[0].gateway).toBe('10.77.0.1');
  });

  it('refuses a subnet that contradicts the existing network (7), attaching nothing', async () => {
    const r = await call('ADD', conf({ subnet: '10.1.0.0/24' }));
    expectError(r, 7, /says subnet 10\.1\.0\.0\/24, but the vsw network cninet has 10\.89\.7\.0\/24/);
    expect(attachCalls()).toEqual([]);
  });

  it('a daemon refusal keeps its message, with vsw\'s code for its kind', async () => {
    d.failNextAttach = { status: 409, code: 'E_CONFLICT', message: 'address 10.89.7.77 is in use by web2' };
    const r = await call('ADD', conf(), { CNI_ARGS: 'IP=10.89.7.77' });
    expectError(r, 101, /address 10\.89\.7\.77 is in use by web2/);
    expect(r.json.details).toBe('E_CONFLICT');
  });

  it('a daemon that is not there is "try again later" (11)', async () => {
    const r = await call('ADD', conf({ socket: path.join(tmp, 'nobody.sock') }));
    expectError(r, 11, /cannot reach the vsw daemon/);
  });

  it('chaining: a prevResult is kept, ours comes after it with shifted indexes', async () => {
    const prevResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'lo', sandbox: NETNS }],
      ips: [{ address: '127.0.0.1/8', interface: 0 }],
      routes: [{ dst: '10.0.0.0/8' }],
      dns: { nameservers: ['10.0.0.53'], search: ['example.org'] },
    };
    const r = await call('ADD', conf({ prevResult }));
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.interfaces.map((i: { name: string }) => i.name)).toEqual(['lo', 'vswab12cd34', 'eth0']);
    expect(r.json.ips).toEqual([{ address: '127.0.0.1/8', interface: 0 }, { address: '10.89.7.10/24', gateway: '10.89.7.1', interface: 2 }]);
    expect(r.json.routes).toEqual([{ dst: '10.0.0.0/8' }, { dst: '0.0.0.0/0', gw: '10.89.7.1' }]);
    expect(r.json.dns).toEqual({ nameservers: ['10.89.7.1', '10.0.0.53'], search: ['example.org'] });
  });
});

describe('bad input: the spec\'s error, nothing asked of the daemon', () => {
  const cases: [string, () => [string, Record<string, string | undefined>], number, RegExp][] = [
    ['stdin that is not JSON', () => ['{"cniVersion": "1.0.0",', {}], 6, /not JSON/],
    ['a JSON array', () => ['[]', {}], 6, /must be a JSON object/],
    ['an unsupported cniVersion', () => [conf({ cniVersion: '0.2.0' }), {}], 1, /cniVersion "0\.2\.0" is not supported/],
    ['no cniVersion', () => [conf({ cniVersion: undefined }), {}], 7, /no cniVersion/],
    ['no network key', () => [conf({ network: undefined }), {}], 7, /'network' is required/],
    ['a bad network name', () => [conf({ network: 'a b' }), {}], 7, /not a vsw network name/],
    ['a bad mtu', () => [conf({ mtu: 20 }), {}], 7, /'mtu' must be an integer from 68/],
    ['a bad subnet', () => [conf({ subnet: '10.0.0.1/24' }), {}], 7, /host bits set/],
    ['a bad port mapping', () => [conf({ runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } }), {}], 7, /portMappings\[0\]\.hostPort/],
    ['a bad alias', () => [conf({ runtimeConfig: { aliases: { podnet: ['-bad'] } } }), {}], 7, /aliases/],
    ['a CNI_ARGS IP that is not an address', () => [conf(), { CNI_ARGS: 'IP=10.89.7.300' }], 4, /CNI_ARGS: IP '10\.89\.7\.300' is not an IPv4 address/],
    ['a CNI_ARGS pair without =', () => [conf(), { CNI_ARGS: 'IgnoreUnknown=1;junk' }], 4, /'junk' is not KEY=VALUE/],
    ['an unknown CNI_ARGS key without IgnoreUnknown', () => [conf(), { CNI_ARGS: 'FOO=1' }], 4, /unknown key 'FOO'/],
    ['a multicast MAC', () => [conf(), { CNI_ARGS: 'MAC=01:00:5e:00:00:01' }], 4, /multicast/],
    ['no CNI_CONTAINERID', () => [conf(), { CNI_CONTAINERID: undefined }], 4, /CNI_CONTAINERID is not set/],
    ['a bad CNI_CONTAINERID', () => [conf(), { CNI_CONTAINERID: '../x' }], 4, /CNI_CONTAINERID/],
    ['no CNI_NETNS on ADD', () => [conf(), { CNI_NETNS: undefined }], 4, /CNI_NETNS is not set/],
    ['a CNI_NETNS that does not exist', () => [conf(), { CNI_NETNS: '/run/netns/vscn-none' }], 4, /CNI_NETNS \/run\/netns\/vscn-none does not exist/],
    ['a CNI_IFNAME too long', () => [conf(), { CNI_IFNAME: 'a-very-long-ifname' }], 4, /CNI_IFNAME/],
    ['an unknown CNI_COMMAND', () => [conf(), { CNI_COMMAND: 'GC' }], 4, /CNI_COMMAND 'GC' is not one of/],
  ];
  for (const [what, make, code, msg] of cases) {
    it(what, async () => {
      const [config, extra] = make();
      const r = await call('ADD', config, extra);
      expectError(r, code, msg);
      expect(d.log).toEqual([]);
    });
  }

  it('the error carries the configuration\'s version', async () => {
    const r = await call('ADD', conf({ cniVersion: '0.4.0', network: undefined }));
    expect(r.json.cniVersion).toBe('0.4.0');
  });
});

describe('DEL', () => {
  it('is idempotent: twice, and without the namespace', async () => {
    expect((await call('ADD', conf())).code).toBe(0);
    const first = await call('DEL', conf());
    expect(first).toMatchObject({ code: 0, stdout: '' });
    expect(d.attachments.size).toBe(0);
    const second = await call('DEL', conf(), { CNI_NETNS: undefined });
    expect(second).toMatchObject({ code: 0, stdout: '' });
    expect(d.log.filter((l) => l.method === 'DELETE').map((l) => l.path)).toEqual([`/attachments/${ID}%2Feth0`, `/attachments/${ID}%2Feth0`]);
  });

  it('asks again later when the daemon is not there (11): nothing is forgotten', async () => {
    const r = await call('DEL', conf({ socket: path.join(tmp, 'nobody.sock') }));
    expectError(r, 11);
  });
});

describe('CHECK', () => {
  const looks = (mac: string, addresses: string[]): CniDeps => ({ inspect: async () => ({ mac, addresses, mtu: 1500 }) });

  it('passes when the interface in the namespace is as attached', async () => {
    const add = await call('ADD', conf());
    const r = await call('CHECK', conf({ prevResult: add.json }), {}, looks('02:42:0A:59:07:0A', ['10.89.7.10/24']));
    expect(r).toMatchObject({ code: 0, stdout: '' });
  });

  it('takes the MAC from prevResult (a chained tuning may have changed it)', async () => {
    const add = await call('ADD', conf());
    add.json.interfaces[1].mac = '02:00:00:00:00:99';
    expect((await call('CHECK', conf({ prevResult: add.json }), {}, looks('02:00:00:00:00:99', ['10.89.7.10/24']))).code).toBe(0);
  });

  it('fails for an interface that is not attached (103), another address or MAC (106)', async () => {
    expectError(await call('CHECK', conf(), {}, looks('02:42:0a:59:07:0a', ['10.89.7.10/24'])), 103, /no attachment/);
    await call('ADD', conf());
    expectError(await call('CHECK', conf(), {}, looks('02:42:0a:59:07:0a', ['10.89.7.99/24'])), 106, /has 10\.89\.7\.99\/24, not 10\.89\.7\.10\/24/);
    expectError(await call('CHECK', conf(), {}, looks('02:42:0a:59:07:0b', ['10.89.7.10/24'])), 106, /MAC/);
    expectError(await call('CHECK', conf(), {}, { inspect: async () => undefined }), 106, /no interface eth0/);
  });

  it('is refused for versions before 0.4.0 (1)', async () => {
    expectError(await call('CHECK', conf({ cniVersion: '0.3.1' })), 1, /CHECK is not part of cniVersion 0\.3\.1/);
  });
});

describe('IPAM delegation', () => {
  const ipamResult = (address: string, gateway = '10.89.7.1') => JSON.stringify({
    cniVersion: '1.0.0', ips: [{ address, gateway }], dns: { search: ['pods.example'] },
  });

  it('ADD asks the IPAM plugin (same env, same stdin) and attaches with its address; DEL releases it', async () => {
    const ipam = fakeIpam(tmp, 'fake-ipam-1', { stdout: ipamResult('10.89.7.42/24') });
    const config = conf({ ipam: { type: 'fake-ipam-1', ranges: [[{ subnet: '10.89.7.0/24' }]] } });
    const r = await call('ADD', config);
    expect(r.code, r.stdout).toBe(0);
    expect(ipam.calls()).toEqual([`ADD ${ID} eth0`]);
    expect(ipam.stdinOf('ADD')).toBe(config);
    expect((d.log.find((l) => l.path === '/attachments')?.body as { ip: string }).ip).toBe('10.89.7.42');
    expect(r.json.ips[0].address).toBe('10.89.7.42/24');
    expect(r.json.dns).toEqual({ nameservers: ['10.89.7.1'], search: ['pods.example'] });
    expect((await call('DEL', config)).code).toBe(0);
    expect(ipam.calls()).toEqual([`ADD ${ID} eth0`, `DEL ${ID} eth0`]);
  });

  it('an IPAM error is passed on with its own code', async () => {
    fakeIpam(tmp, 'fake-ipam-2', { stdout: JSON.stringify({ cniVersion: '1.0.0', code: 7, msg: 'no IP addresses available in range set' }), code: 1 });
    const r = await call('ADD', conf({ ipam: { type: 'fake-ipam-2' } }));
    expectError(r, 7, /fake-ipam-2.*no IP addresses available/);
    expect(attachCalls()).toEqual([]);
  });

  it('an address outside the network is refused (7) and released again', async () => {
    const ipam = fakeIpam(tmp, 'fake-ipam-3', { stdout: ipamResult('10.1.2.3/24', '10.1.2.1') });
    const r = await call('ADD', conf({ ipam: { type: 'fake-ipam-3' } }));
    expectError(r, 7, /allocated 10\.1\.2\.3\/24, outside the vsw network cninet/);
    expect(ipam.calls()).toEqual([`ADD ${ID} eth0`, `DEL ${ID} eth0`]);
    expect(attachCalls()).toEqual([]);
  });

  it('a daemon refusal after the allocation releases the address', async () => {
    const ipam = fakeIpam(tmp, 'fake-ipam-4', { stdout: ipamResult('10.89.7.43/24') });
    d.failNextAttach = { status: 500, code: 'E_SYSTEM', message: 'ip link add failed' };
    expectError(await call('ADD', conf({ ipam: { type: 'fake-ipam-4' } })), 104, /ip link add failed/);
    expect(ipam.calls()).toEqual([`ADD ${ID} eth0`, `DEL ${ID} eth0`]);
  });

  it('a plugin missing from CNI_PATH is a configuration error (7)', async () => {
    expectError(await call('ADD', conf({ ipam: { type: 'no-such-ipam' } })), 7, /'no-such-ipam' is not in CNI_PATH/);
  });
});

describe('attachment names (what vsw ps shows)', () => {
  it('the pod name, with its Kubernetes namespace when given; else the short container id', () => {
    expect(attachmentName(ID, { podName: 'web1' })).toBe('web1');
    expect(attachmentName(ID, { podName: 'web1', podNamespace: 'shop' })).toBe('web1.shop');
    expect(attachmentName(ID, {})).toBe('aaaaaaaaaaaa');
    expect(attachmentName('my-test-ctr', {})).toBe('my-test-ctr');
    expect(attachmentName(ID, { podName: 'bad name' })).toBe('aaaaaaaaaaaa');
  });
});
