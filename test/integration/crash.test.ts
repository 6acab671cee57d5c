// End to end: the daemon dies (kill -9) in the middle of `vsw run -d`. Whatever step it
// died at, the next start leaves nothing half-made: no namespace, no veth host end, no
// /etc/netns entry, no record; the name can be used again, and `vsw rm -f` cleans up.
// Two ways to die: at a named step (VSW_CRASH_AT, control/crash.ts: the daemon SIGKILLs
// itself there, deterministic), and a real kill -9 from outside the moment the namespace,
// then the veth host end, shows up.
// Also: names and subnets the daemon must refuse before it makes anything.

import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_POINTS } from '../../control/crash';
import type { ContainerInfo } from '../../control/types';
import {
  cleanupPrefix, Daemon, ETC_NETNS, execIn, isRoot, listNetns, NEEDS_ROOT, netnsExists, runPrefix, startDaemon, waitFor,
} from '../fixtures/harness';
import { ping } from '../fixtures/topology';

/** POST JSON to the daemon's API socket: status and body. */
function post(sock: string, urlPath: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, path: urlPath, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const P = runPrefix('c');
const Q = runPrefix('w');
const K = `${P}-keep`;
const X = `${P}-x`;
const N2 = `${P}-n2`;

if (!isRoot) console.warn(`test/integration/crash.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('kill -9 during run -d (root)', () => {
  let d: Daemon;
  let keepIp = '';
  let linksBefore: string[] = [];

  const ps = async (): Promise<ContainerInfo[]> => d.vswJson<ContainerInfo[]>(['ps', '--format', 'json']);
  /** The switch-port interfaces (vsw*) of the daemon's namespace. */
  const hostLinks = async (): Promise<string[]> => {
    const r = await execIn(d.hostNs, 'ip', '-o', 'link', 'show');
    return r.stdout.split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1]).filter((n): n is string => !!n && n.startsWith('vsw')).sort();
  };
  /** Everything a half-made X could leave, as text (empty when nothing). */
  const leftovers = async (): Promise<string[]> => {
    const out: string[] = [];
    if (listNetns().includes(X)) out.push(`namespace ${X}`);
    if (fs.existsSync(path.join(ETC_NETNS, X))) out.push(`${ETC_NETNS}/${X}`);
    if (fs.existsSync(path.join(d.stateDir, 'containers', `${X}.log`))) out.push(`${X}.log`);
    const links = await hostLinks();
    for (const l of links) if (!linksBefore.includes(l)) out.push(`host end ${l}`);
    if ((await ps()).some((c) => c.name === X)) out.push(`container ${X} in ps`);
    return out;
  };
  /** X can be made again, reaches the keeper, and rm -f leaves nothing. */
  const reuse = async (): Promise<void> => {
    const r = await d.vsw(['run', '-d', '--name', X, '--', 'sleep', '600']);
    expect(r.code, `run --name ${X} after the crash: ${r.stderr}`).toBe(0);
    expect((await ping(X, keepIp, 2, ['-W', '3'])).received).toBe(2);
    await d.vswOk(['rm', '-f', X]);
    expect(await leftovers()).toEqual([]);
  };

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 1 });
    await d.vswOk(['run', '-d', '--name', K, '--', 'sleep', '600']);
    keepIp = (await ps()).find((c) => c.name === K)!.networks[0].ip;
    await d.vswOk(['network', 'create', '--subnet', '10.98.0.0/24', N2]);
    linksBefore = await hostLinks();
    expect(linksBefore.length).toBe(3); // vsw0, vsw1 and the keeper's host end
  }, 120_000);

  afterAll(async () => {
    delete process.env.VSW_CRASH_AT;
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it.each(CRASH_POINTS.map((p) => [p]))('the daemon dies at %s: the next start undoes it, and the name can be used again', async (point) => {
    // The daemon gets VSW_CRASH_AT from our environment when it is (re)started.
    process.env.VSW_CRASH_AT = point;
    try {
      await d.restart();
    } finally {
      delete process.env.VSW_CRASH_AT;
    }
    const r = await d.vsw(['run', '-d', '--name', X, '--', 'sleep', '600']);
    expect(r.code, r.stdout).toBe(1);
    await waitFor('the daemon to die', () => !d.running(), { timeoutMs: 10_000, intervalMs: 50 });
    expect(d.log()).toContain(`VSW_CRASH_AT=${point}: killing myself`);
    // It did die half-way: from the namespace on, the namespace is there.
    if (point !== 'after-intent') expect(netnsExists(X), 'the namespace the crash left').toBe(true);

    await d.restart();
    expect(d.log()).toContain(`container ${X}: its creation was interrupted`);
    expect(await leftovers()).toEqual([]);
    expect((await ps()).map((c) => c.name)).toEqual([K]);
    expect((await ping(d.hostNs, keepIp, 2, ['-W', '3'])).received, 'the keeper after the restart').toBe(2);
    await reuse();
  }, 120_000);

  it.each([['after-veth'], ['after-addr']])('the daemon dies at %s of a network connect: the next start removes the veth no record lists, and connect works', async (point) => {
    process.env.VSW_CRASH_AT = point;
    try {
      await d.restart();
    } finally {
      delete process.env.VSW_CRASH_AT;
    }
    const r = await d.vsw(['network', 'connect', N2, K]);
    expect(r.code, r.stdout).toBe(1);
    await waitFor('the daemon to die', () => !d.running(), { timeoutMs: 10_000, intervalMs: 50 });
    const stray = (await hostLinks()).filter((l) => !linksBefore.includes(l));
    expect(stray.length, 'the veth host end the crash left').toBe(1);
    expect((await execIn(K, 'ip', '-o', 'link')).stdout).toContain('eth1');

    await d.restart();
    const again = await d.vsw(['network', 'connect', N2, K]);
    expect(again.code, `network connect after the restart: ${again.stderr}`).toBe(0);
    expect(d.log()).toContain(`removed ${stray[0]}, a veth end of container ${K} on network ${N2} that no record lists`);
    expect((await execIn(K, 'ip', '-o', 'link')).stdout, 'the stray eth1 is gone: the new endpoint is eth1').toMatch(/eth1/);
    expect((await execIn(K, 'ip', '-o', 'link')).stdout).not.toMatch(/eth2/);
    expect((await ping(K, '10.98.0.1', 2, ['-W', '3'])).received, `${K} -> ${N2}'s gateway`).toBe(2);
    await d.vswOk(['network', 'disconnect', N2, K]);
    expect(await hostLinks()).toEqual(linksBefore);
  }, 120_000);

  it.each([
    ['the namespace appears', async (): Promise<boolean> => fs.existsSync(`/run/netns/${X}`)],
    ['its host end appears', async (): Promise<boolean> => (await hostLinks()).some((l) => !linksBefore.includes(l))],
  ])('kill -9 from outside the moment %s: after a restart nothing is half-made', async (_what, appeared) => {
    const run = d.vsw(['run', '-d', '--name', X, '--', 'sleep', '600']);
    await waitFor('the step to be reached', appeared, { timeoutMs: 20_000, intervalMs: 1 });
    await d.kill9();
    await run;
    await d.restart();
    const made = (await ps()).some((c) => c.name === X);
    if (made) {
      // The kill came after the creation was saved: X is a whole container; rm -f cleans it.
      await d.vswOk(['rm', '-f', X]);
    }
    expect(await leftovers(), made ? 'after rm -f' : 'after the restart').toEqual([]);
    await reuse();
  }, 120_000);
});

describe.skipIf(!isRoot)('names and subnets refused before anything is made (root)', () => {
  let d: Daemon;
  const N = `${Q}-n`;
  const A = `${Q}-case`;

  beforeAll(async () => {
    d = await startDaemon({ prefix: Q, workers: 1 });
    await d.vswOk(['network', 'create', '--subnet', '10.97.0.0/24', N]);
    await d.vswOk(['run', '-d', '--name', A, '--network', N, '--alias', 'web', '--', 'sleep', '600']);
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(Q);
    // A daemon that accepted an upper-case twin (the defect) made a namespace by that name.
    await cleanupPrefix(Q.toUpperCase());
  }, 60_000);

  const refused = async (args: string[], why: RegExp, made?: string): Promise<void> => {
    const r = await d.vsw(args);
    expect(r.code, `vsw ${args.join(' ')}: ${r.stdout}`).toBe(1);
    expect(r.stderr).toMatch(why);
    if (made) expect(listNetns(), `a namespace was made for ${made}`).not.toContain(made);
  };

  it('container names that are one DNS name with another container\'s: case, NAME.NETWORK, aliases', async () => {
    const upper = A.toUpperCase();
    await refused(['run', '-d', '--name', upper, '--network', N, '--', 'sleep', '600'],
      new RegExp(`container name '${upper}' collides with container '${A}': DNS names are case-insensitive`), upper);
    await refused(['run', '-d', '--name', `${A}.${N}`, '--', 'sleep', '600'],
      new RegExp(`container '${A}\\.${N}' would answer to the DNS name '${A}\\.${N}', which is the name of container '${A}' in network '${N}'`), `${A}.${N}`);
    await refused(['run', '-d', '--name', `${Q}-web`, '--network', N, '--alias', A.toUpperCase(), '--', 'sleep', '600'],
      /alias '.*' of container '.*-web' would answer to the DNS name .* which is the name of container/, `${Q}-web`);
    await refused(['run', '-d', '--name', 'WEB', '--', 'sleep', '600'], /which is an alias of container/);
    // network connect with an alias, too.
    await d.vswOk(['run', '-d', '--name', `${Q}-b`, '--', 'sleep', '600']);
    await refused(['network', 'connect', '--alias', A, N, `${Q}-b`], /alias .* would answer to the DNS name/);
    // Shared aliases are what aliases are for: still fine.
    await d.vswOk(['network', 'connect', '--alias', 'web', N, `${Q}-b`]);
    // The API says 409 (E_CONFLICT).
    const api = await post(d.sock, '/containers', { name: A.toUpperCase(), detach: true, cmd: ['sleep', '1'] });
    expect(api.status, api.body).toBe(409);
    expect(JSON.parse(api.body).error.code).toBe('E_CONFLICT');
    const names = (await d.vswJson<ContainerInfo[]>(['ps', '--format', 'json'])).map((c) => c.name).sort();
    expect(names).toEqual([A, `${Q}-b`].sort());
    await d.vswOk(['rm', '-f', `${Q}-b`]);
  }, 60_000);

  it.each([
    ['169.254.0.0/16', 'link-local'],
    ['169.254.42.0/24', 'link-local'],
    ['224.0.0.0/24', 'multicast'],
    ['239.10.0.0/16', 'multicast'],
    ['0.0.0.0/8', 'this network'],
    ['127.1.0.0/16', 'loopback'],
    ['240.0.0.0/24', 'reserved'],
  ])('network create --subnet %s is refused (%s)', async (subnet, why) => {
    await refused(['network', 'create', '--subnet', subnet, `${Q}-bad`],
      new RegExp(`subnet ${subnet.replace(/\./g, '\\.')} overlaps .*\\("?${why}`));
    const nets = await d.vswJson<{ name: string }[]>(['network', 'ls', '--format', 'json']);
    expect(nets.map((n) => n.name)).not.toContain(`${Q}-bad`);
  }, 30_000);
});
