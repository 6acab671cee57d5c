// End to end: container network modes (none, host, container:OTHER), foreground `run`
// (exit code and output pass through, --rm), and `rm` of running containers. One daemon in
// a throwaway host namespace; see test/fixtures/harness.ts for safety.

import * as fs from 'fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, NetworkInfo } from '../../control/types';
import {
  cleanupPrefix, Daemon, ETC_NETNS, execIn, isRoot, NEEDS_ROOT, netnsExists, pidAlive, runPrefix, startDaemon, waitFor,
} from '../fixtures/harness';

const P = runPrefix('m');
const name = (s: string): string => `${P}-${s}`;

if (!isRoot) console.warn(`test/integration/modes.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('container modes and life cycle (root)', () => {
  let d: Daemon;

  const ps = (): Promise<ContainerInfo[]> => d.vswJson<ContainerInfo[]>(['ps', '--format', 'json']);
  const hostLinks = async (): Promise<string> => (await execIn(d.hostNs, 'ip', '-o', 'link')).stdout;

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 1 });
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('--network none: only lo inside, and it is UP', async () => {
    const n1 = name('n1');
    const r = await d.vsw(['run', '--name', n1, '--network', 'none']);
    expect(r.code, r.stderr).toBe(0);
    const links = await d.vsw(['exec', n1, '--', 'ip', '-o', 'link']);
    expect(links.code, links.stderr).toBe(0);
    const lines = links.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(':')[1].trim().split('@')[0]), links.stdout).toEqual(['lo']);
    expect(lines[0]).toMatch(/<[^>]*\bUP\b[^>]*>/);
    const info = (await ps()).find((c) => c.name === n1)!;
    expect(info.mode).toBe('none');
    expect(info.networks).toEqual([]);
    // No network: nothing but loopback is reachable.
    const out = await d.vsw(['exec', n1, '--', 'ping', '-n', '-c', '1', '-W', '1', '10.89.0.254']);
    expect(out.code).not.toBe(0);
    const lo = await d.vsw(['exec', n1, '--', 'ping', '-n', '-c', '1', '-W', '2', '127.0.0.1']);
    expect(lo.code, lo.stdout + lo.stderr).toBe(0);
    // Connecting it to a network gives it an eth0 and a default route.
    await d.vswOk(['network', 'connect', 'bridge', n1]);
    const eth0 = await d.vsw(['exec', n1, '--', 'ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(eth0.stdout).toMatch(/inet 10\.89\.0\.\d+\/24/);
    const tap = await d.vsw(['exec', n1, '--', 'ping', '-n', '-c', '2', '-i', '0.2', '-W', '3', '10.89.0.254']);
    expect(tap.code, tap.stdout + tap.stderr).toBe(0);
    await d.vswOk(['rm', n1]);
    expect(netnsExists(n1)).toBe(false);
  }, 60_000);

  it('--network host: the command sees the daemon\'s namespace (the TAP vsw0 with the host address)', async () => {
    const h1 = name('h1');
    const net = await d.vswJson<NetworkInfo>(['network', 'inspect', 'bridge']);
    const r = await d.vsw(['run', '--rm', '--name', h1, '--network', 'host', '--', 'ip', '-o', 'addr']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`\\bvsw0\\s+inet ${net.hostPort!.ip.replace(/\./g, '\\.')}/24`));
    expect((await ps()).map((c) => c.name)).not.toContain(h1);
  }, 60_000);

  describe('--network container:c1', () => {
    const c1 = name('c1');
    const port = 18_000 + (process.pid % 1000);
    // c1's own command: a TCP server on its loopback only.
    const server = `require('net').createServer((s) => s.end('hello-from-c1\\n')).listen(${port}, '127.0.0.1')`;

    beforeAll(async () => {
      await d.vswOk(['run', '-d', '--name', c1, '--', process.execPath, '-e', server]);
      await waitFor('the server in c1 to listen', async () =>
        (await execIn(c1, 'ss', '-Hltn', `sport = :${port}`)).stdout.includes(String(port)));
    }, 60_000);

    it('shows c1\'s eth0 address and MAC', async () => {
      const ep = (await ps()).find((c) => c.name === c1)!.networks[0];
      const j1 = name('j1');
      const r = await d.vsw(['run', '--rm', '--name', j1, '--network', `container:${c1}`, '--', 'ip', '-o', 'addr']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`\\beth0\\s+inet ${ep.ip.replace(/\./g, '\\.')}/24`));
      const l = await d.vsw(['run', '--rm', '--name', j1, '--network', `container:${c1}`, '--', 'ip', '-o', 'link', 'show', 'dev', 'eth0']);
      expect(l.code, l.stderr).toBe(0);
      expect(l.stdout.toLowerCase()).toContain(ep.mac.toLowerCase());
      expect((await ps()).map((c) => c.name)).not.toContain(j1);
    }, 60_000);

    it('a server in c1 on 127.0.0.1 is reachable from j2 over the shared loopback', async () => {
      const j2 = name('j2');
      const client = `require('net').connect(${port}, '127.0.0.1').on('data', (b) => process.stdout.write(b)).on('error', (e) => { console.error(e.message); process.exit(3); })`;
      const r = await d.vsw(['run', '--rm', '--name', j2, '--network', `container:${c1}`, '--', process.execPath, '-e', client]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('hello-from-c1\n');
    }, 60_000);

    it('c1 cannot be removed while a container shares its namespace; ps shows the sharer', async () => {
      const j3 = name('j3');
      await d.vswOk(['run', '--name', j3, '--network', `container:${c1}`]);
      const info = (await ps()).find((c) => c.name === j3)!;
      expect(info.mode).toBe('container');
      expect(info.sharedWith).toBe(c1);
      const r = await d.vsw(['rm', '-f', c1]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(j3);
      await d.vswOk(['rm', j3]);
      expect(netnsExists(c1)).toBe(true); // removing the sharer leaves c1 alone
      await d.vswOk(['rm', '-f', c1]);
      expect(netnsExists(c1)).toBe(false);
    }, 60_000);
  });

  it('run in the foreground: exit code and output pass through; the container stays (exited)', async () => {
    const f1 = name('f1');
    const r = await d.vsw(['run', '--name', f1, '--', 'sh', '-c', 'echo out-marker; echo err-marker >&2; exit 7']);
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('out-marker\n');
    expect(r.stderr).toContain('err-marker');
    const info = (await ps()).find((c) => c.name === f1);
    expect(info, 'f1 stays without --rm').toBeDefined();
    expect(info!.status).toBe('exited');
    expect(info!.exitCode).toBe(7);
    expect(netnsExists(f1)).toBe(true);
    // runs inside the container's namespace: its eth0 is there
    const inside = await d.vsw(['run', '--rm', '--name', name('f3'), '--', 'ip', '-o', 'link', 'show', 'dev', 'eth0']);
    expect(inside.code, inside.stderr).toBe(0);
    // a command that does not exist: 127, like a shell
    const missing = await d.vsw(['run', '--rm', '--name', name('f4'), '--', 'no-such-command-vsw']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/not found/);
    await d.vswOk(['rm', f1]);
    expect(netnsExists(f1)).toBe(false);
  }, 60_000);

  it('exec: exit code, stdout and stderr pass through', async () => {
    const e1 = name('e1');
    await d.vswOk(['run', '-d', '--name', e1, '--', 'sleep', '600']);
    const r = await d.vsw(['exec', e1, '--', 'sh', '-c', 'echo to-out; echo to-err >&2; exit 4']);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('to-out\n');
    expect(r.stderr).toContain('to-err');
    const ip = await d.vsw(['exec', e1, '--', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    const ep = (await ps()).find((c) => c.name === e1)!.networks[0];
    expect(ip.stdout).toContain(`${ep.ip}/24`);
    const missing = await d.vsw(['exec', e1, '--', 'no-such-command-vsw']);
    expect(missing.code).toBe(127);
    await d.vswOk(['rm', '-f', e1]);
  }, 60_000);

  it('run -d --rm: the container removes itself when its command exits', async () => {
    const dr = name('dr');
    await d.vswOk(['run', '-d', '--rm', '--name', dr, '--', 'sh', '-c', 'sleep 0.3']);
    await waitFor('dr to be removed', async () => !(await ps()).some((c) => c.name === dr), { timeoutMs: 15_000, intervalMs: 300 });
    expect(netnsExists(dr)).toBe(false);
    expect(fs.existsSync(`${ETC_NETNS}/${dr}`), `${ETC_NETNS}/${dr} (its resolv.conf and hosts)`).toBe(false);
  }, 60_000);

  it('run --rm: the container, its namespace and its host-end veth are gone afterwards', async () => {
    const f2 = name('f2');
    const r = await d.vsw(['run', '--rm', '--name', f2, '--', 'sh', '-c', 'ip -o link show dev eth0; exit 3']);
    expect(r.code, r.stderr).toBe(0 + 3);
    expect(r.stdout).toMatch(/eth0/);
    expect((await ps()).map((c) => c.name)).not.toContain(f2);
    expect(netnsExists(f2)).toBe(false);
    const net = await d.vswJson<NetworkInfo>(['network', 'inspect', 'bridge']);
    expect(net.endpoints.map((e) => e.container)).not.toContain(f2);
    // Only the TAP and the host ends of containers still present remain in the host namespace.
    const expected = new Set(net.endpoints.map((e) => e.hostIf));
    const extra = (await hostLinks()).split('\n').map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
      .filter((n): n is string => !!n && n.startsWith('vsw') && !/^vsw\d+$/.test(n) && !expected.has(n));
    expect(extra, 'leftover veth host ends').toEqual([]);
  }, 60_000);

  it('rm of a running detached container is refused without -f, works with -f, and cleans up', async () => {
    const r1 = name('r1');
    await d.vswOk(['run', '-d', '--name', r1, '--', 'sleep', '600']);
    const info = (await ps()).find((c) => c.name === r1)!;
    expect(info.status).toBe('running');
    expect(info.pid).toBeGreaterThan(0);
    const hostIf = info.networks[0].hostIf;
    expect(await hostLinks()).toContain(`: ${hostIf}@`);
    const refused = await d.vsw(['rm', r1]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^vsw: .*running/);
    expect((await ps()).map((c) => c.name)).toContain(r1);
    expect(pidAlive(info.pid!)).toBe(true);
    const ok = await d.vsw(['rm', '-f', r1]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe(r1);
    expect((await ps()).map((c) => c.name)).not.toContain(r1);
    expect(netnsExists(r1)).toBe(false);
    expect(await hostLinks()).not.toContain(hostIf);
    await waitFor('the detached command to be gone', () => !pidAlive(info.pid!), { timeoutMs: 5_000 });
    expect(fs.existsSync(`${d.stateDir}/containers/${r1}.log`)).toBe(false);
  }, 60_000);

  it('a detached command that exits is shown as exited with its code; its log has its output', async () => {
    const x1 = name('x1');
    await d.vswOk(['run', '-d', '--name', x1, '--', 'sh', '-c', 'echo logged-line; exit 5']);
    const info = await waitFor('x1 to exit', async () => {
      const c = (await ps()).find((x) => x.name === x1);
      return c && c.status === 'exited' ? c : undefined;
    }, { timeoutMs: 10_000 });
    expect(info.exitCode).toBe(5);
    expect(fs.readFileSync(`${d.stateDir}/containers/${x1}.log`, 'utf8')).toContain('logged-line');
    await d.vswOk(['rm', x1]);
  }, 60_000);

  it('the daemon survived all of it', async () => {
    expect(d.running()).toBe(true);
    await d.vswOk(['network', 'ls']);
  });
});
