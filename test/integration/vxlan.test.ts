// End to end: VXLAN overlay networks (issue #12). Three "hosts" on an underlay (a kernel
// bridge in its own namespace, each host with one address on a veth to it). Hosts A and B
// run a vsw daemon each with the same VXLAN network (VNI 100, port 4789); host C uses the
// kernel: a vxlan device (learning on), `bridge fdb append 00:00:00:00:00:00 dst PEER` per
// peer, a kernel bridge and one container namespace on it.
//
//   underlay (br0: ua, ub, uc)        192.168.77.0/24
//   A-host ul .1: vsw A ── container a1 (10.77.0.0/26 of the overlay)
//   B-host ul .2: vsw B ── container b1 (10.77.0.64/26)
//   C-host ul .3: vx0 (kernel) ── brc ── container c1 10.77.0.200
//
// Network safety: every namespace is PREFIX-*, every link lives in those namespaces.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FdbEntryInfo, NetworkInfo, PortStatsInfo } from '../../control/types';
import {
  addNetns, background, capture, cleanupPrefix, Daemon, describeResult, execIn, execInOpts, isRoot, NEEDS_ROOT,
  runPrefix, sh, shOk, startDaemon, waitFor, type Background,
} from '../fixtures/harness';
import { dropCount, ping, portStats, runEndpoint } from '../fixtures/topology';

const PA = runPrefix('x');
const PB = runPrefix('y');
const U = `${PA}-u`;
const CH = `${PA}-ch`;
const C1 = `${PA}-c1`;
const A1 = `${PA}-a1`;
const A2 = `${PA}-a2`;
const B1 = `${PB}-b1`;
const B2 = `${PB}-b2`;
const IP_A = '192.168.77.1';
const IP_B = '192.168.77.2';
const IP_C = '192.168.77.3';
const C1_IP = '10.77.0.200';
const PY = '/usr/bin/python3';

if (!isRoot) console.warn(`test/integration/vxlan.test.ts skipped: ${NEEDS_ROOT}`);

/** Give host namespace `ns` the underlay address `ip` on `ul`, a veth to the underlay bridge (port `port`). */
async function underlay(ns: string, port: string, ip: string): Promise<void> {
  await shOk('ip', ['-n', U, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'ul', 'netns', ns]);
  await shOk('ip', ['-n', U, 'link', 'set', port, 'master', 'br0', 'up']);
  await shOk('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'ul']);
  await shOk('ip', ['-n', ns, 'link', 'set', 'ul', 'up']);
  await shOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

describe.skipIf(!isRoot)('VXLAN overlay networks across vsw and kernel hosts (root)', () => {
  let a: Daemon;
  let b: Daemon;
  const ip: Record<string, string> = {};
  const mac: Record<string, string> = {};
  const servers: Background[] = [];

  beforeAll(async () => {
    a = await startDaemon({
      prefix: PA, workers: 2,
      setup: async (hostNs) => {
        await addNetns(U);
        await shOk('ip', ['-n', U, 'link', 'add', 'br0', 'type', 'bridge']);
        await shOk('ip', ['-n', U, 'link', 'set', 'br0', 'up']);
        await underlay(hostNs, 'ua', IP_A);
        // Host C: the kernel's vxlan (learning), head-end replication to A and B.
        await addNetns(CH);
        await underlay(CH, 'uc', IP_C);
        await shOk('ip', ['-n', CH, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '100', 'dstport', '4789', 'local', IP_C, 'dev', 'ul']);
        for (const peer of [IP_A, IP_B]) await shOk('bridge', ['-n', CH, 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', peer]);
        await shOk('ip', ['-n', CH, 'link', 'add', 'brc', 'type', 'bridge']);
        await shOk('ip', ['-n', CH, 'link', 'set', 'vx0', 'master', 'brc', 'up']);
        await shOk('ip', ['-n', CH, 'link', 'set', 'brc', 'up']);
        await addNetns(C1);
        await shOk('ip', ['-n', CH, 'link', 'add', 'cv', 'mtu', '1450', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', C1, 'mtu', '1450']);
        await shOk('ip', ['-n', CH, 'link', 'set', 'cv', 'master', 'brc', 'up']);
        await shOk('ip', ['-n', C1, 'addr', 'add', `${C1_IP}/24`, 'dev', 'eth0']);
        await shOk('ip', ['-n', C1, 'link', 'set', 'eth0', 'up']);
        await shOk('ip', ['-n', C1, 'link', 'set', 'lo', 'up']);
      },
    });
    b = await startDaemon({ prefix: PB, workers: 2, setup: (hostNs) => underlay(hostNs, 'ub', IP_B) });
    await a.vswOk(['network', 'create', '--vxlan', '100', '--underlay-ip', IP_A, '--peer', IP_B, '--peer', IP_C,
      '--subnet', '10.77.0.0/24', '--ip-range', '10.77.0.0/26', 'ov']);
    await b.vswOk(['network', 'create', '--vxlan', '100', '--peer', IP_A, '--peer', IP_C,
      '--subnet', '10.77.0.0/24', '--ip-range', '10.77.0.64/26', 'ov']);
    for (const [d, name] of [[a, A1], [b, B1]] as const) {
      const e = await runEndpoint(d, name, { network: 'ov', cmd: ['sleep', '900'] });
      ip[name] = e.ip;
      mac[name] = e.mac;
    }
    ip[C1] = C1_IP;
  }, 240_000);

  afterAll(async () => {
    for (const s of servers) await s.stop('SIGKILL', 2_000).catch(() => undefined);
    if (b) await b.cleanup();
    else await cleanupPrefix(PB);
    if (a) await a.cleanup();
    else await cleanupPrefix(PA);
  }, 90_000);

  it('network inspect shows VNI, port, local address, peers and the MTU (underlay 1500 - 50); containers get it', async () => {
    const na = await a.vswJson<NetworkInfo>(['network', 'inspect', 'ov']);
    expect(na.vxlan).toMatchObject({ vni: 100, port: 4789, localIp: IP_A, peers: [IP_B, IP_C] });
    expect(na.mtu).toBe(1450);
    const nb = await b.vswJson<NetworkInfo>(['network', 'inspect', 'ov']);
    // B's underlay address was chosen toward its first peer.
    expect(nb.vxlan).toMatchObject({ vni: 100, port: 4789, localIp: IP_B, peers: [IP_A, IP_C] });
    const link = await execIn(A1, 'ip', '-j', 'link', 'show', 'eth0');
    expect((JSON.parse(link.stdout) as { mtu: number }[])[0].mtu).toBe(1450);
  });

  it('containers on A, B and C ping each other in every direction (ARP crosses)', async () => {
    for (const [from, to] of [[A1, B1], [A1, C1], [B1, A1], [B1, C1], [C1, A1], [C1, B1]]) {
      const r = await ping(from, ip[to], 3, ['-W', '3']);
      expect(r.received, r.out).toBe(3);
    }
    // ARP crossed the overlay: each side holds the other's real MAC.
    const neigh = await execIn(A1, 'ip', '-j', 'neigh', 'show', ip[B1]);
    expect(neigh.stdout).toContain(mac[B1]);
  });

  it('vsw fdb shows remote MACs with their VTEP', async () => {
    const rows = await a.vswJson<FdbEntryInfo[]>(['fdb', 'ov', '--format', 'json']);
    expect(rows.find((r) => r.mac === mac[B1])).toMatchObject({ vtep: IP_B, port: 'vxlan1' });
    const c1mac = JSON.parse((await execIn(C1, 'ip', '-j', 'link', 'show', 'eth0')).stdout)[0].address as string;
    expect(rows.find((r) => r.mac === c1mac)).toMatchObject({ vtep: IP_C });
    const table = await a.vswOk(['fdb', 'ov']);
    expect(table.stdout).toMatch(/VTEP/);
  });

  it('iperf3 TCP with default offloads completes A<->B and A<->C', async () => {
    servers.push(background('ip', ['netns', 'exec', B1, 'iperf3', '-s', '-B', ip[B1]], 600_000));
    servers.push(background('ip', ['netns', 'exec', C1, 'iperf3', '-s', '-B', C1_IP], 600_000));
    servers.push(background('ip', ['netns', 'exec', A1, 'iperf3', '-s', '-B', ip[A1]], 600_000));
    const listening = async (ns: string, addr: string): Promise<boolean> =>
      (await execIn(ns, 'ss', '-ltn')).stdout.includes(`${addr}:5201`);
    for (const [ns, addr] of [[B1, ip[B1]], [C1, C1_IP], [A1, ip[A1]]]) {
      await waitFor(`iperf3 server in ${ns}`, () => listening(ns, addr), { timeoutMs: 10_000 });
    }
    if (process.env.VXDEBUG) {
      for (const sz of ['100', '1000', '1400', '1422']) {
        const r = await ping(A1, C1_IP, 2, ['-s', sz, '-M', 'do']);
        console.log('ping A1->C1 size', sz, r.received);
        const r2 = await ping(C1, ip[A1], 2, ['-s', sz, '-M', 'do']);
        console.log('ping C1->A1 size', sz, r2.received);
      }
      const cap = await capture(a.hostNs, 'ul', ['-c', '40', 'udp', 'and', 'greater', '1000']);
      const r = await execInOpts(C1, ['iperf3', '-c', ip[A1], '-t', '1', '-J'], { timeoutMs: 15_000 });
      console.log((await sh('ip', ['netns', 'exec', a.hostNs, 'nstat', '-az', 'UdpInErrors', 'UdpInDatagrams', 'UdpRcvbufErrors', 'IpInReceives', 'IpInHdrErrors', 'IpInTruncatedPkts', 'UdpInCsumErrors'])).stdout);
      console.log((await a.vsw(['stats'])).stdout);
      console.log('iperf', r.code, (await cap.stop()).join('\n'));
      console.log((await sh('ip', ['netns', 'exec', C1, 'nstat', '-az', 'TcpInCsumErrors', 'TcpInSegs', 'IpInHdrErrors', 'IpInAddrErrors'])).stdout);
      console.log((await sh('ip', ['netns', 'exec', CH, 'nstat', '-az', 'UdpInErrors', 'UdpInDatagrams', 'IpInReceives', 'IpInHdrErrors'])).stdout);
      console.log((await sh('ip', ['-n', CH, '-s', '-s', 'link', 'show'])).stdout);
    }
    for (const [from, to] of [[A1, ip[B1]], [B1, ip[A1]], [A1, C1_IP], [C1, ip[A1]]]) {
      const r = await execInOpts(from, ['iperf3', '-c', to, '-t', '2', '-J'], { timeoutMs: 40_000 });
      if (r.code !== 0 && process.env.VXDEBUG) {
        console.log((await a.vsw(['stats'])).stdout);
        console.log((await sh('ip', ['-n', CH, '-s', 'link', 'show', 'vx0'])).stdout);
        console.log((await sh('ip', ['netns', 'exec', C1, 'nstat', '-az', 'TcpInCsumErrors', 'TcpInSegs', 'UdpInCsumErrors', 'TcpExtTCPTimeouts'])).stdout);
        console.log((await sh('ip', ['netns', 'exec', CH, 'nstat', '-az', 'UdpInErrors', 'UdpInDatagrams', 'IpInReceives', 'IpReasmFails'])).stdout);
        console.log((await sh('ip', ['netns', 'exec', A1, 'nstat', '-az', 'TcpRetransSegs', 'TcpOutSegs'])).stdout);
        console.log((await sh('ip', ['-n', CH, '-s', 'link', 'show', 'ul'])).stdout);
        console.log((await sh('ip', ['-n', U, '-s', 'link'])).stdout);
        console.log((await sh('ip', ['netns', 'exec', a.hostNs, 'nstat', '-az', 'IpOutRequests', 'IpFragCreates', 'IpOutDiscards', 'IpFragFails', 'IpOutNoRoutes'])).stdout);
        console.log((await sh('ip', ['-n', a.hostNs, '-s', 'link', 'show', 'ul'])).stdout);
      }
      expect(r.code, describeResult(`iperf3 ${from} -> ${to}`, r)).toBe(0);
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
      if (process.env.VXDEBUG) console.log(from, to, j.end.sum_received.bytes, (await a.vsw(['stats', '--format', 'json'])).stdout.slice(0, 6000));
      expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
    }
  }, 120_000);
});
