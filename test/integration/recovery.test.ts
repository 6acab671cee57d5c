// End to end: the daemon dies (kill -9) or stops (SIGINT) and starts again with the same
// state dir and socket. Containers outlive it; on restart they are re-attached with the
// same addresses and MACs, and those whose namespace vanished meanwhile are forgotten.
// One daemon (restarted in place) in a throwaway host namespace; see test/fixtures/harness.ts.

import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, NetworkInfo } from '../../control/types';
import {
  cleanupPrefix, Daemon, describeResult, execIn, isRoot, listNetns, NEEDS_ROOT, netnsExists, netnsPids,
  pidAlive, runPrefix, sh, startDaemon, trackPid,
} from '../fixtures/harness';
import { ping as pingFrom } from '../fixtures/topology';

const P = runPrefix('r');
const C1 = `${P}-c1`;
const C2 = `${P}-c2`;
const C3 = `${P}-c3`;
const C4 = `${P}-c4`;
const C5 = `${P}-c5`;
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
    for (const c of [C1, C2, C3, C5]) await d.vswOk(['run', '-d', '--name', c, '--', 'sleep', '600']);
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

    await d.restart();
    expect(d.log()).toMatch(/daemon ready[\s\S]*daemon ready/);
    const after = seen(await ps());
    expect([...after.keys()].sort()).toEqual([C1, C2, B1].sort());
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
