// End to end: the switch as a user sees it. One daemon (in a throwaway host namespace),
// three containers on the default network, real ping / tcpdump / iperf3 inside them, and
// the CLI's views (fdb, stats, network inspect). See test/fixtures/harness.ts for safety.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, EndpointInfo, FdbEntryInfo, NetworkInfo, PortStatsInfo } from '../../control/types';
import {
  background, capture, cleanupPrefix, Daemon, describeResult, execIn, execInOpts, isRoot, NEEDS_ROOT,
  pingStats, runPrefix, sh, startDaemon, waitFor,
} from '../fixtures/harness';
import { allStats, ping } from '../fixtures/topology';

const P = runPrefix('s');
const C1 = `${P}-c1`;
const C2 = `${P}-c2`;
const C3 = `${P}-c3`;
const D1 = `${P}-d1`;
const E1 = `${P}-e1`;
const NETB = `${P}-netb`;
const NETC = `${P}-netc`;

if (!isRoot) console.warn(`test/integration/switch.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('switch: forwarding, learning, isolation (root)', () => {
  let d: Daemon;
  const ep: Record<string, EndpointInfo> = {};

  const stats = (): Promise<PortStatsInfo[]> => allStats(d);

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 2 });
    for (const c of [C1, C2, C3]) await d.vswOk(['run', '-d', '--name', c, '--', 'sleep', '600']);
    const net = await d.vswJson<NetworkInfo>(['network', 'inspect', 'bridge']);
    for (const e of net.endpoints) ep[e.container] = e;
    for (const c of [C1, C2, C3]) expect(ep[c], `${c} in network inspect bridge`).toBeDefined();
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('containers get eth0 with their IPAM address and MAC 02:42:<ip>', async () => {
    for (const c of [C1, C2, C3]) {
      const r = await execIn(c, 'ip', '-o', 'addr', 'show', 'dev', 'eth0');
      expect(r.stdout).toContain(`${ep[c].ip}/24`);
      const l = await execIn(c, 'ip', '-o', 'link', 'show', 'dev', 'eth0');
      expect(l.stdout.toLowerCase()).toContain(ep[c].mac.toLowerCase());
      const hex = ep[c].ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0')).join(':');
      expect(ep[c].mac.toLowerCase()).toBe(`02:42:${hex}`);
    }
  });

  it('c1 and c2 ping each other both ways; c1 pings c3; the host namespace pings c1 via the TAP', async () => {
    for (const [from, to] of [[C1, C2], [C2, C1], [C1, C3]]) {
      const r = await ping(from, ep[to].ip, 3, ['-W', '3']);
      expect(r.received, r.out).toBe(r.sent);
      expect(r.sent, r.out).toBe(3);
    }
    const net = await d.vswJson<NetworkInfo>(['network', 'inspect', 'bridge']);
    expect(net.hostPort?.name).toBe('vsw0');
    const addr = await execIn(d.hostNs, 'ip', '-o', 'addr', 'show', 'dev', 'vsw0');
    expect(addr.stdout).toContain(`${net.hostPort!.ip}/24`);
    const r = await ping(d.hostNs, ep[C1].ip, 3, ['-W', '3']);
    expect(r.received, r.out).toBe(3);
  }, 60_000);

  it('the FDB lists c1 and c2 on their own ports (json and table)', async () => {
    await ping(C1, ep[C2].ip, 2, ['-i', '0.2', '-W', '3']);
    const fdb = await d.vswJson<FdbEntryInfo[]>(['fdb', '--format', 'json']);
    for (const c of [C1, C2]) {
      const e = fdb.find((x) => x.mac.toLowerCase() === ep[c].mac.toLowerCase());
      expect(e, `${c} (${ep[c].mac}) in ${JSON.stringify(fdb)}`).toBeDefined();
      expect(e!.port).toBe(ep[c].hostIf);
      expect(e!.network).toBe('bridge');
      expect(e!.container).toBe(c);
      expect(e!.portId).toBe(ep[c].portId);
      expect(e!.ageSeconds).toBeLessThan(60);
    }
    const table = await d.vswOk(['fdb']);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/MAC/);
    for (const c of [C1, C2]) {
      const line = lines.find((l) => l.toLowerCase().includes(ep[c].mac.toLowerCase()));
      expect(line, `${ep[c].mac} in\n${table.stdout}`).toBeDefined();
      expect(line).toContain(ep[c].hostIf);
      expect(line).toContain('bridge');
    }
    const only = await d.vswJson<FdbEntryInfo[]>(['fdb', 'bridge', '--format', 'json']);
    expect(only.every((e) => e.network === 'bridge')).toBe(true);
    expect(only.some((e) => e.mac.toLowerCase() === ep[C1].mac.toLowerCase())).toBe(true);
  }, 60_000);

  it('tcpdump on a port (the veth host end, in the host namespace) sees both directions, as on a kernel bridge port', async () => {
    const cap = await capture(d.hostNs, ep[C2].hostIf, ['icmp']);
    const r = await ping(C1, ep[C2].ip, 5, ['-i', '0.1', '-W', '3']);
    expect(r.received, r.out).toBe(5);
    const lines = await cap.stop((l) => l.filter((x) => /ICMP echo reply/.test(x)).length >= 5);
    // Requests arrive on c2's port from the switch (sent by vsw), replies leave c2 into it.
    expect(lines.filter((l) => /ICMP echo request/.test(l)).length, lines.join('\n')).toBe(5);
    expect(lines.filter((l) => /ICMP echo reply/.test(l)).length, lines.join('\n')).toBe(5);
  }, 60_000);

  it('after learning, c3 sees none of the c1<->c2 (or host<->c1) unicast, but does see a broadcast and unknown unicast', async () => {
    // Make sure the MACs are learned (and fresh) first.
    const warm = await ping(C1, ep[C2].ip, 2, ['-i', '0.2', '-W', '3']);
    expect(warm.received, warm.out).toBe(2);
    const warmTap = await ping(d.hostNs, ep[C1].ip, 2, ['-i', '0.2', '-W', '3']);
    expect(warmTap.received, warmTap.out).toBe(2);
    const cap = await capture(C3, 'eth0', ['icmp']);
    const uni = await ping(C1, ep[C2].ip, 20, ['-i', '0.05', '-W', '3']);
    expect(uni.received, uni.out).toBe(20);
    // The same for the host namespace (through the TAP) talking to c1.
    const viaTap = await ping(d.hostNs, ep[C1].ip, 10, ['-i', '0.05', '-W', '3']);
    expect(viaTap.received, viaTap.out).toBe(10);
    const seenDuringUnicast = cap.lines();
    // Now a broadcast ping from c1 to the subnet broadcast: every port of the network gets it.
    await execInOpts(C1, ['ping', '-n', '-b', '-c', '3', '-i', '0.2', '-W', '1', '10.89.0.255'], { timeoutMs: 20_000 });
    // And unicast to a MAC nobody has (so the switch cannot know it): flooded, c3 sees it.
    // (This also shows the capture does see unicast ICMP when it reaches c3.)
    const ghostIp = '10.89.0.200';
    const ghostMac = '02:42:0a:59:00:c8';
    await sh('ip', ['-n', C1, 'neigh', 'replace', ghostIp, 'lladdr', ghostMac, 'dev', 'eth0', 'nud', 'permanent']);
    try {
      await execInOpts(C1, ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', ghostIp], { timeoutMs: 20_000 });
    } finally {
      await sh('ip', ['-n', C1, 'neigh', 'del', ghostIp, 'dev', 'eth0']);
    }
    const all = await cap.stop((l) => l.filter((x) => x.includes('10.89.0.255')).length >= 3 && l.filter((x) => x.toLowerCase().includes(`> ${ghostMac}`)).length >= 3);
    expect(seenDuringUnicast, `c3 saw unicast ICMP between others (c1<->c2, host<->c1):\n${seenDuringUnicast.join('\n')}`).toEqual([]);
    const bcast = all.filter((l) => /> ff:ff:ff:ff:ff:ff/i.test(l) && l.includes('10.89.0.255'));
    expect(bcast.length, `c3 did not see c1's broadcast ping; capture:\n${all.join('\n')}`).toBeGreaterThanOrEqual(1);
    const unknown = all.filter((l) => l.toLowerCase().includes(`> ${ghostMac}`));
    expect(unknown.length, `c3 did not see the flooded unknown unicast; capture:\n${all.join('\n')}`).toBeGreaterThanOrEqual(1);
    expect(all.filter((l) => !/> ff:ff:ff:ff:ff:ff/i.test(l) && !l.toLowerCase().includes(`> ${ghostMac}`)),
      'only the broadcast and the unknown unicast reached c3').toEqual([]);
  }, 60_000);

  it('iperf3 TCP between c1 and c2 completes at a sane rate (checksum offload handled)', async () => {
    const srv = background('ip', ['netns', 'exec', C2, 'iperf3', '-s', '-1', '-B', ep[C2].ip, '-p', '5201']);
    try {
      await waitFor('iperf3 server in c2', async () => {
        if (srv.exited()) throw new Error(`iperf3 -s exited: ${srv.stderr()}${srv.stdout()}`);
        return (await execIn(C2, 'ss', '-Hltn', 'sport = :5201')).stdout.includes('5201');
      });
      const r = await d.vsw(['exec', C1, '--', 'iperf3', '-c', ep[C2].ip, '-p', '5201', '-t', '3', '-J'], { timeoutMs: 40_000 });
      expect(r.code, `iperf3 TCP: ${r.stdout.slice(-2000)} ${r.stderr}`).toBe(0);
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
      const gbps = j.end.sum_received.bits_per_second / 1e9;
      console.log(`iperf3 TCP c1 -> c2: ${gbps.toFixed(2)} Gbit/s`);
      expect(gbps, 'TCP throughput (Gbit/s)').toBeGreaterThan(0.5);
    } finally {
      await srv.stop('SIGINT');
    }
  }, 60_000);

  it('iperf3 UDP 100 Mbit/s between c1 and c2 completes with < 10 % loss', async () => {
    const srv = background('ip', ['netns', 'exec', C2, 'iperf3', '-s', '-1', '-B', ep[C2].ip, '-p', '5202']);
    try {
      await waitFor('iperf3 server in c2', async () => {
        if (srv.exited()) throw new Error(`iperf3 -s exited: ${srv.stderr()}${srv.stdout()}`);
        return (await execIn(C2, 'ss', '-Hltn', 'sport = :5202')).stdout.includes('5202');
      });
      const r = await d.vsw(['exec', C1, '--', 'iperf3', '-c', ep[C2].ip, '-p', '5202', '-u', '-b', '100M', '-t', '3', '-J'], { timeoutMs: 40_000 });
      expect(r.code, `iperf3 UDP: ${r.stdout.slice(-2000)} ${r.stderr}`).toBe(0);
      const j = JSON.parse(r.stdout) as { end: { sum: { lost_percent: number; packets: number; bits_per_second: number } } };
      console.log(`iperf3 UDP c1 -> c2: ${(j.end.sum.bits_per_second / 1e6).toFixed(1)} Mbit/s, ${j.end.sum.lost_percent.toFixed(2)} % lost of ${j.end.sum.packets}`);
      expect(j.end.sum.packets).toBeGreaterThan(1000);
      expect(j.end.sum.lost_percent, 'UDP loss %').toBeLessThan(10);
    } finally {
      await srv.stop('SIGINT');
    }
  }, 60_000);

  it('stats: rx/tx packet and byte counters of c1 and c2 rise with traffic', async () => {
    const before = await stats();
    const r = await ping(C1, ep[C2].ip, 10, ['-i', '0.05', '-W', '3']);
    expect(r.received, r.out).toBe(10);
    const after = await waitFor('counters to move', async () => {
      const s = await stats();
      const p1 = s.find((p) => p.name === ep[C1].hostIf);
      return p1 && p1.rxPackets >= (before.find((p) => p.name === ep[C1].hostIf)?.rxPackets ?? 0) + 10 ? s : undefined;
    }, { timeoutMs: 5_000 }).catch(() => stats());
    for (const c of [C1, C2]) {
      const b = before.find((p) => p.name === ep[c].hostIf);
      const a = after.find((p) => p.name === ep[c].hostIf);
      expect(b, `${ep[c].hostIf} in stats ${JSON.stringify(before)}`).toBeDefined();
      expect(a!.container).toBe(c);
      expect(a!.network).toBe('bridge');
      // 10 requests one way, 10 replies the other (ARP may add a few).
      expect(a!.rxPackets - b!.rxPackets, `${c} rxPackets`).toBeGreaterThanOrEqual(10);
      expect(a!.txPackets - b!.txPackets, `${c} txPackets`).toBeGreaterThanOrEqual(10);
      expect(a!.rxBytes - b!.rxBytes, `${c} rxBytes`).toBeGreaterThanOrEqual(10 * 98);
      expect(a!.txBytes - b!.txBytes, `${c} txBytes`).toBeGreaterThanOrEqual(10 * 98);
    }
    const table = await d.vswOk(['stats']);
    expect(table.stdout).toContain(ep[C1].hostIf);
  }, 60_000);

  describe('two networks', () => {
    let d1: EndpointInfo;
    let netbTap = '';

    beforeAll(async () => {
      await d.vswOk(['network', 'create', '--subnet', '10.91.0.0/24', NETB]);
      await d.vswOk(['run', '-d', '--name', D1, '--network', NETB, '--', 'sleep', '600']);
      const net = await d.vswJson<NetworkInfo>(['network', 'inspect', NETB]);
      d1 = net.endpoints.find((e) => e.container === D1)!;
      netbTap = net.hostPort!.name;
      expect((await execIn(d.hostNs, 'ip', '-o', 'link')).stdout).toContain(`: ${netbTap}:`);
      expect(d1.ip).toMatch(/^10\.91\.0\./);
    }, 60_000);

    it('d1 (netb) cannot ping c1 (bridge)', async () => {
      const r = await ping(D1, ep[C1].ip, 3, ['-i', '0.2', '-W', '1']);
      expect(r.received, r.out).toBe(0);
    }, 30_000);

    it('isolation at L2: nothing from c1 (broadcast, ARP, unicast to d1\'s MAC) reaches d1', async () => {
      // Give d1 an extra address inside c1's subnet, and c1 a static neighbour entry for it
      // with d1's MAC: only the switch's network separation can keep c1's frames away.
      const alias = '10.89.0.177';
      await sh('ip', ['-n', D1, 'addr', 'add', `${alias}/24`, 'dev', 'eth0']);
      const cap = await capture(D1, 'eth0', ['ether', 'host', ep[C1].mac]);
      try {
        await execInOpts(C1, ['ping', '-n', '-b', '-c', '2', '-i', '0.2', '-W', '1', '10.89.0.255'], { timeoutMs: 20_000 });
        const arp = await ping(C1, alias, 2, ['-i', '0.2', '-W', '1']);
        expect(arp.received, `c1 reached d1's alias through ARP:\n${arp.out}`).toBe(0);
        await sh('ip', ['-n', C1, 'neigh', 'replace', alias, 'lladdr', d1.mac, 'dev', 'eth0', 'nud', 'permanent']);
        const uni = await ping(C1, alias, 3, ['-i', '0.2', '-W', '1']);
        expect(uni.received, `c1 reached d1 by unicast to its MAC:\n${uni.out}`).toBe(0);
      } finally {
        const lines = await cap.stop();
        await sh('ip', ['-n', C1, 'neigh', 'del', alias, 'dev', 'eth0']);
        await sh('ip', ['-n', D1, 'addr', 'del', `${alias}/24`, 'dev', 'eth0']);
        expect(lines, `d1 (network ${NETB}) saw frames of c1 (network bridge):\n${lines.join('\n')}`).toEqual([]);
        // Not even one the kernel handed tcpdump but it had not printed yet.
        expect(cap.received(), 'frames of c1 that reached d1\'s capture').toBe(0);
      }
      const fdbB = await d.vswJson<FdbEntryInfo[]>(['fdb', NETB, '--format', 'json']);
      expect(fdbB.every((e) => e.network === NETB), JSON.stringify(fdbB)).toBe(true);
      expect(fdbB.some((e) => e.mac.toLowerCase() === ep[C1].mac.toLowerCase()), `c1's MAC in fdb ${NETB}: ${JSON.stringify(fdbB)}`).toBe(false);
    }, 60_000);

    it('network connect gives c1 an eth1 in another network with a new IP, and it reaches that network', async () => {
      await d.vswOk(['network', 'create', '--subnet', '10.92.0.0/24', NETC]);
      await d.vswOk(['run', '-d', '--name', E1, '--network', NETC, '--', 'sleep', '600']);
      await d.vswOk(['network', 'connect', NETC, C1]);
      const net = await d.vswJson<NetworkInfo>(['network', 'inspect', NETC]);
      const e1 = net.endpoints.find((e) => e.container === E1)!;
      const c1c = net.endpoints.find((e) => e.container === C1);
      expect(c1c, `c1 in ${NETC}: ${JSON.stringify(net.endpoints)}`).toBeDefined();
      expect(c1c!.ip).toMatch(/^10\.92\.0\./);
      expect(c1c!.ip).not.toBe(e1.ip);
      const ps = await d.vswJson<ContainerInfo[]>(['ps', '--format', 'json']);
      const c1 = ps.find((c) => c.name === C1)!;
      expect(c1.networks.map((n) => n.network).sort()).toEqual(['bridge', NETC].sort());
      const addr = await execIn(C1, 'ip', '-o', 'addr', 'show', 'dev', 'eth1');
      expect(addr.code, describeResult('ip addr show eth1 in c1', addr)).toBe(0);
      expect(addr.stdout).toContain(`${c1c!.ip}/24`);
      const r = await ping(C1, e1.ip, 3, ['-W', '3']);
      expect(r.received, r.out).toBe(3);
      const back = await ping(E1, c1c!.ip, 3, ['-W', '3']);
      expect(back.received, back.out).toBe(3);
      // The first network still works.
      const old = await ping(C1, ep[C2].ip, 3, ['-W', '3']);
      expect(old.received, old.out).toBe(3);
      await d.vswOk(['network', 'disconnect', NETC, C1]);
      expect((await execIn(C1, 'ip', 'link', 'show', 'dev', 'eth1')).code).not.toBe(0);
      const after = await ping(C1, e1.ip, 2, ['-i', '0.2', '-W', '1']);
      expect(after.received, after.out).toBe(0);
    }, 90_000);

    it('network rm is refused while a container is attached, and works after disconnect', async () => {
      const refused = await d.vsw(['network', 'rm', NETB]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^vsw: /);
      expect(refused.stderr).toContain(D1);
      expect((await d.vswJson<NetworkInfo[]>(['network', 'ls', '--format', 'json'])).map((n) => n.name)).toContain(NETB);
      await d.vswOk(['network', 'disconnect', NETB, D1]);
      expect((await execIn(D1, 'ip', 'link', 'show', 'dev', 'eth0')).code).not.toBe(0);
      const ok = await d.vsw(['network', 'rm', NETB]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout.trim()).toBe(NETB);
      const nets = await d.vswJson<NetworkInfo[]>(['network', 'ls', '--format', 'json']);
      expect(nets.map((n) => n.name)).not.toContain(NETB);
      // Its TAP went with it.
      const links = await execIn(d.hostNs, 'ip', '-o', 'link');
      expect(links.stdout).not.toContain(`: ${netbTap}:`);
    }, 60_000);

    it('a container left with no network can be connected again, with a chosen --ip', async () => {
      const want = '10.89.0.99';
      await d.vswOk(['network', 'connect', '--ip', want, 'bridge', D1]);
      const ps = await d.vswJson<ContainerInfo[]>(['ps', '--format', 'json']);
      const info = ps.find((c) => c.name === D1)!;
      expect(info.networks.map((n) => `${n.network} ${n.ip}`)).toEqual([`bridge ${want}`]);
      const addr = await execIn(D1, 'ip', '-o', 'addr', 'show', 'dev', 'eth0');
      expect(addr.stdout).toContain(`${want}/24`);
      const route = await execIn(D1, 'ip', 'route', 'show', 'default');
      expect(route.stdout).toContain('via 10.89.0.1 dev eth0');
      const r = await ping(D1, ep[C1].ip, 3, ['-W', '3']);
      expect(r.received, r.out).toBe(3);
      await d.vswOk(['rm', '-f', D1]);
    }, 60_000);

    it('the default network cannot be removed', async () => {
      const r = await d.vsw(['network', 'rm', 'bridge']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/default/);
    });
  });

  it('the daemon is still healthy at the end (c1 <-> c2)', async () => {
    const r = await ping(C2, ep[C1].ip, 3, ['-W', '3']);
    expect(r.received, r.out).toBe(3);
    expect(d.running()).toBe(true);
  }, 30_000);

  describe('MAC aging (a second daemon with --fdb-aging 2)', () => {
    const PA = runPrefix('g');
    const A1 = `${PA}-a1`;
    const A2 = `${PA}-a2`;
    let da: Daemon;
    const aep: Record<string, EndpointInfo> = {};

    beforeAll(async () => {
      da = await startDaemon({ prefix: PA, workers: 1, extraArgs: ['--fdb-aging', '2'] });
      for (const c of [A1, A2]) {
        await da.vswOk(['run', '-d', '--name', c, '--', 'sleep', '600']);
        // Quiet containers: no IPv6 chatter (router solicitations, MLD) to refresh the entries.
        await sh('ip', ['netns', 'exec', c, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.eth0.disable_ipv6=1']);
      }
      for (const e of (await da.vswJson<NetworkInfo>(['network', 'inspect', 'bridge'])).endpoints) aep[e.container] = e;
    }, 120_000);

    afterAll(async () => {
      if (da) await da.cleanup();
      else await cleanupPrefix(PA);
    }, 60_000);

    it('learned MACs are forgotten after the aging time, and learned again with new traffic', async () => {
      const macs = [A1, A2].map((c) => aep[c].mac.toLowerCase());
      const fdbMacs = async (): Promise<FdbEntryInfo[]> =>
        (await da.vswJson<FdbEntryInfo[]>(['fdb', '--format', 'json'])).filter((e) => macs.includes(e.mac.toLowerCase()));
      const r = await execInOpts(A1, ['ping', '-n', '-c', '2', '-i', '0.2', '-W', '3', aep[A2].ip], { timeoutMs: 20_000 });
      expect(pingStats(r.stdout)?.received, r.stdout).toBe(2);
      expect((await fdbMacs()).length).toBe(2);
      let maxAge = 0;
      await waitFor('both MACs to age out', async () => {
        const es = await fdbMacs();
        for (const e of es) maxAge = Math.max(maxAge, e.ageSeconds);
        return es.length === 0;
      }, { timeoutMs: 15_000, intervalMs: 500 });
      expect(maxAge, 'no entry is shown much older than the aging time').toBeLessThanOrEqual(3);
      const again = await execInOpts(A2, ['ping', '-n', '-c', '2', '-i', '0.2', '-W', '3', aep[A1].ip], { timeoutMs: 20_000 });
      expect(pingStats(again.stdout)?.received, again.stdout).toBe(2);
      const es = await fdbMacs();
      expect(es.map((e) => e.port).sort()).toEqual([aep[A1].hostIf, aep[A2].hostIf].sort());
    }, 60_000);
  });
});
