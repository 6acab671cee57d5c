// End to end: vsw-cni run by hand as a runtime runs it (CNI_* environment, configuration on
// stdin), installed with `vsw cni install`, against a real daemon in a throwaway host
// namespace, into namespaces the test makes. With the reference plugins next to it
// (containernetworking-plugins: host-local as its IPAM, tuning chained after it).

import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../control/client';
import type { AttachmentInfo } from '../../control/types';
import { installVswCni, REFERENCE_PLUGINS, runConflist, runPlugin, type PluginCall } from '../fixtures/cni';
import {
  addNetns, cleanupPrefix, Daemon, describeResult, execIn, isRoot, NEEDS_ROOT, runPrefix, sh, startDaemon,
} from '../fixtures/harness';
import { ping } from '../fixtures/topology';

const P = runPrefix('cn');
const ns = (s: string): string => `${P}-${s}`;
const nsPath = (s: string): string => `/run/netns/${ns(s)}`;
const haveReference = fs.existsSync(path.join(REFERENCE_PLUGINS, 'host-local')) && fs.existsSync(path.join(REFERENCE_PLUGINS, 'tuning'));

if (!isRoot) console.warn(`test/integration/cni.test.ts skipped: ${NEEDS_ROOT}`);
if (isRoot && !haveReference) console.warn('test/integration/cni.test.ts: the reference plugins tests are skipped (apt-get install containernetworking-plugins)');

describe.skipIf(!isRoot)('vsw-cni by hand, as a runtime runs it (root)', () => {
  let d: Daemon;
  let bin: string;
  let plugin: string;
  let cniPath: string[];
  const SUBNET = '10.91.0.0/24';
  const GW = '10.91.0.1';

  const conf = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    cniVersion: '1.0.0', name: 'cninet', type: 'vsw', network: 'cninet', subnet: SUBNET, gateway: GW, socket: d.sock, ...extra,
  });
  const call = (command: PluginCall['command'], c: string, o: Partial<PluginCall> = {}): PluginCall => ({
    command, containerId: `${P}-${c}`, netns: nsPath(c), ifname: 'eth0', path: cniPath, ...o,
  });
  const addr = async (c: string, ifname = 'eth0'): Promise<{ mac: string; addrs: string[] }> => {
    const r = await execIn(ns(c), 'ip', '-j', 'addr', 'show', 'dev', ifname);
    const [l] = JSON.parse(r.stdout || '[{}]') as { address?: string; addr_info?: { family: string; local: string; prefixlen: number }[] }[];
    return { mac: l?.address ?? '', addrs: (l?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`) };
  };
  const hostLinks = async (): Promise<string> => (await execIn(d.hostNs, 'ip', '-o', 'link')).stdout;
  const attachments = (): Promise<AttachmentInfo[]> => new Client(d.sock).listAttachments();

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 1 });
    bin = await installVswCni(d.stateDir);
    plugin = path.join(bin, 'vsw');
    cniPath = [bin, REFERENCE_PLUGINS];
    for (const c of ['a', 'b', 'h', 't', 'g']) await addNetns(ns(c));
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('VERSION through the installed launcher', async () => {
    const r = await runPlugin(plugin, { command: 'VERSION', containerId: '', path: cniPath }, { cniVersion: '1.0.0' });
    expect(r.code, describeResult('VERSION', r)).toBe(0);
    expect(r.json.supportedVersions).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0']);
  });

  it('ADD creates the network and gives connectivity: the gateway, another attachment', async () => {
    const a = await runPlugin(plugin, call('ADD', 'a', { args: `IgnoreUnknown=1;K8S_POD_NAME=${ns('pod-a')}` }), conf());
    expect(a.code, describeResult('ADD a', a)).toBe(0);
    const b = await runPlugin(plugin, call('ADD', 'b'), conf());
    expect(b.code, describeResult('ADD b', b)).toBe(0);
    // The result is what is in the namespace.
    expect(a.json.interfaces[1]).toMatchObject({ name: 'eth0', sandbox: nsPath('a') });
    expect(a.json.ips[0]).toMatchObject({ gateway: GW, interface: 1 });
    expect(a.json.dns).toEqual({ nameservers: [GW] });
    const inA = await addr('a');
    expect(inA.addrs).toEqual([a.json.ips[0].address]);
    expect(inA.mac).toBe(a.json.interfaces[1].mac);
    expect(await hostLinks()).toContain(a.json.interfaces[0].name);
    const route = await execIn(ns('a'), 'ip', 'route', 'show', 'default');
    expect(route.stdout).toContain(`via ${GW}`);
    // Switched and routed by vsw.
    expect((await ping(ns('a'), GW)).received).toBe(3);
    const ipB = String(b.json.ips[0].address).split('/')[0];
    const p = await ping(ns('a'), ipB);
    expect(p.received, p.out).toBe(3);
    // vsw knows them by pod name, else by container id.
    const ps = await d.vsw(['ps']);
    expect(ps.stdout).toContain(ns('pod-a'));
    expect(ps.stdout).toContain(`${P}-b`);
    expect((await d.vswJson<{ subnet: string }>(['network', 'inspect', 'cninet'])).subnet).toBe(SUBNET);
  });

  it('CHECK passes on a good attachment and fails when the address went away', async () => {
    const add = await runPlugin(plugin, call('ADD', 'a', { args: `IgnoreUnknown=1;K8S_POD_NAME=${ns('pod-a')}` }), conf());
    expect(add.code, describeResult('ADD again', add)).toBe(0);
    const ok = await runPlugin(plugin, call('CHECK', 'a'), conf({ prevResult: add.json }));
    expect(ok.code, describeResult('CHECK', ok)).toBe(0);
    const cidr = String(add.json.ips[0].address);
    await execIn(ns('a'), 'ip', 'addr', 'del', cidr, 'dev', 'eth0');
    try {
      const bad = await runPlugin(plugin, call('CHECK', 'a'), conf({ prevResult: add.json }));
      expect(bad.code).toBe(1);
      expect(bad.json).toMatchObject({ code: 106, msg: expect.stringContaining(`not ${cidr}`) });
    } finally {
      await execIn(ns('a'), 'ip', 'addr', 'add', cidr, 'dev', 'eth0');
      await execIn(ns('a'), 'ip', 'route', 'replace', 'default', 'via', GW);
    }
  });

  it('DEL removes the interface and the switch port; twice, and with the namespace gone, is fine', async () => {
    const before = (await attachments()).find((x) => x.endpoint === `${P}-b/eth0`);
    expect(before).toBeDefined();
    const del = await runPlugin(plugin, call('DEL', 'b'), conf());
    expect(del.code, describeResult('DEL b', del)).toBe(0);
    expect(del.stdout).toBe('');
    expect((await execIn(ns('b'), 'ip', '-o', 'link')).stdout).not.toContain('eth0');
    expect(await hostLinks()).not.toContain(before!.hostIf);
    expect((await attachments()).map((x) => x.endpoint)).not.toContain(`${P}-b/eth0`);
    expect((await runPlugin(plugin, call('DEL', 'b'), conf())).code).toBe(0);
    // The namespace deleted first (a runtime that lost it): DEL still cleans vsw.
    const g = await runPlugin(plugin, call('ADD', 'g'), conf());
    expect(g.code, describeResult('ADD g', g)).toBe(0);
    await sh('ip', ['netns', 'del', ns('g')]);
    const gone = await runPlugin(plugin, call('DEL', 'g', { netns: '' }), conf());
    expect(gone.code, describeResult('DEL g without its netns', gone)).toBe(0);
    expect((await attachments()).map((x) => x.endpoint)).not.toContain(`${P}-g/eth0`);
    expect(await hostLinks()).not.toContain(g.json.interfaces[0].name);
  });

  it.skipIf(!haveReference)('host-local as the IPAM plugin: its address, released at DEL', async () => {
    const dataDir = path.join(d.stateDir, 'host-local');
    const c = conf({ ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: SUBNET, rangeStart: '10.91.0.200', rangeEnd: '10.91.0.210', gateway: GW }]] } });
    const r = await runPlugin(plugin, call('ADD', 'h'), c);
    expect(r.code, describeResult('ADD with host-local', r)).toBe(0);
    const ip = String(r.json.ips[0].address);
    expect(ip).toMatch(/^10\.91\.0\.2(0\d|10)\/24$/);
    expect((await addr('h')).addrs).toEqual([ip]);
    expect(fs.existsSync(path.join(dataDir, 'cninet', ip.split('/')[0]))).toBe(true);
    expect((await ping(ns('h'), GW)).received).toBe(3);
    const check = await runPlugin(plugin, call('CHECK', 'h'), { ...c, prevResult: r.json });
    expect(check.code, describeResult('CHECK with host-local', check)).toBe(0);
    const del = await runPlugin(plugin, call('DEL', 'h'), c);
    expect(del.code, describeResult('DEL with host-local', del)).toBe(0);
    expect(fs.existsSync(path.join(dataDir, 'cninet', ip.split('/')[0]))).toBe(false);
  });

  it.skipIf(!haveReference)('tuning chained after vsw: it reads our prevResult, its sysctl is applied, traffic flows', async () => {
    const list = {
      name: 'cninet', cniVersion: '1.0.0',
      plugins: [conf(), { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.arp_notify': '1' } }],
    };
    const c = { containerId: `${P}-t`, netns: nsPath('t'), ifname: 'eth0', path: cniPath };
    const add = await runConflist(list, c, 'ADD');
    expect(add.json.interfaces.map((i: { name: string }) => i.name)[1]).toBe('eth0');
    expect(add.json.ips[0]).toMatchObject({ gateway: GW, interface: 1 });
    expect((await execIn(ns('t'), 'sysctl', '-n', 'net.ipv4.conf.eth0.arp_notify')).stdout.trim()).toBe('1');
    expect((await ping(ns('t'), GW)).received).toBe(3);
    await runConflist(list, c, 'CHECK', add.json);
    await runConflist(list, c, 'DEL', add.json);
    expect((await execIn(ns('t'), 'ip', '-o', 'link')).stdout).not.toContain('eth0');
  });

  it('errors a runtime can act on: a bad config changes nothing', async () => {
    const before = await attachments();
    const r = await runPlugin(plugin, call('ADD', 'a', { args: 'IP=10.91.0.999' }), conf());
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 4 });
    const outside = await runPlugin(plugin, call('ADD', 'h', { args: 'IP=10.1.2.3' }), conf());
    expect(outside.code).toBe(1);
    expect(outside.json.code).toBeGreaterThanOrEqual(100);
    expect(await attachments()).toEqual(before);
    expect((await execIn(ns('h'), 'ip', '-o', 'link')).stdout).not.toContain('eth0');
  });
});
