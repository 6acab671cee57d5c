// End to end with a real runtime: podman 4.3 with its CNI backend puts busybox containers
// on a vsw network through vsw-cni (installed with `vsw cni install`), issue 10's recipe:
// podman under `nsenter --net=` of the daemon's throwaway host namespace, its own
// containers.conf (network_backend "cni", a temp network_config_dir holding the vsw
// conflist, cni_plugin_dirs = vsw-cni's and the reference plugins'), root, runroot and tmp
// dir, cgroupfs, the file events backend, `--rootfs` of a busybox-static tree.
// The daemon has an uplink to an "outside" namespace (a web server there).

import { spawnSync } from 'child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../control/client';
import type { AttachmentInfo } from '../../control/types';
import { installVswCni, REFERENCE_PLUGINS, startPodman, type Podman } from '../fixtures/cni';
import {
  background, cleanupPrefix, Daemon, describeResult, execIn, isRoot, NEEDS_ROOT, runPrefix, sh, shOk, startDaemon, waitFor,
} from '../fixtures/harness';
import { linkOutside } from '../fixtures/topology';

const P = runPrefix('cn');
const OUT = `${P}-out`;
const OUTSIDE_IP = '198.51.100.1';
const UPLINK_IP = '198.51.100.2';
const SUBNET = '10.92.0.0/24';
const GW = '10.92.0.1';

const havePodman = isRoot && spawnSync('podman', ['--version'], { timeout: 10_000 }).status === 0;
if (!isRoot) console.warn(`test/integration/cni-podman.test.ts skipped: ${NEEDS_ROOT}`);
else if (!havePodman) console.warn('test/integration/cni-podman.test.ts skipped: podman is not installed (apt-get install podman)');

describe.skipIf(!havePodman)('podman with the CNI backend on vsw (root)', () => {
  let d: Daemon;
  let pod: Podman;
  const c = (s: string): string => `${P}-${s}`;
  const ipOf: Record<string, string> = {};
  const attachments = (): Promise<AttachmentInfo[]> => new Client(d.sock).listAttachments();
  const exec = (name: string, cmd: string[]): ReturnType<Podman['run']> => pod.run(['exec', name, ...cmd], { timeoutMs: 30_000 });

  beforeAll(async () => {
    d = await startDaemon({
      prefix: P, workers: 1,
      setup: async (hostNs) => { await linkOutside(hostNs, OUT, OUTSIDE_IP); },
      extraArgs: ['--uplink', 'up0', '--uplink-ip', `${UPLINK_IP}/24`, '--uplink-gateway', OUTSIDE_IP],
    });
    const bin = await installVswCni(d.stateDir);
    pod = await startPodman(d.hostNs, [bin, REFERENCE_PLUGINS], P);
    pod.addConflist({
      cniVersion: '1.0.0', name: 'vswnet',
      plugins: [{ type: 'vsw', network: 'vswnet', subnet: SUBNET, gateway: GW, socket: d.sock, capabilities: { portMappings: true, aliases: true } }],
    });
    await d.vswOk(['network', 'create', 'vswnet', '--subnet', SUBNET, '--gateway', GW]);
    for (const [name, extra, cmd] of [
      ['web', ['--network-alias', 'www', '-p', '8080:80'], ['httpd', '-f', '-p', '80', '-h', '/var/www']],
      ['cli', [], ['sleep', '600']],
    ] as [string, string[], string[]][]) {
      await pod.start(c(name), 'vswnet', extra, cmd);
      const r = await pod.ok(['inspect', c(name), '--format', '{{(index .NetworkSettings.Networks "vswnet").IPAddress}}']);
      ipOf[name] = r.stdout.trim();
    }
  }, 180_000);

  afterAll(async () => {
    try {
      if (pod) await pod.cleanup();
    } finally {
      if (d) await d.cleanup();
      else await cleanupPrefix(P);
    }
  }, 120_000);

  it('podman sees the address vsw gave, and the gateway as the nameserver', async () => {
    const atts = await attachments();
    expect(atts.map((a) => a.name).sort()).toEqual([c('cli'), c('web')]);
    expect(atts.find((a) => a.name === c('web'))?.ip).toBe(ipOf.web);
    const resolv = await exec(c('cli'), ['cat', '/etc/resolv.conf']);
    expect(resolv.stdout).toContain(`nameserver ${GW}`);
    // vsw ps shows them by podman's names.
    const ps = await d.vswOk(['ps']);
    expect(ps.stdout).toContain(c('web'));
    expect(ps.stdout).toContain(c('cli'));
  });

  it('the containers reach each other, the gateway and the outside through the uplink', async () => {
    for (const dst of [ipOf.web, GW, OUTSIDE_IP]) {
      const r = await exec(c('cli'), ['ping', '-c', '2', '-W', '2', dst]);
      expect(r.code, describeResult(`ping ${dst}`, r)).toBe(0);
    }
    const web = background('ip', ['netns', 'exec', OUT, 'python3', '-u', '-m', 'http.server', '8000', '--bind', OUTSIDE_IP], 60_000);
    try {
      await waitFor('the outside web server to listen', async () => (await execIn(OUT, 'ss', '-ltnH')).stdout.includes(':8000 '));
      const r = await exec(c('cli'), ['wget', '-q', '-O', '-', `http://${OUTSIDE_IP}:8000/`]);
      expect(r.code, describeResult('wget outside', r)).toBe(0);
      await waitFor('the outside server to log the request', () => web.stderr().includes('"GET / '));
      expect(web.stderr()).toContain(UPLINK_IP); // masqueraded behind the uplink address
    } finally {
      await web.stop('SIGKILL');
    }
  });

  it('-p 8080:80 is reached from the outside at the uplink address', async () => {
    const r = await sh('ip', ['netns', 'exec', OUT, 'curl', '-s', '--max-time', '10', `http://${UPLINK_IP}:8080/`]);
    expect(r.code, describeResult('curl the published port', r)).toBe(0);
    expect(r.stdout).toContain('hello from a podman container on vsw');
  });

  it('--network-alias resolves through vsw\'s DNS at the gateway', async () => {
    for (const name of ['www', c('web')]) {
      const r = await exec(c('cli'), ['nslookup', name, GW]);
      expect(r.code, describeResult(`nslookup ${name}`, r)).toBe(0);
      expect(r.stdout).toContain(ipOf.web);
    }
  });

  it('podman rm leaves nothing in vsw: no attachment, no switch port, no veth', async () => {
    const hostIfs = (await attachments()).map((a) => a.hostIf);
    expect(hostIfs.length).toBe(2);
    await pod.ok(['rm', '-f', '-t', '0', c('web'), c('cli')]);
    expect(await attachments()).toEqual([]);
    const links = (await shOk('ip', ['-n', d.hostNs, '-o', 'link'])).stdout;
    for (const h of hostIfs) expect(links).not.toContain(h);
    const ps = await d.vswOk(['ps']);
    expect(ps.stdout).not.toContain(c('web'));
    const stats = await d.vswOk(['stats']);
    for (const h of hostIfs) expect(stats.stdout).not.toContain(h);
  });
});
