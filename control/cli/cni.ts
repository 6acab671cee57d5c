// `vsw cni install DIR`: vsw as a CNI plugin (control/cni/, README "CNI"). Local only: it
// writes a file and does not talk to the daemon.

import { Command } from 'commander';
import { installPlugin } from '../cni/install';
import type { Cli } from './common';
import { nonEmpty } from './options';

export function addCniCommands(program: Command, { io, sub }: Cli): void {
  const cni = sub(program, 'cni', 'vsw as a CNI plugin for podman, containerd and Kubernetes (install)', false);
  cni.usage('COMMAND [ARGS...]');

  sub(cni, 'install', 'Install the vsw CNI plugin into a CNI plugin directory; prints the path written', false)
    .argument('<dir>', 'a CNI plugin directory, e.g. /opt/cni/bin or /usr/lib/cni (it must exist)')
    .option('--name <name>', 'file name of the plugin, i.e. the conflist\'s "type"', nonEmpty('--name'), 'vsw')
    .option('--force', 'replace a file of that name that is not a vsw launcher')
    .addHelpText('after', `
Writes DIR/NAME, a small shell launcher that runs vsw-cni (this package's
dist/control/cni/main.js) with this node by absolute path: DIR may be on any filesystem.
Run it again after moving or upgrading vsw (until then the launcher answers the runtime
with a CNI error saying so). An existing vsw launcher is replaced; any other file only
with --force.

A conflist then uses it as {"type": "NAME", "network": "VSW-NETWORK", ...}: see the
README's "CNI" section for podman, containerd and Kubernetes.`)
    .action((dir: string, o: { name: string; force?: boolean }) => {
      const r = installPlugin(dir, { name: o.name, force: o.force === true });
      io.out(`${r.path}\n`);
    });
}
