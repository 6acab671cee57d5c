// End to end: attachments (POST /attachments), the endpoints of sandboxes another runtime
// made. Here the test plays the runtime: it makes a namespace by hand as the sandbox, asks
// vsw for an endpoint in it (CNI style: netns given, vsw configures it) and another left
// in the daemon's namespace (Docker style: the test moves and configures it, as dockerd
// does), then pings the gateway and a vsw container, by address and by name; vsw ps shows
// the sandboxes under their runtime's names; vsw rm and network rm refuse them; kill -9 of
// the daemon and a restart keep them switching; DELETE removes them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../control/client';
import type { AttachmentInfo, ContainerInfo, NetworkInfo } from '../../control/types';
import { addNetns, cleanupPrefix, Daemon, execIn, isRoot, NEEDS_ROOT, runPrefix, sh, shOk, startDaemon, waitFor } from '../fixtures/harness';
import { ping, runEndpoint } from '../fixtures/topology';

const P = runPrefix('dk');
const C1 = `${P}-c1`;
const SB = `${P}-sb`;       // the CNI-style sandbox
const DS = `${P}-ds`;       // the Docker-style sandbox
const S2 = `${P}-s2`;       // a sandbox whose attachment a crash interrupts
const CNI_NAME = `${P}-cni`;
const DOCKER_NAME = `${P}-dock`;

if (!isRoot) console.warn(`test/integration/attachments.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('attachments: sandboxes made by another runtime (root)', () => {
  let d: Daemon;
  let client: Client;
  let c1Ip: string;
  let cni: AttachmentInfo;
  let dock: AttachmentInfo;

  const ps = (): Promise<ContainerInfo[]> => d.vswJson<ContainerInfo[]>(['ps', '--format', 'json']);
  /** null when all 3 pings are answered, else the output. */
  const pings = async (from: string, dst: string): Promise<string | null> => {
    const r = await ping(from, dst, 3, ['-W', '3']);
    return r.received === r.sent && r.sent === 3 ? null : r.out;
  };

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 2 });
    client = new Client(d.sock);
    c1Ip = (await runEndpoint(d, C1)).ip;
    await addNetns(SB);
    await addNetns(DS);
    await addNetns(S2);
  }, 120_000);

  afterAll(async () => {
    delete process.env.VSW_CRASH_AT;
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('CNI style (netns given): vsw moves and configures the inner end; the sandbox pings the gateway and a vsw container', async () => {
    cni = await client.attach({
      owner: 'cni', endpoint: `${P}cid/eth0`, sandbox: `${P}cid`, name: CNI_NAME, network: 'bridge',
      netns: `/run/netns/${SB}`, ifname: 'eth0', aliases: [`${P}-web`],
    });
    expect(cni).toMatchObject({ owner: 'cni', name: CNI_NAME, network: 'bridge', innerIf: 'eth0', netns: `/run/netns/${SB}` });
    const addr = await execIn(SB, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0');
    expect(addr.stdout).toContain(`${cni.ip}/${cni.prefixLen}`);
    const route = await execIn(SB, 'ip', 'route', 'show', 'default');
    expect(route.stdout).toContain(`via ${cni.gateway} dev eth0`);
    expect(await pings(SB, cni.gateway)).toBeNull();
    expect(await pings(SB, c1Ip)).toBeNull();
    // vsw's DNS answers the sandbox's name and alias to a vsw container.
    expect(await pings(C1, CNI_NAME)).toBeNull();
    expect(await pings(C1, `${P}-web`)).toBeNull();
  }, 60_000);

  it('the same endpoint posted again is the same attachment; other fields are refused, and so are names taken', async () => {
    const again = await client.attach({
      owner: 'cni', endpoint: `${P}cid/eth0`, sandbox: `${P}cid`, name: CNI_NAME, network: 'bridge', netns: `/run/netns/${SB}`,
    });
    expect(again).toEqual(cni);
    await expect(client.attach({
      owner: 'cni', endpoint: `${P}cid/eth0`, sandbox: `${P}cid`, name: CNI_NAME, network: 'bridge', netns: `/run/netns/${SB}`, ip: '10.89.0.200',
    })).rejects.toThrow(/already exists with ip/);
    await expect(client.attach({ owner: 'docker', endpoint: 'other', sandbox: 'x', name: C1, network: 'bridge' }))
      .rejects.toThrow(`container '${C1}' already exists (a bridge container)`);
    // A refused request left nothing behind.
    expect((await client.listAttachments()).map((a) => a.endpoint)).toEqual([`${P}cid/eth0`]);
  }, 30_000);

  it('Docker style (no netns): the inner end waits down in the daemon namespace with its MAC; moved and configured by the runtime, it switches', async () => {
    dock = await client.attach({ owner: 'docker', endpoint: `${P}ep1`, sandbox: `/var/run/docker/netns/${P}`, name: DOCKER_NAME, network: 'bridge' });
    expect(dock.netns).toBeUndefined();
    const inner = await execIn(d.hostNs, 'ip', '-o', 'link', 'show', 'dev', dock.innerIf);
    expect(inner.code).toBe(0);
    expect(inner.stdout).toContain(dock.mac);
    expect(inner.stdout).toMatch(/state DOWN/);
    // What dockerd does with it after Join.
    await shOk('ip', ['-n', d.hostNs, 'link', 'set', 'dev', dock.innerIf, 'netns', DS, 'name', 'eth0']);
    await shOk('ip', ['-n', DS, 'addr', 'add', `${dock.ip}/${dock.prefixLen}`, 'dev', 'eth0']);
    await shOk('ip', ['-n', DS, 'link', 'set', 'eth0', 'up']);
    await shOk('ip', ['-n', DS, 'route', 'add', 'default', 'via', dock.gateway]);
    expect(await pings(DS, cni.ip)).toBeNull();
    expect(await pings(C1, DOCKER_NAME)).toBeNull();
  }, 60_000);

  it('vsw ps shows the sandboxes by their runtime names and modes; vsw rm, network disconnect and network rm refuse them', async () => {
    const cs = await ps();
    expect(cs.find((c) => c.name === CNI_NAME)).toMatchObject({ mode: 'cni', sandbox: `${P}cid`, networks: [{ network: 'bridge', ip: cni.ip }] });
    expect(cs.find((c) => c.name === DOCKER_NAME)).toMatchObject({ mode: 'docker', networks: [{ network: 'bridge', ip: dock.ip }] });
    const stats = await d.vswJson<{ name: string; container?: string }[]>(['stats', '--format', 'json']);
    expect(stats.find((s) => s.name === cni.hostIf)?.container).toBe(CNI_NAME);
    const rm = await d.vsw(['rm', '-f', DOCKER_NAME]);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain("is Docker's (a docker container)");
    const disc = await d.vsw(['network', 'disconnect', 'bridge', CNI_NAME]);
    expect(disc.stderr).toContain("is the CNI runtime's");
    await d.vswOk(['network', 'create', '--subnet', '10.93.7.0/24', `${P}-n2`]);
    const other = await client.attach({ owner: 'cni', endpoint: `${P}cid/eth1`, sandbox: `${P}cid`, name: CNI_NAME, network: `${P}-n2`, netns: `/run/netns/${SB}`, ifname: 'eth1', defaultRoute: false });
    const nrm = await d.vsw(['network', 'rm', `${P}-n2`]);
    expect(nrm.code).toBe(1);
    expect(nrm.stderr).toContain("the CNI runtime owns them");
    expect(await client.detach(other.endpoint)).toBe(true);
    await d.vswOk(['network', 'rm', `${P}-n2`]);
    // The first endpoint of the sandbox is still there, its default route untouched.
    expect((await execIn(SB, 'ip', 'route', 'show', 'default')).stdout).toContain(`via ${cni.gateway} dev eth0`);
  }, 60_000);

  it('kill -9 of the daemon and a restart: the attachments are re-plugged and traffic flows again', async () => {
    await d.kill9();
    expect(await pings(SB, c1Ip), 'the sandbox reached c1 with the daemon dead').not.toBeNull();
    await d.restart();
    expect(d.log()).toContain(`attachment ${P}cid/eth0 on network bridge re-attached`);
    expect(await pings(SB, c1Ip)).toBeNull();
    expect(await pings(DS, cni.ip)).toBeNull();
    expect((await client.listAttachments()).map((a) => a.endpoint).sort()).toEqual([`${P}cid/eth0`, `${P}ep1`].sort());
  }, 90_000);

  it.each([['after-veth', 'a new sandbox'], ['after-addr', 'a new sandbox'], ['before-save', 'a sandbox vsw knows']])(
    'the daemon dies at %s of an attachment to %s: the next start undoes it, the others stay, and the same POST then works',
    async (point, which) => {
      const known = which === 'a sandbox vsw knows';
      const spec = known
        ? { owner: 'cni' as const, endpoint: `${P}cid/eth1`, sandbox: `${P}cid`, name: CNI_NAME, network: `${P}-n3`, netns: `/run/netns/${SB}`, ifname: 'eth1', defaultRoute: false }
        : { owner: 'cni' as const, endpoint: `${P}c2/eth0`, sandbox: `${P}c2`, name: `${P}-cni2`, network: 'bridge', netns: `/run/netns/${S2}`, ifname: 'eth0' };
      if (known && !(await d.vsw(['network', 'inspect', `${P}-n3`])).stdout.includes('subnet')) {
        await d.vswOk(['network', 'create', '--subnet', '10.93.8.0/24', `${P}-n3`]);
      }
      process.env.VSW_CRASH_AT = point;
      try {
        await d.restart();
      } finally {
        delete process.env.VSW_CRASH_AT;
      }
      await expect(client.attach(spec)).rejects.toThrow();
      await waitFor('the daemon to die', () => !d.running(), { timeoutMs: 10_000, intervalMs: 50 });
      expect(d.log()).toContain(`VSW_CRASH_AT=${point}: killing myself`);
      const sandbox = known ? SB : S2;
      expect((await execIn(sandbox, 'ip', 'link', 'show', 'dev', spec.ifname)).code, 'the veth the crash left').toBe(0);
      await d.restart();
      expect(d.log()).toMatch(known ? `attachment ${spec.endpoint} on network ${P}-n3: its creation was interrupted` : `container ${P}-cni2: its creation was interrupted`);
      expect((await execIn(sandbox, 'ip', 'link', 'show', 'dev', spec.ifname)).code, 'the veth is gone').not.toBe(0);
      expect((await client.listAttachments()).map((a) => a.endpoint).sort()).toEqual([`${P}cid/eth0`, `${P}ep1`].sort());
      expect(await pings(SB, c1Ip)).toBeNull();
      const made = await client.attach(spec);
      expect(await pings(sandbox, made.gateway)).toBeNull();
      expect(await client.detach(made.endpoint)).toBe(true);
    }, 120_000);

  it('DELETE removes the veth, the port and the names; again it is 404 (done)', async () => {
    expect(await client.detach(cni.endpoint)).toBe(true);
    expect((await execIn(SB, 'ip', 'link', 'show', 'dev', 'eth0')).code).not.toBe(0);
    expect((await sh('ip', ['-n', d.hostNs, 'link', 'show', 'dev', cni.hostIf])).code).not.toBe(0);
    expect((await ps()).some((c) => c.name === CNI_NAME)).toBe(false);
    expect(await client.attachment(cni.endpoint)).toBeUndefined();
    expect(await client.detach(cni.endpoint)).toBe(false);
    expect(await client.detach(dock.endpoint)).toBe(true);
    expect((await execIn(DS, 'ip', 'link', 'show', 'dev', 'eth0')).code).not.toBe(0);
    const net = await d.vswJson<NetworkInfo>(['network', 'inspect', 'bridge']);
    expect(net.endpoints.map((e) => e.container)).toEqual([C1]);
    // The addresses are free again: a new vsw container may take the sandbox's.
    expect((await runEndpoint(d, `${P}-c2`, { args: ['--ip', cni.ip] })).ip).toBe(cni.ip);
  }, 60_000);
});
