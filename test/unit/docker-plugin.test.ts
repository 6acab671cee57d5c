// The Docker plugin's handlers (control/docker/) against the request shapes libnetwork's
// remote driver and IPAM driver send (Docker 20.10, as recorded from dockerd), over the
// fake engine: what each call answers, what it asks the engine for, the error shapes
// ({"Err"} / {"Error"}), refusals that keep nothing, and the state kept across restarts.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as http from 'http';
import { pluginHandlers, startDockerPlugin } from '../../control/docker/index';
import { portMappings } from '../../control/docker/driver';
import { DockerStore } from '../../control/docker/state';
import { FakeEngine } from '../fixtures/fake-engine';

const NID = '7ad29e669cac9ca3c6c308de9ebbc3973cb97ee35d45dc2fa8488709e170ab72';
const EID = 'e4b71a98544eb1fb180232ffd08afcda940f57560c3dfc388d7c223a4cd18e9f';
const KEY = '/var/run/docker/netns/a80a9e879815';
const PORTMAP = { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }] };

function createNetwork(generic: Record<string, string> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    NetworkID: NID, Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': generic },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.77.0.0/24', Gateway: '10.77.0.1/24' }], IPv6Data: [], ...extra,
  };
}

describe('the Docker plugin', () => {
  let dir: string;
  let engine: FakeEngine;
  let plugin: ReturnType<typeof pluginHandlers>;
  let store: DockerStore;
  const call = async (p: string, body: Record<string, unknown> = {}): Promise<any> => {
    const r = await plugin.call(p, body);
    expect(r.status).toBe(200);
    return r.body;
  };
  const engineCalls = (m: string): unknown[][] => engine.calls.filter((c) => c[0] === m);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-dockerplugin-'));
    engine = new FakeEngine();
    store = new DockerStore(dir);
    plugin = pluginHandlers(engine, store);
  });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('Activate names both drivers; capabilities are local; an unknown call is a 404 (not implemented)', async () => {
    expect(await call('/Plugin.Activate')).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });
    expect(await call('/NetworkDriver.GetCapabilities')).toEqual({ Scope: 'local', ConnectivityScope: 'local' });
    expect(await call('/IpamDriver.GetCapabilities')).toEqual({ RequiresMACAddress: false, RequiresRequestReplay: false });
    expect(await call('/NetworkDriver.DiscoverNew', { DiscoveryType: 1, DiscoveryData: {} })).toEqual({});
    expect((await plugin.call('/NetworkDriver.AllocateNetwork', {})).status).toBe(404);
    expect((await plugin.call('/VolumeDriver.Create', {})).status).toBe(404);
  });

  it('CreateNetwork: the pool, gateway and -o options become a vsw network (named docker-ID without dockerd)', async () => {
    expect(await call('/NetworkDriver.CreateNetwork', createNetwork({
      'com.docker.network.driver.mtu': '1400', vlan: '10', icc: 'false', 'dns-order': 'random',
    }, { Options: { 'com.docker.network.internal': true, 'com.docker.network.generic': { 'com.docker.network.driver.mtu': '1400', vlan: '10', icc: 'false', 'dns-order': 'random' } } }))).toEqual({});
    expect(await plugin.driver.vswNetwork(NID)).toBe(`docker-${NID.slice(0, 12)}`);
    expect(engineCalls('createNetwork')).toEqual([['createNetwork', {
      name: `docker-${NID.slice(0, 12)}`, subnet: '10.77.0.0/24', gateway: '10.77.0.1', internal: true, icc: false, mtu: 1400, vlan: 10, dnsOrder: 'random',
    }]]);
    // Kept: a new plugin on the same state dir knows it (Docker does not resend CreateNetwork).
    expect(new DockerStore(dir).network(NID)?.vsw).toBe(`docker-${NID.slice(0, 12)}`);
  });

  it.each([
    [{ colour: 'red' }, "vsw: unknown option 'colour' (vsw networks take -o com.docker.network.driver.mtu, -o vlan, -o internal, -o icc, -o dns-order)"],
    [{ 'com.docker.network.driver.mtu': '9x' }, 'vsw: option com.docker.network.driver.mtu=9x: expected 68 to 65535'],
    [{ vlan: '4095' }, 'vsw: option vlan=4095:'],
    [{ icc: 'maybe' }, 'vsw: option icc=maybe: expected true or false'],
    [{ 'dns-order': 'alphabetic' }, 'vsw: option dns-order=alphabetic: expected rotate, random, fixed'],
  ])('CreateNetwork with bad options %j: {"Err"} naming the option, and nothing kept or made', async (generic, message) => {
    const r = await call('/NetworkDriver.CreateNetwork', createNetwork(generic));
    expect(r.Err).toContain(message);
    expect(store.state.networks).toEqual([]);
    expect(engineCalls('createNetwork')).toEqual([]);
  });

  it('CreateNetwork refuses IPv6, two subnets, and a subnet over a vsw network', async () => {
    expect((await call('/NetworkDriver.CreateNetwork', createNetwork({}, { IPv6Data: [{ Pool: 'fd00::/64' }] }))).Err).toContain('IPv6 is not supported');
    expect((await call('/NetworkDriver.CreateNetwork', createNetwork({}, { IPv4Data: [{ Pool: '10.1.0.0/24' }, { Pool: '10.2.0.0/24' }] }))).Err)
      .toContain('one IPv4 subnet (Docker gave 2)');
    expect((await call('/NetworkDriver.CreateNetwork', createNetwork({}, { IPv4Data: [{ Pool: '172.17.5.0/24', Gateway: '172.17.5.1/24' }] }))).Err)
      .toBe("vsw: subnet 172.17.5.0/24 overlaps network 'bridge' (172.17.0.0/16)");
    expect(store.state.networks).toEqual([]);
  });

  it('CreateEndpoint answers only the MAC Docker left empty; Join makes the attachment and answers the interface and the gateway', async () => {
    await call('/NetworkDriver.CreateNetwork', createNetwork());
    const ce = { NetworkID: NID, EndpointID: EID, Interface: { Address: '10.77.0.4/24', AddressIPv6: '', MacAddress: '' }, Options: PORTMAP };
    expect(await call('/NetworkDriver.CreateEndpoint', ce)).toEqual({ Interface: { MacAddress: '02:42:0a:4d:00:04' } });
    expect(await call('/NetworkDriver.CreateEndpoint', { ...ce, Interface: { ...ce.Interface, MacAddress: '02:00:00:00:00:09' } })).toEqual({ Interface: {} });
    const join = await call('/NetworkDriver.Join', { NetworkID: NID, EndpointID: EID, SandboxKey: KEY, Options: PORTMAP });
    const a = engine.attachments.get(EID)!;
    expect(a).toMatchObject({ owner: 'docker', sandbox: KEY, name: 'docker-a80a9e879815', ip: '10.77.0.4', mac: '02:00:00:00:00:09', network: `docker-${NID.slice(0, 12)}` });
    expect(join).toEqual({ InterfaceName: { SrcName: a.innerIf, DstPrefix: 'eth' }, Gateway: '10.77.0.1', StaticRoutes: [], DisableGatewayService: false });
    expect(await call('/NetworkDriver.EndpointOperInfo', { NetworkID: NID, EndpointID: EID })).toEqual({ Value: {} });
  });

  it('ProgramExternalConnectivity publishes the portmap; Revoke unpublishes; DeleteEndpoint twice is fine; DeleteNetwork removes the vsw network', async () => {
    await call('/NetworkDriver.CreateNetwork', createNetwork());
    await call('/NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: EID, Interface: { Address: '10.77.0.4/24' } });
    await call('/NetworkDriver.Join', { NetworkID: NID, EndpointID: EID, SandboxKey: KEY });
    expect(await call('/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NID, EndpointID: EID, Options: PORTMAP })).toEqual({});
    expect(engine.attachments.get(EID)!.publish).toEqual([{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' }]);
    await call('/NetworkDriver.RevokeExternalConnectivity', { NetworkID: NID, EndpointID: EID });
    expect(engine.attachments.get(EID)!.publish).toEqual([]);
    expect(await call('/NetworkDriver.Leave', { NetworkID: NID, EndpointID: EID })).toEqual({});
    expect(await call('/NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: EID })).toEqual({});
    expect(engine.attachments.size).toBe(0);
    expect(await call('/NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: EID })).toEqual({});
    expect(await call('/NetworkDriver.DeleteNetwork', { NetworkID: NID })).toEqual({});
    expect(engineCalls('removeNetwork')).toEqual([['removeNetwork', `docker-${NID.slice(0, 12)}`]]);
    expect(store.state).toEqual({ pools: [], networks: [], endpoints: [] });
  });

  it('a Join the engine refuses is an {"Err"} with its reason', async () => {
    await call('/NetworkDriver.CreateNetwork', createNetwork());
    await call('/NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: EID, Interface: { Address: '10.77.0.4/24' } });
    engine.failNext = new Error("container 'x' already exists");
    expect((await call('/NetworkDriver.Join', { NetworkID: NID, EndpointID: EID, SandboxKey: KEY })).Err).toBe("vsw: container 'x' already exists");
    expect((await call('/NetworkDriver.Join', { NetworkID: NID, EndpointID: 'nope', SandboxKey: KEY })).Err).toBe('vsw: no endpoint nope');
  });

  it('portmap: a host port range publishes its first port; IPv6 host addresses are left out; no host port is refused', () => {
    expect(portMappings([{ Proto: 17, Port: 53, HostIP: '10.0.0.1', HostPort: 5353, HostPortEnd: 5360 }, { Proto: 6, Port: 80, HostIP: '::', HostPort: 8080 }]))
      .toEqual([{ hostIp: '10.0.0.1', hostPort: 5353, containerPort: 53, proto: 'udp' }]);
    expect(() => portMappings([{ Proto: 6, Port: 80, HostPort: 0 }])).toThrow('without a host port is not supported');
    expect(() => portMappings([{ Proto: 132, Port: 80, HostPort: 80 }])).toThrow('TCP or UDP');
  });

  describe('IPAM', () => {
    it('a pool Docker names, its gateway, then addresses that skip the gateway and the host port; released again', async () => {
      expect(await call('/IpamDriver.GetDefaultAddressSpaces')).toEqual({ LocalDefaultAddressSpace: 'vsw-local', GlobalDefaultAddressSpace: 'vsw-global' });
      const pool = await call('/IpamDriver.RequestPool', { AddressSpace: 'vsw-local', Pool: '10.60.0.0/29', SubPool: '', Options: {}, V6: false });
      expect(pool).toEqual({ PoolID: 'vsw/10.60.0.0/29', Pool: '10.60.0.0/29', Data: {} });
      const gw = await call('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
      expect(gw).toEqual({ Address: '10.60.0.1/29', Data: {} });
      const got: string[] = [];
      for (let i = 0; i < 4; i++) got.push((await call('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: {} })).Address ?? 'error');
      // .2 .. .5; .6 is vsw's host port on the network, .7 the broadcast address.
      expect(got).toEqual(['10.60.0.2/29', '10.60.0.3/29', '10.60.0.4/29', '10.60.0.5/29']);
      expect((await call('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: {} })).Error).toContain('no free address left');
      expect(await call('/IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: '10.60.0.3' })).toEqual({});
      expect((await call('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '10.60.0.3', Options: {} })).Address).toBe('10.60.0.3/29');
      expect((await call('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '10.60.0.3', Options: {} })).Error).toContain('already in use');
      expect(await call('/IpamDriver.ReleasePool', { PoolID: pool.PoolID })).toEqual({});
      expect(store.state.pools).toEqual([]);
    });

    it('no pool named: one from vsw\'s pool that overlaps no vsw network and no other pool; overlaps and IPv6 are refused with {"Error"}', async () => {
      const a = await call('/IpamDriver.RequestPool', { AddressSpace: 'vsw-local', Pool: '', V6: false });
      const b = await call('/IpamDriver.RequestPool', { AddressSpace: 'vsw-local', Pool: '', V6: false });
      expect([a.Pool, b.Pool]).toEqual(['10.89.0.0/24', '10.89.1.0/24']);
      expect((await call('/IpamDriver.RequestPool', { Pool: '10.89.1.128/25' })).Error).toBe("vsw: subnet 10.89.1.128/25 overlaps network 'docker pool 10.89.1.0/24' (10.89.1.0/24)");
      expect((await call('/IpamDriver.RequestPool', { Pool: '172.17.1.0/24' })).Error).toContain("overlaps network 'bridge'");
      expect((await call('/IpamDriver.RequestPool', { Pool: 'fd00::/64', V6: true })).Error).toContain('IPv6 pools are not supported');
      expect((await call('/IpamDriver.RequestAddress', { PoolID: 'vsw/nope' })).Error).toBe("vsw IPAM: no pool 'vsw/nope'");
      expect(store.state.pools.map((p) => p.pool)).toEqual(['10.89.0.0/24', '10.89.1.0/24']);
    });

    it('a network on a vsw IPAM pool is not refused as overlapping its own pool', async () => {
      const pool = await call('/IpamDriver.RequestPool', { Pool: '10.77.0.0/24' });
      await call('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Options: { RequestAddressType: 'com.docker.network.gateway' } });
      expect(await call('/NetworkDriver.CreateNetwork', createNetwork())).toEqual({});
    });
  });

  it('the socket: root-only, the protocol\'s content type, refused while another plugin of the name serves it, removed at close', async () => {
    const o = { name: 'vswtest', dir: path.join(dir, 'plugins'), stateDir: path.join(dir, 'state') };
    const p = await startDockerPlugin(engine, o, () => undefined);
    expect(p.socket).toBe(path.join(dir, 'plugins', 'vswtest.sock'));
    expect(fs.statSync(p.socket).mode & 0o777).toBe(0o600);
    const answer = await new Promise<{ type?: string; body: string }>((resolve, reject) => {
      const req = http.request({ socketPath: p.socket, method: 'POST', path: '/Plugin.Activate', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ type: res.headers['content-type'], body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end('{}');
    });
    expect(answer).toEqual({ type: 'application/vnd.docker.plugins.v1+json', body: '{"Implements":["NetworkDriver","IpamDriver"]}' });
    await expect(startDockerPlugin(engine, o, () => undefined)).rejects.toThrow(`a plugin named 'vswtest' (another vsw daemon?) is already listening on ${p.socket}`);
    await p.close();
    expect(fs.existsSync(p.socket)).toBe(false);
  });
});
