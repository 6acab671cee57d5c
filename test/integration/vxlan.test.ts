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
  runPrefix, shOk, startDaemon, waitFor, type Background,
} from '../fixtures/harness';
import { dropCount, ping, portStats, runEndpoint, vswStream } from '../fixtures/topology';

const PA = runPrefix('x');
const PB = runPrefix('y');
const U = `${PA}-u`;
const CH = `${PA}-ch`;
const C1 = `${PA}-c1`;
const A1 = `${PA}-a1`;
const A2 = `${PA}-a2`;
const B1 = `${PB}-b1`;
const B2 = `${PB}-b2`;
const A3 = `${PA}-a3`;
const B3 = `${PB}-b3`;
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
      prefix: PA, workers: 2, extraArgs: ['--metrics', '127.0.0.1:9109'],
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
    const ls = await a.vswOk(['network', 'ls']);
    expect(ls.stdout).toMatch(/^ov .*vxlan=100,peers=2/m);
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
    for (const [from, to] of [[A1, ip[B1]], [B1, ip[A1]], [A1, C1_IP], [C1, ip[A1]]]) {
      const r = await execInOpts(from, ['iperf3', '-c', to, '-t', '2', '-J'], { timeoutMs: 40_000 });
      expect(r.code, describeResult(`iperf3 ${from} -> ${to}`, r)).toBe(0);
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
      expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
    }
  }, 120_000);

  /** Send one UDP broadcast with `marker` from container `ns` (python3 stdlib socket). */
  async function broadcast(ns: string, marker: string): Promise<void> {
    const code = `import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); s.sendto(b'${marker}', ('10.77.0.255', 9999))`;
    const r = await execInOpts(ns, [PY, '-c', code], { timeoutMs: 10_000 });
    expect(r.code, describeResult('broadcast', r)).toBe(0);
  }

  it('a broadcast from A reaches the containers of B and C once each', async () => {
    const capB = await capture(B1, 'eth0', ['udp', 'port', '9999']);
    const capC = await capture(C1, 'eth0', ['udp', 'port', '9999']);
    await broadcast(A1, 'hello-bcast');
    const lb = await capB.stop((l) => l.length >= 1);
    const lc = await capC.stop((l) => l.length >= 1);
    expect(lb.length, lb.join('\n')).toBe(1);
    expect(lc.length, lc.join('\n')).toBe(1);
  });

  it('tcpdump on the underlay shows UDP 4789 with VNI 100 and decodes the inner frames', async () => {
    const cap = await capture(U, 'ua', ['-v', 'udp', 'port', '4789']);
    const r = await ping(A1, ip[B1], 2);
    expect(r.received, r.out).toBe(2);
    const lines = await cap.stop((l) => l.filter((x) => /ICMP echo reply/.test(x)).length >= 2);
    const text = lines.join('\n');
    expect(text).toMatch(/192\.168\.77\.1\.\d+ > 192\.168\.77\.2\.4789: VXLAN, flags \[I\] \(0x08\), vni 100/);
    expect(text).toMatch(new RegExp(`${ip[A1].replace(/\./g, '\\.')} > ${ip[B1].replace(/\./g, '\\.')}: ICMP echo request`));
    // Outer source ports are in the dynamic range (a hash of the inner flow).
    for (const m of text.matchAll(/192\.168\.77\.[12]\.(\d+) > 192\.168\.77\.[12]\.4789/g)) expect(Number(m[1])).toBeGreaterThanOrEqual(49152);
  });

  it('a second VXLAN network (VNI 200) is isolated from the first; a VNI+port already used is refused', async () => {
    const dup = await a.vsw(['network', 'create', '--vxlan', '100', '--subnet', '10.79.0.0/24', 'dup']);
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toMatch(/VNI 100 on UDP port 4789 is already network 'ov'/);
    await a.vswOk(['network', 'create', '--vxlan', '200', '--peer', IP_B, '--subnet', '10.78.0.0/24', '--ip-range', '10.78.0.0/26', 'ov2']);
    await b.vswOk(['network', 'create', '--vxlan', '200', '--peer', IP_A, '--subnet', '10.78.0.0/24', '--ip-range', '10.78.0.64/26', 'ov2']);
    for (const [d, name] of [[a, A2], [b, B2]] as const) {
      const e = await runEndpoint(d, name, { network: 'ov2', cmd: ['sleep', '900'] });
      ip[name] = e.ip;
      mac[name] = e.mac;
    }
    const cap = await capture(U, 'ua', ['udp', 'port', '4789']);
    const r = await ping(A2, ip[B2], 2, ['-W', '3']);
    expect(r.received, r.out).toBe(2);
    const lines = await cap.stop((l) => l.some((x) => /vni 200/.test(x)));
    expect(lines.join('\n')).toMatch(/vni 200/);
    // ov's containers never see ov2's broadcasts, and the MAC tables stay apart.
    const capB1 = await capture(B1, 'eth0', ['udp', 'port', '9999']);
    const code = `import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); s.sendto(b'ov2', ('10.78.0.255', 9999))`;
    const capB2 = await capture(B2, 'eth0', ['udp', 'port', '9999']);
    expect((await execInOpts(A2, [PY, '-c', code], { timeoutMs: 10_000 })).code).toBe(0);
    expect((await capB2.stop((l) => l.length >= 1)).length).toBe(1);
    expect(await capB1.stop()).toEqual([]);
    const fdbOv = await b.vswJson<FdbEntryInfo[]>(['fdb', 'ov', '--format', 'json']);
    expect(fdbOv.map((e) => e.mac)).not.toContain(mac[A2]);
    const fdbOv2 = await b.vswJson<FdbEntryInfo[]>(['fdb', 'ov2', '--format', 'json']);
    expect(fdbOv2.find((e) => e.mac === mac[A2])).toMatchObject({ vtep: IP_A });
  }, 60_000);

  it('a removed peer stops receiving; added back, it receives again; per-peer counters in inspect', async () => {
    await a.vswOk(['network', 'peer', 'rm', 'ov', IP_C]);
    let n = await a.vswJson<NetworkInfo>(['network', 'inspect', 'ov']);
    expect(n.vxlan?.peers).toEqual([IP_B]);
    const capB = await capture(B1, 'eth0', ['udp', 'port', '9999']);
    const capC = await capture(C1, 'eth0', ['udp', 'port', '9999']);
    await broadcast(A1, 'after-rm');
    expect((await capB.stop((l) => l.length >= 1)).length).toBe(1);
    expect(await capC.stop()).toEqual([]);
    await a.vswOk(['network', 'peer', 'add', 'ov', IP_C]);
    const capC2 = await capture(C1, 'eth0', ['udp', 'port', '9999']);
    await broadcast(A1, 'after-add');
    expect((await capC2.stop((l) => l.length >= 1)).length).toBe(1);
    n = await a.vswJson<NetworkInfo>(['network', 'inspect', 'ov']);
    expect(n.vxlan?.peers).toEqual([IP_B, IP_C]);
    const toB = n.vxlan?.counters.find((c) => c.peer === IP_B);
    expect(toB?.txPackets).toBeGreaterThan(0);
    expect(toB?.rxPackets).toBeGreaterThan(0);
    // Bad peer input is a clear error.
    const bad = await a.vsw(['network', 'peer', 'add', 'ov', '300.1.1.1']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/expected an IPv4 address/);
  });

  it('malformed VXLAN datagrams (scapy) are dropped under their names and forwarding goes on', async () => {
    const script = [
      'from scapy.all import IP, UDP, Ether, Raw, send, conf',
      'from scapy.layers.vxlan import VXLAN',
      'conf.verb = 0',
      `o = IP(src='${IP_C}', dst='${IP_A}')/UDP(sport=50000, dport=4789)`,
      "inner = Ether(src='02:00:00:00:00:99', dst='ff:ff:ff:ff:ff:ff', type=0x88b5)/Raw(b'x'*46)",
      'send(o/VXLAN(flags=0x00, vni=100)/inner)',            // I flag unset
      'send(o/VXLAN(vni=999)/inner)',                          // unknown VNI
      "send(o/Raw(b'\\x08\\x00\\x00\\x00\\x00\\x00\\x64'))",   // runt: 7 bytes
      "send(o/VXLAN(vni=100)/Raw(b'abc'))",                    // runt inner frame
      "send(o/VXLAN(vni=100)/Ether(src='02:00:00:00:00:99', dst='ff:ff:ff:ff:ff:ff', type=0x88b5)/Raw(b'y'*1600))", // oversize
      "send(o/VXLAN(flags=0x0f, vni=100)/inner)",              // reserved bits set: ignored, accepted
    ].join('\n');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), `${PA}-`)), 'bad.py');
    fs.writeFileSync(file, `${script}\n`);
    try {
      const r = await execInOpts(CH, [PY, file], { timeoutMs: 60_000 });
      expect(r.code, describeResult('scapy', r)).toBe(0);
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
    let vt: PortStatsInfo | undefined;
    await waitFor('the vxlan drops', async () => {
      vt = await portStats(a, 'vtep-4789');
      return dropCount(vt, 'vxlan-oversize') >= 1 && dropCount(vt, 'vxlan-runt') >= 2 && dropCount(vt, 'vxlan-bad-vni') >= 1 && dropCount(vt, 'vxlan-bad-flags') >= 1;
    }, { timeoutMs: 15_000 });
    expect(dropCount(vt!, 'vxlan-bad-flags')).toBe(1);
    expect(dropCount(vt!, 'vxlan-bad-vni')).toBe(1);
    expect(dropCount(vt!, 'vxlan-runt')).toBe(2);
    expect(dropCount(vt!, 'vxlan-oversize')).toBe(1);
    // The one with reserved bits set was accepted: its source MAC was learned.
    const fdb = await a.vswJson<FdbEntryInfo[]>(['fdb', 'ov', '--format', 'json']);
    expect(fdb.find((e) => e.mac === '02:00:00:00:00:99')).toMatchObject({ vtep: IP_C });
    const r = await ping(A1, ip[B1], 2);
    expect(r.received, r.out).toBe(2);
  }, 90_000);

  it('fdb add/rm --vtep: a static entry, shown as static, never aged, removed on demand', async () => {
    await a.vswOk(['fdb', 'add', 'ov', '02:00:00:00:12:34', '--vtep', IP_B]);
    let rows = await a.vswJson<FdbEntryInfo[]>(['fdb', 'ov', '--format', 'json']);
    expect(rows.find((e) => e.mac === '02:00:00:00:12:34')).toMatchObject({ vtep: IP_B, static: true, port: 'vxlan1' });
    const bad = await a.vsw(['fdb', 'add', 'bridge', '02:00:00:00:12:35', '--vtep', IP_B]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/not a VXLAN network/);
    await a.vswOk(['fdb', 'rm', 'ov', '02:00:00:00:12:34']);
    rows = await a.vswJson<FdbEntryInfo[]>(['fdb', 'ov', '--format', 'json']);
    expect(rows.find((e) => e.mac === '02:00:00:00:12:34')).toBeUndefined();
  });

  it('bad VXLAN input is a clear error and creates nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['--vxlan', '0'], /VNI '0': expected an integer 1\.\.16777215/],
      [['--vxlan', '16777216'], /VNI '16777216'/],
      [['--vxlan', '5', '--peer', 'nope'], /peer 'nope': expected an IPv4 address/],
      [['--vxlan', '5', '--underlay-ip', '10.200.0.1'], /underlay address 10\.200\.0\.1 is not an address of this host/],
      [['--vxlan', '5', '--vlan', '10'], /cannot also be an 802\.1Q VLAN/],
    ];
    for (const [args, re] of cases) {
      const r = await a.vsw(['network', 'create', ...args, '--subnet', '10.80.0.0/24', 'badnet']);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(re);
    }
    const nets = await a.vswJson<NetworkInfo[]>(['network', 'ls', '--format', 'json']);
    expect(nets.map((x) => x.name)).not.toContain('badnet');
  });

  it('vsw trace shows decap and encap with the VTEP; capture on the overlay port gives inner frames; vsw_vxlan_* metrics', async () => {
    const tr = vswStream(a, ['trace', '--port', 'vxlan1', '--filter', 'icmp', '-c', '1']);
    await tr.waitLine(/^vsw: tracing port vxlan1/);
    const pr = await ping(B1, ip[A1], 2);
    expect(pr.received, pr.out).toBe(2);
    await tr.wait(15_000);
    expect(tr.stdout()).toMatch(/decap from VTEP 192\.168\.77\.2/);
    const tr2 = vswStream(a, ['trace', '--port', A1, '--filter', 'icmp', '-c', '1']);
    await tr2.waitLine(/^vsw: tracing port /);
    expect((await ping(A1, ip[B1], 2)).received).toBe(2);
    await tr2.wait(15_000);
    expect(tr2.stdout()).toMatch(/encap to VTEP 192\.168\.77\.2/);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PA}-`));
    try {
      const file = path.join(dir, 'ov.pcap');
      const cap = vswStream(a, ['capture', '--port', 'vxlan1', '--filter', 'icmp', '-c', '2', '-w', file]);
      await cap.waitLine(/^vsw: capturing on vxlan1/);
      expect((await ping(A1, ip[B1], 1)).received).toBe(1);
      expect(await cap.wait(15_000)).toEqual({ code: 0, signal: null });
      const r = await shOk('tcpdump', ['-n', '-r', file]);
      expect(r.stdout).toMatch(new RegExp(`${ip[A1].replace(/\./g, '\\.')} > ${ip[B1].replace(/\./g, '\\.')}: ICMP echo request`));
      expect(r.stdout).toMatch(/ICMP echo reply/);
      expect(r.stdout).not.toMatch(/VXLAN/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }

    const m = await execInOpts(a.hostNs, ['curl', '-s', 'http://127.0.0.1:9109/metrics'], { timeoutMs: 10_000 });
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toMatch(new RegExp(`vsw_vxlan_tx_packets_total\\{network="ov",vni="100",peer="${IP_B.replace(/\./g, '\\.')}"\\} [1-9]`));
    expect(m.stdout).toMatch(/vsw_vxlan_peers\{network="ov",vni="100"\} 2/);
    expect(m.stdout).toMatch(/vsw_vxlan_remote_macs\{network="ov",vni="100"\} [1-9]/);
    expect(m.stdout).toMatch(/vsw_port_drops_total\{port="vtep-4789",network="",container="",kind="vtep",reason="vxlan-bad-vni"\} 1/);
  }, 90_000);

  it('--arp-proxy: ARP for a known remote container is answered on this host, no ARP request crosses the underlay; off, it crosses', async () => {
    const usage = await a.vsw(['network', 'create', '--arp-proxy', '--subnet', '10.81.0.0/24', 'noarp']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--arp-proxy need --vxlan VNI/);
    await a.vswOk(['network', 'create', '--vxlan', '300', '--arp-proxy', '--peer', IP_B, '--subnet', '10.80.0.0/24', '--ip-range', '10.80.0.0/26', 'arp']);
    await b.vswOk(['network', 'create', '--vxlan', '300', '--peer', IP_A, '--subnet', '10.80.0.0/24', '--ip-range', '10.80.0.64/26', 'arp']);
    try {
      for (const [d, name] of [[a, A3], [b, B3]] as const) {
        const e = await runEndpoint(d, name, { network: 'arp', cmd: ['sleep', '900'] });
        ip[name] = e.ip;
        mac[name] = e.mac;
      }
      const na = await a.vswJson<NetworkInfo>(['network', 'inspect', 'arp']);
      expect(na.vxlan).toMatchObject({ vni: 300, arpProxy: true, arp: { answered: 0, flooded: 0 } });
      expect((await b.vswJson<NetworkInfo>(['network', 'inspect', 'arp'])).vxlan?.arpProxy).toBe(false);
      expect((await a.vswOk(['network', 'ls'])).stdout).toMatch(/^arp .*vxlan=300,peers=1,arp-proxy/m);
      // First contact: B3's address is not known on A yet, the request is flooded (and
      // B3's frames teach A its address).
      expect((await ping(A3, ip[B3], 2, ['-W', '3'])).received).toBe(2);
      const first = (await a.vswJson<NetworkInfo>(['network', 'inspect', 'arp'])).vxlan?.arp;
      expect(first?.flooded).toBeGreaterThanOrEqual(1);
      expect(first?.entries).toBeGreaterThanOrEqual(1);

      // Known now: A3 forgets B3's MAC and asks again; A answers, nothing crosses.
      await execIn(A3, 'ip', 'neigh', 'flush', 'dev', 'eth0');
      const who = (x: string): RegExp => new RegExp(`Request who-has ${x.replace(/\./g, '\\.')} `);
      const cap = await capture(U, 'ua', ['-v', 'udp', 'port', '4789']);
      const tr = vswStream(a, ['trace', '--port', A3, '--filter', 'arp', '-c', '1']);
      await tr.waitLine(/^vsw: tracing port /);
      const ar = await execInOpts(A3, ['arping', '-c', '1', '-w', '3', '-I', 'eth0', ip[B3]], { timeoutMs: 10_000 });
      expect(ar.code, ar.stdout + ar.stderr).toBe(0);
      expect(ar.stdout.toLowerCase()).toContain(mac[B3].toLowerCase());
      await tr.wait(15_000);
      expect(tr.stdout()).toMatch(new RegExp(`arp-proxy-reply: ${ip[B3].replace(/\./g, '\\.')} is-at ${mac[B3]}`));
      // A ping after it crosses (the marker the capture waits for); B3 answers it.
      expect((await ping(A3, ip[B3], 1, ['-W', '3'])).received).toBe(1);
      const lines = (await cap.stop((l) => l.some((x) => /ICMP echo reply/.test(x)))).join('\n');
      expect(lines).toMatch(/ICMP echo request/);
      expect(lines).not.toMatch(who(ip[B3]));
      const after = (await a.vswJson<NetworkInfo>(['network', 'inspect', 'arp'])).vxlan?.arp;
      expect(after?.answered).toBeGreaterThanOrEqual(1);

      // A static entry with --ip (a station that never sends): answered from it; refused on a network without the proxy.
      const noProxy = await a.vsw(['fdb', 'add', 'ov', '02:00:00:00:80:99', '--vtep', IP_B, '--ip', '10.77.0.99']);
      expect(noProxy.code).not.toBe(0);
      expect(noProxy.stderr).toMatch(/--ip needs a network created with --arp-proxy/);
      await a.vswOk(['fdb', 'add', 'arp', '02:00:00:00:80:99', '--vtep', IP_B, '--ip', '10.80.0.99']);
      const st = await execInOpts(A3, ['arping', '-c', '1', '-w', '3', '-I', 'eth0', '10.80.0.99'], { timeoutMs: 10_000 });
      expect(st.code, st.stdout + st.stderr).toBe(0);
      expect(st.stdout.toLowerCase()).toContain('02:00:00:00:80:99');
      await a.vswOk(['fdb', 'rm', 'arp', '02:00:00:00:80:99']);

      // B has no proxy: its container's request for A3 crosses the underlay as before.
      await execIn(B3, 'ip', 'neigh', 'flush', 'dev', 'eth0');
      const cap2 = await capture(U, 'ua', ['-v', 'udp', 'port', '4789']);
      const br = await execInOpts(B3, ['arping', '-c', '1', '-w', '3', '-I', 'eth0', ip[A3]], { timeoutMs: 10_000 });
      expect(br.code, br.stdout + br.stderr).toBe(0);
      const lines2 = (await cap2.stop((l) => l.some((x) => who(ip[A3]).test(x)))).join('\n');
      expect(lines2, lines2).toMatch(who(ip[A3]));
    } finally {
      await b.vsw(['rm', '-f', B3]);
      await b.vsw(['network', 'rm', 'arp']);
    }
  }, 90_000);

  it('removing one of two VXLAN networks on a VTEP keeps the other working; the last one closes the socket', async () => {
    await a.vswOk(['rm', '-f', A2]);
    await a.vswOk(['network', 'rm', 'ov2']);
    const nets = await a.vswJson<NetworkInfo[]>(['network', 'ls', '--format', 'json']);
    expect(nets.map((n) => n.name)).not.toContain('ov2');
    const r = await ping(A1, ip[B1], 2);
    expect(r.received, r.out).toBe(2);
    expect((await a.vswJson<PortStatsInfo[]>(['stats', '--format', 'json'])).map((p) => p.name)).toContain('vtep-4789');
    // B: its last VXLAN network on 4789 gone (after ov2, ov too) closes the socket.
    await b.vswOk(['rm', '-f', B2]);
    await b.vswOk(['network', 'rm', 'ov2']);
    await b.vswOk(['rm', '-f', B1]);
    await b.vswOk(['network', 'rm', 'ov']);
    expect((await b.vswJson<PortStatsInfo[]>(['stats', '--format', 'json'])).map((p) => p.name)).not.toContain('vtep-4789');
    const ss = await execIn(b.hostNs, 'ss', '-uln');
    expect(ss.stdout).not.toMatch(/:4789\b/);
    await b.vswOk(['network', 'create', '--vxlan', '100', '--peer', IP_A, '--peer', IP_C, '--subnet', '10.77.0.0/24', '--ip-range', '10.77.0.64/26', 'ov']);
    const e = await runEndpoint(b, B1, { network: 'ov', cmd: ['sleep', '900'] });
    ip[B1] = e.ip;
    await waitFor('A1 to reach the new B1', async () => (await ping(A1, ip[B1], 1, ['-W', '1'])).received === 1, { timeoutMs: 20_000 });
  }, 90_000);

  it('after a daemon restart the overlay, its peers and static entries come back', async () => {
    await a.vswOk(['fdb', 'add', 'ov', '02:00:00:00:56:78', '--vtep', IP_B]);
    await a.restart();
    const n = await a.vswJson<NetworkInfo>(['network', 'inspect', 'ov']);
    expect(n.vxlan).toMatchObject({ vni: 100, localIp: IP_A, peers: [IP_B, IP_C] });
    // --arp-proxy is kept in the state.
    expect((await a.vswJson<NetworkInfo>(['network', 'inspect', 'arp'])).vxlan?.arpProxy).toBe(true);
    const rows = await a.vswJson<FdbEntryInfo[]>(['fdb', 'ov', '--format', 'json']);
    expect(rows.find((e) => e.mac === '02:00:00:00:56:78')).toMatchObject({ vtep: IP_B, static: true });
    await waitFor('A1 to reach B1 and C1 again', async () =>
      (await ping(A1, ip[B1], 1, ['-W', '1'])).received === 1 && (await ping(A1, C1_IP, 1, ['-W', '1'])).received === 1,
    { timeoutMs: 20_000 });
  }, 60_000);

  it('a daemon whose underlay address is gone at restart still starts, says why, and keeps the network host-local', async () => {
    await shOk('ip', ['-n', b.hostNs, 'addr', 'del', `${IP_B}/24`, 'dev', 'ul']);
    await b.restart();
    expect(b.log()).toMatch(/network ov: VXLAN overlay not opened: underlay address 192\.168\.77\.2 is not an address of this host/);
    const n = await b.vswJson<NetworkInfo>(['network', 'inspect', 'ov']);
    expect(n.vxlan?.overlayPort).toBe('');
    expect(n.ports.some((p) => p.role === 'overlay')).toBe(false);
  }, 60_000);
});
