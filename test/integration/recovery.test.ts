// End to end: the daemon dies (kill -9) or stops (SIGINT) and starts again with the same
// state dir and socket. Containers outlive it; on restart they are re-attached with the
// same addresses and MACs, and those whose namespace vanished meanwhile are forgotten.
// One daemon (restarted in place) in a throwaway host namespace; see test/fixtures/harness.ts.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, NetworkInfo } from '../../control/types';
import {
  addNetns, claimPrefix, CLI, cleanupPrefix, Daemon, describeResult, ensureBuilt, ETC_NETNS, execIn, isRoot, listNetns,
  NEEDS_ROOT, netnsExists, netnsPids, NODE, pidAlive, runPrefix, sh, ShResult, startDaemon, trackPid, waitFor,
} from '../fixtures/harness';
import { ping as pingFrom } from '../fixtures/topology';

const P = runPrefix('r');
const C1 = `${P}-c1`;
const C2 = `${P}-c2`;
const C3 = `${P}-c3`;
const C4 = `${P}-c4`;
const C5 = `${P}-c5`;
const C7 = `${P}-c7`;
const C8 = `${P}-c8`;
const B1 = `${P}-b1`;
const NETB = `${P}-netb`;

if (!isRoot) console.warn(`test/integration/recovery.test.ts skipped: ${NEEDS_ROOT}`);

interface Seen { name: string; ip: string; mac: string; hostIf: string; all: string[] }

describe.skipIf(!isRoot)('daemon restart and recovery (root)', () => {
  let d: Daemon;
  let before: Map<string, Seen>;

  const ps = (): Promise<ContainerInfo[]> => d.vswJson<ContainerInfo[]>(['ps', '--format', 'json']);
  const seen = (cs: ContainerInfo[]): Map<string, Seen> =>
    new Map(cs.map((c) => [c.name, {
      name: c.name, ip: c.networks[0]?.ip, mac: c.networks[0]?.mac, hostIf: c.networks[0]?.hostIf,
      all: c.networks.map((n) => `${n.network} ${n.ip} ${n.mac} ${n.hostIf}`),
    }]));
  /** c2's address in netb. */
  const netbIp = (m: Map<string, Seen>, c: string): string => m.get(c)!.all.find((x) => x.startsWith(`${NETB} `))!.split(' ')[1];
  /** null when all 3 pings are answered, else the output. */
  const ping = async (from: string, ip: string): Promise<string | null> => {
    const r = await pingFrom(from, ip, 3, ['-W', '3']);
    return r.received === r.sent && r.sent === 3 ? null : r.out;
  };

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 2 });
    for (const c of [C1, C2, C3, C5, C7, C8]) await d.vswOk(['run', '-d', '--name', c, '--', 'sleep', '600']);
    // A second network, b1 on it, and c2 attached to both (eth0 in bridge, eth1 in netb).
    await d.vswOk(['network', 'create', '--subnet', '10.91.0.0/24', NETB]);
    await d.vswOk(['run', '-d', '--name', B1, '--network', NETB, '--', 'sleep', '600']);
    await d.vswOk(['network', 'connect', NETB, C2]);
    before = seen(await ps());
    expect(before.get(C2)!.all.length).toBe(2);
    expect(await ping(C1, before.get(C2)!.ip)).toBeNull();
    expect(await ping(C2, before.get(B1)!.ip)).toBeNull();
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('after kill -9 and a restart: same containers, same IPs and MACs, c1 pings c2 again; a container whose namespace was deleted meanwhile is gone and its IP is free', async () => {
    await d.kill9();
    // The dataplane died with the daemon.
    expect(await ping(C1, before.get(C2)!.ip), 'c1 reached c2 with the daemon dead').not.toBeNull();
    const down = await d.vsw(['ps']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the vsw daemon/);

    // While it is down, c3 goes away: stop what runs in it and delete its namespace.
    for (const pid of await netnsPids(C3)) {
      trackPid(pid);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    const del = await sh('ip', ['netns', 'del', C3]);
    expect(del.code, describeResult('ip netns del c3', del)).toBe(0);
    // c5's namespace is deleted while its command still runs (the namespace lives on,
    // unnamed, with its veth pair): for vsw it is gone all the same.
    const c5pids = await netnsPids(C5);
    expect(c5pids.length).toBeGreaterThan(0);
    for (const pid of c5pids) trackPid(pid);
    const del5 = await sh('ip', ['netns', 'del', C5]);
    expect(del5.code, describeResult('ip netns del c5', del5)).toBe(0);
    // c3's and c5's /etc/netns entries and logs are still there (ip netns del leaves them).
    for (const c of [C3, C5]) {
      expect(fs.existsSync(path.join(ETC_NETNS, c)), `/etc/netns/${c}`).toBe(true);
      expect(fs.existsSync(path.join(d.stateDir, 'containers', `${c}.log`)), `${c}.log`).toBe(true);
    }
    // c7's namespace is broken: /run/netns/c7 stays, but is no namespace any more (as when
    // it was made in a mount namespace the next daemon cannot see). Its sleep keeps the
    // namespace itself, and its veth pair, alive.
    for (const pid of await netnsPids(C7)) trackPid(pid);
    const um = await sh('umount', [`/run/netns/${C7}`]);
    expect(um.code, describeResult('umount c7', um)).toBe(0);
    expect((await sh('ip', ['netns', 'exec', C7, 'true'])).code, 'c7 can still be entered').not.toBe(0);
    // c8 is broken another way: someone renamed its eth0, so it cannot be configured again.
    const ren = await sh('ip', ['-n', C8, 'link', 'set', 'dev', 'eth0', 'name', 'renamed0']);
    expect(ren.code, describeResult('rename c8 eth0', ren)).toBe(0);

    await d.restart();
    expect(d.log()).toMatch(/daemon ready[\s\S]*daemon ready/);
    expect(d.log()).toContain(`container ${C7}: /run/netns/${C7} is no network namespace any more`);
    // c8 did not stop the start: it is reported, skipped and kept; rm -f removes it all.
    expect(d.log()).toMatch(new RegExp(`container ${C8}: cannot re-attach it \\(.*eth0.*\\): skipped; \`vsw rm -f ${C8}\` removes it`));
    expect((await ps()).find((c) => c.name === C8)?.networks[0].portId).toBe(-1);
    await d.vswOk(['rm', '-f', C8]);
    expect(netnsExists(C8)).toBe(false);
    expect((await execIn(d.hostNs, 'ip', '-o', 'link')).stdout).not.toContain(before.get(C8)!.hostIf);
    expect(fs.existsSync(path.join(ETC_NETNS, C8))).toBe(false);
    const after = seen(await ps());
    expect([...after.keys()].sort()).toEqual([C1, C2, B1].sort());
    // The forgotten containers' files went with them; the broken one's file is removed.
    for (const c of [C3, C5, C7]) {
      expect(fs.existsSync(path.join(ETC_NETNS, c)), `/etc/netns/${c} left behind`).toBe(false);
      expect(fs.existsSync(path.join(d.stateDir, 'containers', `${c}.log`)), `${c}.log left behind`).toBe(false);
    }
    expect(netnsExists(C7), '/run/netns/c7 (stale) left behind').toBe(false);
    for (const c of [C1, C2, B1]) {
      expect(after.get(c), c).toEqual(before.get(c));
    }
    expect(await ping(C1, before.get(C2)!.ip)).toBeNull();
    expect(await ping(C2, before.get(C1)!.ip)).toBeNull();
    // c2's second network (eth1) came back too, and so did netb's TAP.
    expect(await ping(C2, before.get(B1)!.ip)).toBeNull();
    expect(await ping(B1, netbIp(before, C2))).toBeNull();
    expect(await ping(d.hostNs, before.get(B1)!.ip), 'host namespace -> b1 via netb\'s TAP').toBeNull();
    const nets = await d.vswJson<NetworkInfo[]>(['network', 'ls', '--format', 'json']);
    expect(nets.map((n) => n.name).sort()).toEqual(['bridge', NETB].sort());
    const st = (await ps()).find((c) => c.name === C1)!;
    expect(st.status).toBe('running'); // its sleep survived the daemon

    // c3's leftovers are gone from the host namespace, and its address is free again.
    const links = (await execIn(d.hostNs, 'ip', '-o', 'link')).stdout;
    expect(links).not.toContain(before.get(C3)!.hostIf);
    expect(links, "c5's host end (its namespace was deleted under a running process)").not.toContain(before.get(C5)!.hostIf);
    expect(links, "c7's host end (its namespace file was unmounted under a running process)").not.toContain(before.get(C7)!.hostIf);
    const net = await d.vswJson<NetworkInfo>(['network', 'inspect', 'bridge']);
    expect(net.endpoints.map((e) => e.container).sort()).toEqual([C1, C2].sort());
    expect(net.ports.filter((p) => p.role === 'endpoint').map((p) => p.container).sort()).toEqual([C1, C2].sort());
    await d.vswOk(['run', '-d', '--name', C4, '--', 'sleep', '600']);
    const c4 = (await ps()).find((c) => c.name === C4)!;
    expect(c4.networks[0].ip, 'the new container gets the freed address').toBe(before.get(C3)!.ip);
    // c5's address is free too: ask for it explicitly.
    const c6 = `${P}-c6`;
    const r6 = await d.vsw(['run', '-d', '--name', c6, '--ip', before.get(C5)!.ip, '--', 'sleep', '600']);
    expect(r6.code, r6.stderr).toBe(0);
    expect(await ping(c6, before.get(C2)!.ip)).toBeNull();
    await d.vswOk(['rm', '-f', c6]);
    expect(await ping(C4, before.get(C1)!.ip)).toBeNull();
  }, 120_000);

  it('the FDB is rebuilt after the restart (c1 and c2 learned again on their ports)', async () => {
    expect(await ping(C1, before.get(C2)!.ip)).toBeNull();
    const fdb = await d.vswJson<{ mac: string; port: string }[]>(['fdb', '--format', 'json']);
    for (const c of [C1, C2]) {
      const e = fdb.find((x) => x.mac.toLowerCase() === before.get(c)!.mac.toLowerCase());
      expect(e?.port, `${c} in ${JSON.stringify(fdb)}`).toBe(before.get(c)!.hostIf);
    }
  }, 60_000);

  it('clean stop (SIGINT): exit 0 within seconds, socket and TAP gone, lock released, containers stay', async () => {
    // While it runs: the API socket is root-only, the lock holds its pid.
    expect(fs.statSync(d.sock).isSocket()).toBe(true);
    expect(fs.statSync(d.sock).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(d.stateDir, 'lock'), 'utf8').trim()).toBe(String(d.proc.pid));
    const r = await d.stop('SIGINT');
    expect(r.signal, d.log().slice(-2000)).toBeNull();
    expect(r.code, d.log().slice(-2000)).toBe(0);
    expect(r.ms).toBeLessThan(5_000);
    expect(fs.existsSync(d.sock), 'socket file').toBe(false);
    expect(fs.existsSync(path.join(d.stateDir, 'lock')), 'lock file').toBe(false);
    const tap = await execIn(d.hostNs, 'ip', 'link', 'show', 'dev', 'vsw0');
    expect(tap.code, `vsw0 still there:\n${tap.stdout}`).not.toBe(0);
    const nss = listNetns();
    for (const c of [C1, C2, C4, B1]) expect(nss, c).toContain(c);
    expect(netnsExists(C3)).toBe(false);
    // The CLI says the daemon is not there.
    const down = await d.vsw(['network', 'ls']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the vsw daemon/);
  }, 60_000);

  it('and a start after the clean stop brings them back', async () => {
    await d.restart();
    const after = seen(await ps());
    expect([...after.keys()].sort()).toEqual([C1, C2, C4, B1].sort());
    for (const c of [C1, C2, B1]) expect(after.get(c)).toEqual(before.get(c));
    expect(await ping(C2, before.get(B1)!.ip)).toBeNull();
    expect(await ping(C2, before.get(C1)!.ip)).toBeNull();
    expect(await ping(C4, before.get(C2)!.ip)).toBeNull();
  }, 120_000);

  it('a detached command from before the restart still counts as running: rm is refused, rm -f kills it', async () => {
    const info = (await ps()).find((c) => c.name === C4)!;
    expect(info.status).toBe('running');
    expect(info.pid).toBeGreaterThan(0);
    const refused = await d.vsw(['rm', C4]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/running/);
    await d.vswOk(['rm', '-f', C4]);
    expect(netnsExists(C4)).toBe(false);
    expect(pidAlive(info.pid!), `pid ${info.pid} of c4 still alive after rm -f`).toBe(false);
  }, 60_000);
});

// The README's launch from a shell that does not wait for it: `(ip netns exec HOST vsw
// daemon &)`. The subshell exits at once, so the daemon has no parent but pid 1 by the time
// it runs its first line, and lives in the private mount namespace `ip netns exec` made.
const O = runPrefix('o');
const OHOST = `${O}-host`;
const OX = `${O}-x`;
const OY = `${O}-y`;

describe.skipIf(!isRoot)('a daemon whose starting shell exits at once (root)', () => {
  let base = '';
  let sock = '';
  let stateDir = '';
  let logFile = '';
  let pid = 0;
  const vsw = (args: string[]): Promise<ShResult> => sh(NODE, [CLI, '--socket', sock, ...args], { timeoutMs: 60_000 });
  const vswOk = async (args: string[]): Promise<ShResult> => {
    const r = await vsw(args);
    if (r.code !== 0) throw new Error(`${describeResult(`vsw ${args.join(' ')}`, r)}\n--- daemon log ---\n${daemonLog()}`);
    return r;
  };
  const daemonLog = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-4000) : '');
  const ppidOf = (p: number): number => {
    const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
  };

  /** Start the daemon from a subshell that exits at once; resolves when it answers. */
  const launch = async (): Promise<void> => {
    const r = await sh('sh', ['-c', '(ip netns exec "$1" "$2" "$3" --socket "$4" daemon --state-dir "$5" --workers 1 >>"$6" 2>&1 &)',
      'sh', OHOST, NODE, CLI, sock, stateDir, logFile]);
    expect(r.code, describeResult('the launching subshell', r)).toBe(0);
    await waitFor('the daemon to answer', async () => (await vsw(['network', 'ls'])).code === 0, { timeoutMs: 30_000, intervalMs: 250 });
    pid = Number(fs.readFileSync(path.join(stateDir, 'lock'), 'utf8').trim());
    trackPid(pid);
    // Its parent is gone: it was re-parented (to pid 1 or a subreaper), not our child.
    expect(ppidOf(pid)).not.toBe(process.pid);
  };
  const stopDaemon = async (): Promise<void> => {
    if (!pid || !pidAlive(pid)) return;
    process.kill(pid, 'SIGINT');
    await waitFor(`daemon pid ${pid} to exit`, () => !pidAlive(pid), { timeoutMs: 10_000, intervalMs: 100 });
  };

  beforeAll(async () => {
    await ensureBuilt();
    claimPrefix(O);
    base = fs.mkdtempSync(path.join(os.tmpdir(), `${O}-`));
    sock = path.join(base, 'vsw.sock');
    stateDir = path.join(base, 'state');
    logFile = path.join(base, 'daemon.log');
    await addNetns(OHOST);
    await launch();
  }, 120_000);

  afterAll(async () => {
    try {
      await stopDaemon();
    } finally {
      if (pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      await cleanupPrefix(O);
      if (base) fs.rmSync(base, { recursive: true, force: true });
    }
  }, 60_000);

  it('run -d: the container can be entered from outside (ip netns exec), and a restart the same way brings it back', async () => {
    for (const c of [OX, OY]) await vswOk(['run', '-d', '--name', c, '--', 'sleep', '600']);
    const inside = await sh('ip', ['netns', 'exec', OX, 'true']);
    expect(inside.code, describeResult(`ip netns exec ${OX} true (from this shell)`, inside)).toBe(0);
    expect(daemonLog()).toMatch(/container namespaces are made in the mount namespace mnt:\[\d+\] \(of pid \d+\)/);
    const ps = JSON.parse((await vswOk(['ps', '--format', 'json'])).stdout) as ContainerInfo[];
    const yIp = ps.find((c) => c.name === OY)!.networks[0].ip;
    expect((await pingFrom(OX, yIp, 2, ['-W', '3'])).received).toBe(2);

    await stopDaemon();
    await launch();
    expect(daemonLog()).toContain(`container ${OX}: re-attached`);
    const again = JSON.parse((await vswOk(['ps', '--format', 'json'])).stdout) as ContainerInfo[];
    expect(again.map((c) => c.name).sort()).toEqual([OX, OY].sort());
    expect((await pingFrom(OX, yIp, 2, ['-W', '3'])).received).toBe(2);
    expect((await sh('ip', ['netns', 'exec', OY, 'true'])).code).toBe(0);
  }, 120_000);

  it.each([
    ['networks is a string', (s: Record<string, any>) => { s.networks = 'x'; }, "networks: expected an array, got string 'x'"],
    ['an endpoint list is a number', (s: Record<string, any>) => { s.containers[0].endpoints = 5; }, 'containers[0].endpoints: expected an array, got number'],
    ['a subnet is missing', (s: Record<string, any>) => { delete s.networks[0].subnet; }, 'networks[0].subnet: missing'],
    ['trunks is an object', (s: Record<string, any>) => { s.trunks = {}; }, 'trunks: expected an array, got an object'],
  ])('a state file whose %s: the daemon exits 1 naming the field, and leaves the file as it was', async (_what, spoil, why) => {
    await stopDaemon();
    const file = path.join(stateDir, 'state.json');
    const good = fs.readFileSync(file);
    const body = JSON.parse(good.toString()) as { state: Record<string, any> };
    spoil(body.state);
    fs.writeFileSync(file, JSON.stringify(body));
    const spoilt = fs.readFileSync(file);
    try {
      const r = await sh('ip', ['netns', 'exec', OHOST, NODE, CLI, '--socket', sock, 'daemon', '--state-dir', stateDir, '--workers', '1'],
        { timeoutMs: 30_000 });
      expect(r.timedOut, 'the daemon started').toBe(false);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`vsw: state file ${file}: ${why}`);
      expect(r.stderr).not.toMatch(/is not a function|TypeError|at .*\.js:\d+/);
      expect(fs.readFileSync(file).equals(spoilt), 'the state file was changed').toBe(true);
    } finally {
      fs.writeFileSync(file, good);
    }
  }, 60_000);

  it('and with the file repaired it starts again with its containers', async () => {
    if (!pidAlive(pid)) await launch();
    const ps = JSON.parse((await vswOk(['ps', '--format', 'json'])).stdout) as ContainerInfo[];
    expect(ps.map((c) => c.name).sort()).toEqual([OX, OY].sort());
  }, 60_000);
});
