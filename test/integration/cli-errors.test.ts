// End to end: bad input to the real CLI against a real daemon. Every case must give a clear
// message (`vsw: ...` on stderr) and a non-zero exit (2 for usage errors found by the CLI,
// 1 for what the daemon refuses), must not leave anything behind, and must never kill the
// daemon: `vsw network ls` is checked after each. See test/fixtures/harness.ts for safety.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, NetworkInfo } from '../../control/types';
import {
  addNetns, CLI, cleanupPrefix, Daemon, isRoot, listNetns, NEEDS_ROOT, NODE, runPrefix, sh, startDaemon,
} from '../fixtures/harness';

const P = runPrefix('e');
const C1 = `${P}-c1`;
const H1 = `${P}-h1`;

if (!isRoot) console.warn(`test/integration/cli-errors.test.ts skipped: ${NEEDS_ROOT}`);

interface Case {
  what: string;
  args: string[];
  code: number;
  /** Every one of these must appear in stderr. */
  says: (string | RegExp)[];
  /** Run (best effort) when the command wrongly succeeded, so one bug does not fail other tests. */
  undo?: string[];
}

describe.skipIf(!isRoot)('CLI errors against a live daemon (root)', () => {
  let d: Daemon;
  let netsBefore: string[] = [];

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 1 });
    await d.vswOk(['run', '-d', '--name', C1, '--', 'sleep', '600']);
    await d.vswOk(['run', '--name', H1, '--network', 'host']);
    netsBefore = (await d.vswJson<NetworkInfo[]>(['network', 'ls', '--format', 'json'])).map((n) => n.name).sort();
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  const cases: Case[] = [
    { what: 'unknown command', args: ['frobnicate'], code: 2, says: [/unknown command 'frobnicate'/] },
    { what: 'unknown option', args: ['network', 'ls', '--bogus'], code: 2, says: [/unknown option '--bogus'/] },
    { what: 'network create without a name', args: ['network', 'create'], code: 2, says: [/missing required argument 'name'/] },
    { what: '--subnet with host bits set', args: ['network', 'create', '--subnet', '10.1.2.3/16', `${P}-n1`], code: 1, says: ['10.1.0.0/16'] },
    { what: '--subnet bogus', args: ['network', 'create', '--subnet', 'bogus', `${P}-n2`], code: 1, says: ['bogus'] },
    { what: 'subnet overlapping the default network', args: ['network', 'create', '--subnet', '10.89.0.0/16', `${P}-n3`], code: 1, says: [/overlap/i, 'bridge'] },
    { what: '--gateway outside the subnet', args: ['network', 'create', '--subnet', '10.93.0.0/24', '--gateway', '10.94.0.1', `${P}-n4`], code: 1, says: ['10.94.0.1', '10.93.0.0/24'] },
    { what: '--mtu 10', args: ['network', 'create', '--subnet', '10.95.0.0/24', '--mtu', '10', `${P}-n5`], code: 1, says: [/mtu/i, '10'] },
    // Subnets where container networking cannot work are refused at `network create`: in
    // 127.0.0.0/24 containers would get addresses but never reach each other (127/8 is
    // loopback inside every namespace); in 224.1.0.0/24 and 0.0.0.0/24 every later `run`
    // would fail with "Nexthop has invalid gateway".
    { what: 'loopback subnet 127.0.0.0/24', args: ['network', 'create', '--subnet', '127.0.0.0/24', `${P}-n7`], code: 1, says: ['127.0.0.0/24'], undo: ['network', 'rm', `${P}-n7`] },
    { what: 'multicast subnet 224.1.0.0/24', args: ['network', 'create', '--subnet', '224.1.0.0/24', `${P}-n8`], code: 1, says: ['224.1.0.0/24'], undo: ['network', 'rm', `${P}-n8`] },
    { what: 'subnet in 0.0.0.0/8', args: ['network', 'create', '--subnet', '0.0.0.0/24', `${P}-n9`], code: 1, says: ['0.0.0.0/24'], undo: ['network', 'rm', `${P}-n9`] },
    { what: '--mtu not a number', args: ['network', 'create', '--mtu', 'big', `${P}-n6`], code: 2, says: [/integer/i] },
    { what: 'network name that is reserved', args: ['network', 'create', 'host'], code: 1, says: [/reserved/] },
    { what: 'network name with bad characters', args: ['network', 'create', 'bad/name'], code: 1, says: [/invalid network name/] },
    { what: 'duplicate network', args: ['network', 'create', 'bridge'], code: 1, says: [/already exists/] },
    { what: 'inspect of a missing network', args: ['network', 'inspect', 'nosuchnet'], code: 1, says: [/network 'nosuchnet' not found/] },
    { what: 'rm of a missing network', args: ['network', 'rm', 'nosuchnet'], code: 1, says: [/not found/] },
    { what: '--gateway on the host port address', args: ['network', 'create', '--subnet', '10.93.0.0/24', '--gateway', '10.93.0.254', `${P}-n10`], code: 1, says: ['10.93.0.254', /host port/], undo: ['network', 'rm', `${P}-n10`] },
    { what: 'run -d with a command that does not exist', args: ['run', '-d', '--name', `${P}-x9`, '--', '/nonexistent/cmd'], code: 127, says: [/command not found/], undo: ['rm', '-f', `${P}-x9`] },
    { what: 'run --ip outside the subnet', args: ['run', '--name', `${P}-x1`, '--ip', '10.50.0.5'], code: 1, says: ['10.50.0.5', '10.89.0.0/24'] },
    { what: 'run --ip taken by another container', args: ['run', '--name', `${P}-x2`, '--ip', '10.89.0.2'], code: 1, says: [/in use/, C1] },
    { what: 'run --ip not an address', args: ['run', '--name', `${P}-x3`, '--ip', '10.89.0'], code: 1, says: ['10.89.0'] },
    { what: 'duplicate container name', args: ['run', '-d', '--name', C1, '--', 'sleep', '1'], code: 1, says: [/already exists/, C1] },
    { what: 'run --network nosuchnet', args: ['run', '--name', `${P}-x4`, '--network', 'nosuchnet'], code: 1, says: [/network 'nosuchnet' not found/] },
    { what: 'run --network container:missing', args: ['run', '--name', `${P}-x5`, '--network', `container:${P}-nope`], code: 1, says: [/not found/] },
    { what: 'run without --name', args: ['run', '--', 'true'], code: 2, says: [/--name/] },
    { what: 'run with an invalid container name', args: ['run', '--name', '-bad'], code: 1, says: [/invalid container name '-bad'/] },
    { what: 'run with a container name with a space', args: ['run', '--name', 'bad name'], code: 1, says: [/invalid container name/] },
    { what: 'run with a too long container name', args: ['run', '--name', 'a'.repeat(64)], code: 1, says: [/invalid container name/] },
    { what: 'run -d without a command', args: ['run', '-d', '--name', `${P}-x6`], code: 1, says: [/needs a command/] },
    { what: 'exec on a missing container', args: ['exec', `${P}-nope`, '--', 'true'], code: 1, says: [/container '.*-nope' not found/] },
    { what: 'exec without a command', args: ['exec', C1], code: 2, says: [/needs a command/] },
    { what: 'rm of a missing container', args: ['rm', `${P}-nope`], code: 1, says: [/container '.*-nope' not found/] },
    { what: 'connect to a missing network', args: ['network', 'connect', 'nosuchnet', C1], code: 1, says: [/not found/] },
    { what: 'connect twice', args: ['network', 'connect', 'bridge', C1], code: 1, says: [/already connected/] },
    { what: 'disconnect of a container that is not connected', args: ['network', 'disconnect', 'bridge', `${P}-nope`], code: 1, says: [/not found/] },
    { what: 'connect of a host-mode container', args: ['network', 'connect', 'bridge', H1], code: 1, says: [/host network/] },
    { what: 'run --ip with --network host', args: ['run', '--name', `${P}-x7`, '--network', 'host', '--ip', '10.89.0.9'], code: 1, says: [/--ip/] },
    { what: 'fdb of a missing network', args: ['fdb', 'nosuchnet'], code: 1, says: [/not found/] },
    { what: 'bad --format', args: ['ps', '--format', 'xml'], code: 2, says: [/xml/] },
  ];

  it.each(cases)('$what: exit $code with a clear message; the daemon lives on', async (c) => {
    const r = await d.vsw(c.args);
    if (r.code === 0 && c.undo) await d.vsw(c.undo);
    const shown = `vsw ${c.args.join(' ')} -> exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    expect(r.code, shown).toBe(c.code);
    expect(r.stderr, shown).toMatch(/^vsw: /m);
    for (const s of c.says) {
      if (typeof s === 'string') expect(r.stderr, shown).toContain(s);
      else expect(r.stderr, shown).toMatch(s);
    }
    expect(r.stderr, 'no stack trace').not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
    expect(d.running(), d.log().slice(-2000)).toBe(true);
    const ls = await d.vsw(['network', 'ls']);
    expect(ls.code, `network ls after '${c.what}': ${ls.stderr}`).toBe(0);
  }, 60_000);

  it('nothing was left behind by the refused commands', async () => {
    const nets = (await d.vswJson<NetworkInfo[]>(['network', 'ls', '--format', 'json'])).map((n) => n.name).sort();
    expect(nets).toEqual(netsBefore);
    const cs = (await d.vswJson<ContainerInfo[]>(['ps', '--format', 'json'])).map((c) => c.name);
    expect(cs.sort()).toEqual([C1, H1].sort());
    const nss = listNetns().filter((n) => n.startsWith(`${P}-`)).sort();
    expect(nss).toEqual([C1, `${P}-host`].sort());
    // Only the TAP and c1's host end are in the daemon's namespace.
    const links = (await sh('ip', ['-n', d.hostNs, '-o', 'link'])).stdout.split('\n')
      .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1]).filter((n): n is string => !!n && n !== 'lo');
    expect(links.length, links.join(' ')).toBe(2);
  }, 30_000);

  it('a full network: the next container is refused with a clear message, and nothing is left behind', async () => {
    // A /29 holds 4 containers (network, broadcast, gateway and host port are reserved).
    const small = `${P}-small`;
    await d.vswOk(['network', 'create', '--subnet', '10.99.0.0/29', small]);
    const names = [1, 2, 3, 4].map((i) => `${P}-s${i}`);
    for (const n of names) await d.vswOk(['run', '--name', n, '--network', small]);
    const r = await d.vsw(['run', '--name', `${P}-s5`, '--network', small]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vsw: no free address left in subnet 10\.99\.0\.0\/29/);
    expect(listNetns()).not.toContain(`${P}-s5`);
    expect((await d.vsw(['network', 'ls'])).code).toBe(0);
    await d.vswOk(['rm', ...names]);
    await d.vswOk(['network', 'rm', small]);
  }, 60_000);

  it('daemon --workers 0 (or a bad --busy-poll, --rx-ring) is a usage error (exit 2), before anything starts', async () => {
    // Run where a daemon that started anyway could do no harm: a namespace of our own.
    const ns = `${P}-w0`;
    await addNetns(ns);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-w0-`));
    try {
      const r = await sh('ip', ['netns', 'exec', ns, NODE, CLI, 'daemon', '--workers', '0',
        '--state-dir', path.join(tmp, 'state'), '--socket', path.join(tmp, 'vsw.sock')], { timeoutMs: 20_000 });
      expect(r.timedOut, 'the daemon started').toBe(false);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^vsw: .*--workers/m);
      expect(r.stderr).toMatch(/1 to 16/);
      expect(fs.existsSync(path.join(tmp, 'vsw.sock'))).toBe(false);
      const big = await sh('ip', ['netns', 'exec', ns, NODE, CLI, 'daemon', '--workers', '99',
        '--state-dir', path.join(tmp, 'state'), '--socket', path.join(tmp, 'vsw.sock')], { timeoutMs: 20_000 });
      expect(big.code, big.stderr).toBe(2);
      for (const [opt, bad] of [['--busy-poll', '-1'], ['--busy-poll', 'fast'], ['--busy-poll', '1000001'], ['--rx-ring', '10'], ['--rx-ring', '65536']]) {
        const r2 = await sh('ip', ['netns', 'exec', ns, NODE, CLI, 'daemon', opt, bad,
          '--state-dir', path.join(tmp, 'state'), '--socket', path.join(tmp, 'vsw.sock')], { timeoutMs: 20_000 });
        expect(r2.code, `${opt} ${bad}: ${r2.stderr}`).toBe(2);
        expect(r2.stderr).toContain(opt);
      }
      expect(fs.existsSync(path.join(tmp, 'vsw.sock'))).toBe(false);
    } finally {
      await sh('ip', ['netns', 'del', ns]);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it('a daemon whose TAP name is taken in its namespace refuses to start, and leaves that interface alone', async () => {
    const ns = `${P}-tp`;
    await addNetns(ns);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-tp-`));
    try {
      await sh('ip', ['-n', ns, 'link', 'add', 'vsw0', 'type', 'veth', 'peer', 'name', 'vsw0p']);
      const r = await sh('ip', ['netns', 'exec', ns, NODE, CLI, 'daemon',
        '--state-dir', path.join(tmp, 'state'), '--socket', path.join(tmp, 'vsw.sock')], { timeoutMs: 20_000 });
      expect(r.timedOut, 'the daemon started').toBe(false);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/interface 'vsw0' .* already exists/);
      expect(fs.existsSync(path.join(tmp, 'vsw.sock'))).toBe(false);
      expect((await sh('ip', ['-n', ns, 'link', 'show', 'vsw0'])).code).toBe(0);
    } finally {
      await sh('ip', ['netns', 'del', ns]);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it('a second daemon on the same state dir is refused, and the first one keeps serving', async () => {
    const ns = `${P}-d2`;
    await addNetns(ns);
    try {
      const r = await sh('ip', ['netns', 'exec', ns, NODE, CLI, 'daemon', '--state-dir', d.stateDir,
        '--socket', `${d.sock}.2`], { timeoutMs: 30_000 });
      expect(r.timedOut, 'the second daemon started').toBe(false);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^vsw: another vsw daemon \\(pid ${d.proc.pid}\\) uses state dir`, 'm'));
    } finally {
      await sh('ip', ['netns', 'del', ns]);
    }
    expect(d.running()).toBe(true);
    await d.vswOk(['network', 'ls']);
    expect(fs.existsSync(`${d.sock}.2`)).toBe(false);
  }, 60_000);

  it('daemon unreachable (wrong --socket): exit 1, and the message says so', async () => {
    const wrong = path.join(os.tmpdir(), `${P}-nosuch`, 'vsw.sock');
    const r = await sh(NODE, [CLI, '--socket', wrong, 'network', 'ls'], { timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`vsw: cannot reach the vsw daemon at ${wrong}`);
    const env = await sh(NODE, [CLI, 'ps'], { timeoutMs: 20_000, env: { ...process.env, VSW_SOCKET: wrong } });
    expect(env.code).toBe(1);
    expect(env.stderr).toContain(wrong);
    // A file that is not a socket.
    const notSock = path.join(d.stateDir, 'state.json');
    const r2 = await sh(NODE, [CLI, '--socket', notSock, 'ps'], { timeoutMs: 20_000 });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/cannot reach the vsw daemon/);
  }, 60_000);
});
