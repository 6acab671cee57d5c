// Integration test of control/netns.ts against the real kernel (needs root).
// Everything happens inside namespaces this test creates, all named with a per-run prefix:
//   SW = stands in for the daemon's namespace (host ends live there: hostNetns = SW),
//   C1 = a container.
// Nothing is added to the machine's own namespace; afterAll removes every namespace with
// the prefix (which takes their interfaces along) even when a test failed.

import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../../control/errors';
import { run, runJson } from '../../control/exec';
import { macFromIp } from '../../control/ipam';
import {
  addAddress,
  configureEndpoint,
  createNetns,
  createVeth,
  deleteLink,
  deleteNetns,
  disableIpv6,
  hostIfName,
  linkExists,
  linkMac,
  listLinks,
  listNetns,
  netnsExists,
  netnsPath,
  nextInnerIfName,
  pidAlive,
  setMtu,
  spawnInNetns,
  usedPrefixes,
} from '../../control/netns';
import { runPrefix } from '../fixtures/harness';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const d = isRoot ? describe : describe.skip;
if (!isRoot) {
  console.warn('test/integration/netns.test.ts skipped: needs root (creates network namespaces)');
}

const PREFIX = `${runPrefix('n')}-`;
const SW = `${PREFIX}sw`;
const C1 = `${PREFIX}c1`;
const C2 = `${PREFIX}c2`;
let tmp = '';

interface AddrJson {
  ifname: string;
  mtu: number;
  flags: string[];
  address: string;
  addr_info: { family: string; local: string; prefixlen: number; broadcast?: string }[];
}
interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
}

function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

d('netns (root, inside throwaway namespaces)', () => {
  const h1 = hostIfName(`${PREFIX}c1/net1`);
  const h2 = hostIfName(`${PREFIX}c1/net2`);
  let rootLinksBefore: string[] = [];

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-netns-test-'));
    rootLinksBefore = (await listLinks()).map((l) => l.name).sort();
    await createNetns(SW);
    await createNetns(C1);
  });

  afterAll(async () => {
    for (const ns of listNetns().filter((n) => n.startsWith(PREFIX))) {
      try {
        await deleteNetns(ns);
      } catch (err) {
        // last resort, keep going with the others
        await run('ip', ['netns', 'delete', ns]).catch(() => undefined);
        console.error(`cleanup of ${ns}: ${(err as Error).message}`);
      }
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    expect(listNetns().filter((n) => n.startsWith(PREFIX))).toEqual([]);
  });

  it('creates namespaces with lo up, refuses duplicates and bad names', async () => {
    expect(netnsExists(SW)).toBe(true);
    expect(netnsExists(C1)).toBe(true);
    expect(netnsPath(C1)).toBe(`/run/netns/${C1}`);
    expect(listNetns()).toEqual(expect.arrayContaining([SW, C1]));
    await expect(createNetns(C1)).rejects.toThrow(ConflictError);
    await expect(createNetns('bad/name')).rejects.toThrow(InvalidArgumentError);
    const lo = await runJson<AddrJson[]>('ip', ['-n', C1, '-j', 'addr', 'show', 'dev', 'lo']);
    expect(lo[0].flags).toContain('UP');
    expect(netnsExists(`${PREFIX}nope`)).toBe(false);
  });

  it('hostIfName is stable and short', () => {
    expect(hostIfName('x')).toBe(hostIfName('x'));
    expect(hostIfName('x')).not.toBe(hostIfName('y'));
    expect(hostIfName('x')).toMatch(/^vsw[0-9a-f]{8}$/);
    expect(hostIfName('x'.repeat(1000)).length).toBeLessThanOrEqual(15);
  });

  it('creates a veth pair and configures the endpoint', async () => {
    expect(await nextInnerIfName(C1)).toBe('eth0');
    await createVeth(h1, C1, 1400, 'eth0', SW);
    await expect(createVeth(h1, C1, 1400, 'eth5', SW)).rejects.toThrow(ConflictError);

    // Host end: in SW, up, MTU, IPv6 off; and not in the machine's own namespace.
    expect(await linkExists(h1, SW)).toBe(true);
    expect(await linkExists(h1)).toBe(false);
    const host = (await listLinks(SW)).find((l) => l.name === h1);
    expect(host).toMatchObject({ up: true, mtu: 1400, kind: 'veth' });
    const v6 = await run('ip', ['netns', 'exec', SW, 'cat', `/proc/sys/net/ipv6/conf/${h1}/disable_ipv6`]).catch(
      () => ({ stdout: '1' }), // kernel without IPv6: nothing to disable
    );
    expect(v6.stdout.trim()).toBe('1');

    const mac = macFromIp('10.89.0.2');
    await configureEndpoint(C1, 'eth0', {
      mac,
      ip: '10.89.0.2',
      prefixLen: 24,
      gateway: '10.89.0.1',
      mtu: 1400,
      defaultRoute: true,
    });
    // Idempotent (recovery re-runs it).
    await configureEndpoint(C1, 'eth0', {
      mac,
      ip: '10.89.0.2',
      prefixLen: 24,
      gateway: '10.89.0.1',
      mtu: 1400,
      defaultRoute: true,
    });

    const [eth0] = await runJson<AddrJson[]>('ip', ['-n', C1, '-j', 'addr', 'show', 'dev', 'eth0']);
    expect(eth0.address).toBe(mac);
    expect(eth0.mtu).toBe(1400);
    expect(eth0.flags).toContain('UP');
    const v4 = eth0.addr_info.filter((a) => a.family === 'inet');
    expect(v4).toHaveLength(1);
    expect(v4[0]).toMatchObject({ local: '10.89.0.2', prefixlen: 24, broadcast: '10.89.0.255' });
    expect(await linkMac('eth0', C1)).toBe(mac);

    const routes = await runJson<RouteJson[]>('ip', ['-n', C1, '-j', '-4', 'route', 'show']);
    expect(routes).toContainEqual(expect.objectContaining({ dst: 'default', gateway: '10.89.0.1', dev: 'eth0' }));
  });

  it('a second network gives eth1 without touching the default route', async () => {
    expect(await nextInnerIfName(C1)).toBe('eth1');
    await createVeth(h2, C1, 1500, 'eth1', SW);
    await configureEndpoint(C1, 'eth1', {
      mac: macFromIp('10.89.1.2'),
      ip: '10.89.1.2',
      prefixLen: 24,
      gateway: '10.89.1.1',
      mtu: 1500,
      defaultRoute: false,
    });
    const [eth1] = await runJson<AddrJson[]>('ip', ['-n', C1, '-j', 'addr', 'show', 'dev', 'eth1']);
    expect(eth1.addr_info.find((a) => a.family === 'inet')).toMatchObject({ local: '10.89.1.2', prefixlen: 24 });
    const defaults = (await runJson<RouteJson[]>('ip', ['-n', C1, '-j', '-4', 'route', 'show'])).filter(
      (r) => r.dst === 'default',
    );
    expect(defaults).toEqual([expect.objectContaining({ gateway: '10.89.0.1', dev: 'eth0' })]);
    expect(await nextInnerIfName(C1)).toBe('eth2');
  });

  it('host-side addresses, MTU, usedPrefixes (in SW only)', async () => {
    await addAddress(h1, '10.89.0.254/24', SW);
    await addAddress(h1, '10.89.0.254/24', SW); // idempotent
    await setMtu(h2, 1450, SW);
    expect((await listLinks(SW)).find((l) => l.name === h2)?.mtu).toBe(1450);
    const used = await usedPrefixes(SW);
    expect(used).toContain('10.89.0.0/24');
    expect(used).toContain('127.0.0.0/8');
    expect(used).not.toContain('default');
    // The container's default route does not show up in SW.
    expect(used).not.toContain('10.89.1.0/24');
    await disableIpv6(h2, SW); // again: harmless
  });

  it('link functions report missing things clearly', async () => {
    expect(await linkExists('vswnothere', SW)).toBe(false);
    expect(await linkExists('eth0', `${PREFIX}nope`)).toBe(false);
    await deleteLink('vswnothere', SW); // idempotent
    await expect(linkMac('vswnothere', SW)).rejects.toThrow(NotFoundError);
    await expect(setMtu('vswnothere', 1400, SW)).rejects.toThrow(/vswnothere/);
    await expect(createVeth('vswx', `${PREFIX}nope`, 1500, 'eth0', SW)).rejects.toThrow(NotFoundError);
  });

  it('spawnInNetns runs inside the container, logs, and reports the exit code', async () => {
    const log = path.join(tmp, 'c1.log');
    const { pid, child } = spawnInNetns(C1, ['sh', '-c', 'echo hi; ip -o -4 addr show dev eth0; exit 3'], log);
    expect(pid).toBeGreaterThan(0);
    const done = await waitExit(child);
    expect(done.code).toBe(3);
    expect(pidAlive(pid)).toBe(false);
    const text = fs.readFileSync(log, 'utf8');
    expect(text).toContain('hi');
    expect(text).toContain('10.89.0.2/24'); // it really ran in C1

    // A running one is alive.
    const sleeper = spawnInNetns(C1, ['sleep', '30'], log);
    try {
      expect(pidAlive(sleeper.pid)).toBe(true);
    } finally {
      process.kill(sleeper.pid, 'SIGKILL');
      await waitExit(sleeper.child);
    }
    expect(() => spawnInNetns(`${PREFIX}nope`, ['true'], log)).toThrow(NotFoundError);
    expect(() => spawnInNetns(null, ['/nonexistent/vsw-cmd'], log)).toThrow(/cannot start/);
  });

  it('deleteNetns removes the veth host ends too, and is idempotent', async () => {
    await createNetns(C2);
    const h3 = hostIfName(`${PREFIX}c2/net1`);
    await createVeth(h3, C2, 1500, 'eth0', SW);
    // Keep a process inside C2: the namespace then outlives `ip netns delete`, but the
    // veths must still go away at once.
    const holder = spawnInNetns(C2, ['sleep', '30'], path.join(tmp, 'c2.log'));
    try {
      await deleteNetns(C2);
      expect(netnsExists(C2)).toBe(false);
      expect(await linkExists(h3, SW)).toBe(false);
    } finally {
      process.kill(holder.pid, 'SIGKILL');
      await waitExit(holder.child);
    }

    await deleteNetns(C1);
    expect(netnsExists(C1)).toBe(false);
    expect(await linkExists(h1, SW)).toBe(false);
    expect(await linkExists(h2, SW)).toBe(false);
    await deleteNetns(C1); // absent: fine
  });

  it('left the machine’s own namespace alone', async () => {
    // (Only our own names are checked: other test runs may come and go meanwhile.)
    const ours = [h1, h2, hostIfName(`${PREFIX}c2/net1`)];
    const now = (await listLinks()).map((l) => l.name);
    expect(now.filter((n) => ours.includes(n))).toEqual([]);
    expect(rootLinksBefore.filter((n) => ours.includes(n))).toEqual([]);
  });
});
