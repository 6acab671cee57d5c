// End to end with the real dockerd (Debian's docker.io 20.10): vsw as Docker's network
// driver (`vsw daemon --docker-plugin`, control/docker/). A vsw daemon in a host namespace
// with an uplink to an "outside" namespace; a dockerd in the same host namespace
// (test/fixtures/dockerd.ts), finding the plugin through a spec file in its own
// /etc/docker/plugins. Containers on a vsw network ping by name and --network-alias
// (Docker's DNS), reach the outside through the uplink (the outside sees the uplink
// address), serve `-p 8080:80` to the outside (busybox httpd sees the client's address);
// network connect/disconnect; vsw ps shows Docker's names; bad -o options are a docker
// error and change nothing; kill -9 of vsw and a restart, and a dockerd restart, keep them
// switching; docker network rm leaves nothing in vsw.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, NetworkInfo } from '../../control/types';
import { background, cleanupPrefix, Daemon, execIn, isRoot, NEEDS_ROOT, runPrefix, sh, startDaemon, waitFor, type Background } from '../fixtures/harness';
import { linkOutside } from '../fixtures/topology';
import { dockerMissing, IMAGE, startDockerd, type Dockerd } from '../fixtures/dockerd';

const P = runPrefix('dk');
const OUT = `${P}-out`;
const OUTSIDE_IP = '198.51.100.1';
const UPLINK_IP = '198.51.100.2';
const NET = `${P}n`;
const NET2 = `${P}n2`;
const A = `${P}a`;
const B = `${P}b`;
const WEB = `${P}web`;

const missing = isRoot ? dockerMissing() : NEEDS_ROOT;
if (missing) console.warn(`test/integration/docker.test.ts skipped: ${missing}`);

describe.skipIf(missing !== undefined)('Docker on vsw: the remote network driver with the real dockerd (root)', () => {
  let d: Daemon;
  let dk: Dockerd;
  let pluginDir: string;
  let web: Background | undefined;

  const ps = (): Promise<ContainerInfo[]> => d.vswJson<ContainerInfo[]>(['ps', '--format', 'json']);
  const ipOf = async (c: string, net = NET): Promise<string> =>
    (await dk.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c])).stdout.trim();
  /** null when the pings are all answered, else the output. */
  const pings = async (from: string, dst: string, n = 2): Promise<string | null> => {
    const r = await dk.docker(['exec', from, 'ping', '-c', String(n), '-W', '3', dst], 30_000);
    return r.code === 0 && r.stdout.includes(`${n} packets received`) ? null : `${r.stdout}${r.stderr}`;
  };

  beforeAll(async () => {
    pluginDir = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-plugin-`));
    d = await startDaemon({
      prefix: P, workers: 2,
      setup: async (hostNs) => {
        await linkOutside(hostNs, OUT, OUTSIDE_IP);
        web = background('ip', ['netns', 'exec', OUT, 'python3', '-u', '-m', 'http.server', '80', '--bind', OUTSIDE_IP], 600_000);
      },
      // dockerd's socket is named before dockerd runs: the plugin asks it for names only when called.
      extraArgs: ['--uplink', 'up0', '--uplink-ip', `${UPLINK_IP}/24`, '--uplink-gateway', OUTSIDE_IP,
        '--docker-plugin', '--docker-plugin-dir', pluginDir, '--docker-host', `unix://${os.tmpdir()}/${P}-dockerd.sock`],
    });
    dk = await startDockerd(d.hostNs, P);
    // dockerd's real socket, where the vsw daemon was told to look.
    fs.symlinkSync(dk.sock, `${os.tmpdir()}/${P}-dockerd.sock`);
    fs.writeFileSync(path.join(dk.pluginSpecDir, 'vsw.spec'), `unix://${pluginDir}/vsw.sock\n`);
    await waitFor('the outside web server', async () => (await execIn(OUT, 'ss', '-ltnH')).stdout.includes(':80 '), { timeoutMs: 15_000 });
  }, 240_000);

  afterAll(async () => {
    await web?.stop('SIGKILL', 2_000).catch(() => undefined);
    await dk?.stop();
    fs.rmSync(`${os.tmpdir()}/${P}-dockerd.sock`, { force: true });
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
    if (pluginDir) {
      expect(fs.existsSync(path.join(pluginDir, 'vsw.sock')), 'the plugin socket after a clean stop').toBe(false);
      fs.rmSync(pluginDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('bad driver options are a clear docker error, and nothing is made', async () => {
    const before = await d.vswJson<NetworkInfo[]>(['network', 'ls', '--format', 'json']);
    for (const [opts, msg] of [
      [['-o', 'colour=red'], "unknown option 'colour'"],
      [['-o', 'com.docker.network.driver.mtu=20'], 'expected 68 to 65535'],
      [['-o', 'vlan=5000'], 'vlan=5000'],
      [['-o', 'icc=maybe'], 'icc=maybe: expected true or false'],
      [['--subnet', '10.89.0.0/25'], "overlaps network 'bridge'"],
      [['--subnet', `${UPLINK_IP}/28`], "overlaps network 'uplink'"],
    ] as [string[], string][]) {
      const r = await dk.docker(['network', 'create', '-d', 'vsw', ...opts, `${P}bad`]);
      expect(r.code, `${opts.join(' ')}: ${r.stdout}`).not.toBe(0);
      expect(r.stderr).toContain(msg);
    }
    expect((await dk.docker(['network', 'ls', '--format', '{{.Name}}'])).stdout).not.toContain(`${P}bad`);
    expect(await d.vswJson<NetworkInfo[]>(['network', 'ls', '--format', 'json'])).toEqual(before);
  }, 120_000);

  it('docker network create -d vsw: a vsw network of the same name, subnet, gateway and options', async () => {
    await dk.dockerOk(['network', 'create', '-d', 'vsw', '--subnet', '10.77.0.0/24', '--gateway', '10.77.0.1', '-o', 'com.docker.network.driver.mtu=1400', NET]);
    const n = await waitFor('the vsw network', async () => {
      const r = await d.vsw(['network', 'inspect', NET]);
      return r.code === 0 ? JSON.parse(r.stdout) as NetworkInfo : undefined;
    }, { timeoutMs: 15_000 });
    expect(n).toMatchObject({ subnet: '10.77.0.0/24', gateway: '10.77.0.1', mtu: 1400 });
  }, 60_000);

  it('two containers ping each other by name and by --network-alias; vsw ps shows them by their Docker names', async () => {
    await dk.dockerOk(['run', '-d', '--restart', 'always', '--name', A, '--network', NET, '--network-alias', 'alpha', IMAGE, 'sleep', '600']);
    await dk.dockerOk(['run', '-d', '--restart', 'always', '--name', B, '--network', NET, IMAGE, 'sleep', '600']);
    expect(await pings(B, A)).toBeNull();
    expect(await pings(B, 'alpha')).toBeNull();
    const cs = await ps();
    const a = cs.find((c) => c.name === A);
    expect(a, JSON.stringify(cs.map((c) => c.name))).toMatchObject({ mode: 'docker', networks: [{ network: NET, ip: await ipOf(A) }] });
    expect((await dk.dockerOk(['exec', A, 'ip', 'link', 'show', 'eth0'])).stdout).toContain('mtu 1400');
    const fdb = await d.vswJson<{ container?: string }[]>(['fdb', NET, '--format', 'json']);
    expect(fdb.map((e) => e.container)).toContain(B);
  }, 120_000);

  it('a container reaches the outside through the uplink; the outside sees the uplink address', async () => {
    const r = await dk.docker(['exec', A, 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${OUTSIDE_IP} 80`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Directory listing');
    await waitFor('the access log line', () => web!.stderr().includes('"GET / '), { timeoutMs: 5_000 });
    const lines = web!.stderr().split('\n').filter((l) => l.includes('"GET / '));
    for (const l of lines) expect(l.startsWith(`${UPLINK_IP} `), l).toBe(true);
  }, 60_000);

  it('-p 8080:80: busybox httpd reached from the outside with curl at the uplink address; it sees the client address', async () => {
    await dk.dockerOk(['run', '-d', '--name', WEB, '--network', NET, '-p', '8080:80', IMAGE, 'sh', '-c',
      'mkdir -p /www && echo hello-from-docker > /www/index.html && exec httpd -f -vv -p 80 -h /www']);
    const att = await waitFor('the published port in vsw', async () => {
      const c = (await ps()).find((x) => x.name === WEB);
      return c && c.ports.some((p) => p.hostPort === 8080) ? c : undefined;
    }, { timeoutMs: 15_000 });
    expect(att.ports).toEqual([{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' }]);
    const r = await waitFor('curl from outside', async () => {
      const x = await execIn(OUT, 'curl', '-sS', '--max-time', '3', `http://${UPLINK_IP}:8080/`);
      return x.code === 0 ? x : undefined;
    }, { timeoutMs: 20_000 });
    expect(r.stdout).toContain('hello-from-docker');
    const logs = await dk.dockerOk(['logs', WEB]);
    expect(`${logs.stdout}${logs.stderr}`).toContain(`${OUTSIDE_IP}]:`);
    // Stopped: the published port goes with it.
    await dk.dockerOk(['rm', '-f', WEB]);
    expect((await execIn(OUT, 'curl', '-sS', '--max-time', '2', `http://${UPLINK_IP}:8080/`)).code).not.toBe(0);
  }, 120_000);

  it('docker network connect and disconnect: a second vsw network comes and goes in the container', async () => {
    await dk.dockerOk(['network', 'create', '-d', 'vsw', '--subnet', '10.78.0.0/24', NET2]);
    await dk.dockerOk(['network', 'connect', NET2, A]);
    const a2 = await ipOf(A, NET2);
    expect(a2).toMatch(/^10\.78\.0\./);
    expect((await ps()).find((c) => c.name === A)?.networks.map((e) => e.network).sort()).toEqual([NET, NET2].sort());
    expect((await dk.dockerOk(['exec', A, 'ping', '-c', '1', '-W', '3', '10.78.0.1'])).stdout).toContain('1 packets received');
    await dk.dockerOk(['network', 'disconnect', NET2, A]);
    expect((await ps()).find((c) => c.name === A)?.networks.map((e) => e.network)).toEqual([NET]);
    expect((await dk.docker(['exec', A, 'ip', 'link', 'show', 'eth1'])).code).not.toBe(0);
    await dk.dockerOk(['network', 'rm', NET2]);
    expect((await d.vsw(['network', 'inspect', NET2])).code).not.toBe(0);
  }, 120_000);

  it('--ipam-driver vsw: the pool, the gateway and the container addresses come from vsw; released with the network', async () => {
    const net3 = `${P}n3`;
    await dk.dockerOk(['network', 'create', '-d', 'vsw', '--ipam-driver', 'vsw', '--subnet', '10.79.0.0/24', net3]);
    const r = await dk.docker(['network', 'create', '-d', 'vsw', '--ipam-driver', 'vsw', '--subnet', '10.79.0.128/25', `${P}n4`]);
    expect(r.stderr).toContain('overlaps');
    await dk.dockerOk(['run', '-d', '--name', `${P}c3`, '--network', net3, IMAGE, 'sleep', '600']);
    expect(await ipOf(`${P}c3`, net3)).toBe('10.79.0.2');
    expect((await dk.dockerOk(['exec', `${P}c3`, 'ping', '-c', '1', '-W', '3', '10.79.0.1'])).stdout).toContain('1 packets received');
    await dk.dockerOk(['rm', '-f', `${P}c3`]);
    await dk.dockerOk(['network', 'rm', net3]);
    // The pool is free again.
    await dk.dockerOk(['network', 'create', '-d', 'vsw', '--ipam-driver', 'vsw', '--subnet', '10.79.0.128/25', `${P}n4`]);
    await dk.dockerOk(['network', 'rm', `${P}n4`]);
  }, 120_000);

  it('kill -9 of the vsw daemon and a restart: the pings resume', async () => {
    await d.kill9();
    expect(await pings(B, A, 1)).not.toBeNull();
    await d.restart();
    expect(await pings(B, A)).toBeNull();
    expect((await ps()).map((c) => c.name)).toEqual(expect.arrayContaining([A, B]));
  }, 120_000);

  it('a dockerd restart: its containers come back on their networks, and switch', async () => {
    await dk.restart();
    await waitFor('both containers running again', async () => {
      const r = await dk.docker(['ps', '--filter', 'status=running', '--format', '{{.Names}}']);
      return r.stdout.includes(A) && r.stdout.includes(B);
    }, { timeoutMs: 60_000 });
    expect(await pings(B, A)).toBeNull();
    // dockerd answers its API only once its containers are back: their names follow.
    await waitFor('vsw ps to show the Docker names again', async () => {
      const names = (await ps()).filter((c) => c.mode === 'docker').map((c) => c.name).sort();
      return names.join() === [A, B].sort().join();
    }, { timeoutMs: 30_000 });
  }, 180_000);

  it('docker rm and docker network rm leave nothing in vsw', async () => {
    await dk.dockerOk(['rm', '-f', A, B]);
    await dk.dockerOk(['network', 'rm', NET]);
    expect((await ps()).filter((c) => c.mode === 'docker')).toEqual([]);
    expect((await d.vsw(['network', 'inspect', NET])).code).not.toBe(0);
    // No veth end of an endpoint is left (vsw + 8 hex: host ends; vsi + 8 hex: inner ends not taken by Docker).
    const links = (await sh('ip', ['-n', d.hostNs, '-br', 'link'])).stdout.split('\n').map((l) => l.split(/[\s@]/)[0]);
    expect(links.filter((l) => /^vs[wi][0-9a-f]{8}$/.test(l))).toEqual([]);
  }, 120_000);
});
