// `vsw trunk add|rm|ls`: 802.1Q trunks.

import { Argument, Command } from 'commander';
import { trunksTable } from '../format';
import type { TrunkCreate, TrunkInfo } from '../types';
import { formatVlanSet, parseVlanSet } from '../vlan';
import { eachName, enc, type Cli } from './common';
import { checked, ifName, integer } from './options';

export function addTrunkCommands(program: Command, { io, done, sub, client, tableCommand }: Cli): void {
  const trunk = sub(program, 'trunk', 'Manage 802.1Q trunks: interfaces that carry VLAN networks as tagged frames (add, rm, ls)', false);
  trunk.usage('COMMAND [ARGS...]');

  sub(trunk, 'add', 'Attach an interface (or a new TAP) as an 802.1Q trunk; prints its name')
    .addArgument(new Argument('<dev>', "an interface of the daemon's namespace (with --tap: the TAP to create)").argParser(ifName))
    .option('--vlans <list>', 'VLAN ids it carries, e.g. 10,20,30-40 (default: every VLAN network, present and future)', checked((v) => formatVlanSet(parseVlanSet(v))))
    .option('--native <id>', 'the VLAN whose frames cross the trunk untagged (carried even if not in --vlans)', integer(1, 4094))
    .option('--tap', 'create a TAP named DEV (the host kernel sees the trunk there) instead of attaching an existing interface')
    .addHelpText('after', `
Frames of the carried VLANs leave DEV tagged (the native VLAN untagged); tagged frames of
those VLANs entering it are switched into their network; everything else is dropped and
counted (vsw stats: vlan-not-member, untagged-on-trunk, qinq, runt-after-untag). A VLAN
network created later joins the trunk at once. Trunks are kept in the state and come back
at the next start.`)
    .action(async (dev: string, o: { vlans?: string; native?: number; tap?: boolean }, cmd: Command) => {
      const spec: TrunkCreate = { device: dev };
      if (o.vlans !== undefined) spec.vlans = o.vlans;
      if (o.native !== undefined) spec.native = o.native;
      if (o.tap) spec.tap = true;
      const info = await client(cmd).post<TrunkInfo>('/trunks', spec);
      io.out(`${info.device}\n`);
    });

  sub(trunk, 'rm', 'Detach trunks (a TAP made by --tap goes away); prints each name')
    .alias('remove')
    .argument('<dev...>', 'trunk devices')
    .action(async (devs: string[], _o: unknown, cmd: Command) => {
      done(await eachName(io, devs, (d) => client(cmd).del(`/trunks/${enc(d)}`)));
    });

  tableCommand<TrunkInfo>(trunk, 'ls', 'List trunks (DEVICE KIND VLANS NATIVE NETWORKS STATUS; NETWORKS: NAME:VID, (u) = untagged)',
    '/trunks', trunksTable).alias('list');
}
