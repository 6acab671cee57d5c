// `vsw impair set|rm|ls`: link impairment of a port (delay, jitter, loss, duplicate, corrupt,
// reorder, rate), netem's settings inside the switch (control/impair.ts, dataplane/impair/).

import { Command, Option } from 'commander';
import { impairTable } from '../format';
import {
  IMPAIR_DIRECTIONS, parseDistribution, parseLossModel, parsePercent, parseRate, parseSize, parseTime, type ImpairRequest,
} from '../impair';
import type { ImpairInfo } from '../types';
import { enc, eachName, type Cli } from './common';
import { checked, integer } from './options';

const PORT_HELP = 'a port: its interface name (vsw stats), a container (its first network), CONTAINER:NETWORK, a trunk device, or uplink';

export function addImpairCommands(program: Command, { io, done, sub, client, tableCommand }: Cli): void {
  const impair = sub(program, 'impair', 'Impair a port\'s link like netem: delay, jitter, loss, duplicate, corrupt, reorder, rate (set, rm, ls)', false);
  impair.usage('COMMAND [ARGS...]');

  const text = (check: (v: string) => unknown): ((v: string) => string) => checked((v) => { check(v); return v; });
  sub(impair, 'set', 'Set (replace) a port\'s impairment; prints the settings')
    .argument('<port>', PORT_HELP)
    .addOption(new Option('--direction <dir>', 'which frames: out (leaving by the port, toward its container), in (arriving on it), or both')
      .choices([...IMPAIR_DIRECTIONS]).default('out'))
    .option('--delay <time>', 'added delay, e.g. 20ms, 500us, 1s', text((v) => parseTime(v, 'delay')))
    .option('--jitter <time>', 'delay variation: +- for uniform, the standard deviation for normal and pareto', text((v) => parseTime(v, 'jitter')))
    .option('--distribution <name>', 'the jitter\'s distribution: uniform (default), normal, pareto', text(parseDistribution))
    .option('--loss <pct>', 'random loss, e.g. 10% (each frame on its own)', text((v) => parsePercent(v, 'loss')))
    .option('--loss-model <model>', 'bursty loss: gilbert:P[,R[,1-H[,1-K]]] (Gilbert-Elliott, netem\'s gemodel) or state:P13[,P31[,P32[,P23[,P14]]]] (4-state), in %', text(parseLossModel))
    .option('--duplicate <pct>', 'send a second copy of this share of frames', text((v) => parsePercent(v, 'duplicate')))
    .option('--corrupt <pct>', 'flip one random bit in this share of frames (still sent)', text((v) => parsePercent(v, 'corrupt')))
    .option('--reorder <pct>', 'send this share of frames at once, ahead of the delayed ones (needs --delay)', text((v) => parsePercent(v, 'reorder')))
    .option('--gap <n>', 'with --reorder: reorder at most every Nth frame (netem\'s gap)', integer(1, 1_000_000))
    .option('--rate <bits>', 'limit the rate, e.g. 10mbit, 500kbit, 1gbit (a token bucket; frame overhead not counted)', text(parseRate))
    .option('--burst <bytes>', 'with --rate: the bucket\'s depth, e.g. 32k (default 0: frames leave one serialisation time apart)', text((v) => parseSize(v, 'burst')))
    .option('--limit <frames>', 'frames the delay queue holds (default 1000, as netem); more are dropped (impair-queue-full)', integer(1, 100_000))
    .option('--seed <n>', 'seed of the port\'s random choices: the same seed and frames give the same choices (default: drawn, shown by ls)', integer(0, 0xffffffff))
    .addHelpText('after', `
Semantics follow tc-netem(8); where vsw differs, README "Link impairment" says. Frames the
impairment drops, duplicates or corrupts are counted on the port under their own reason
(vsw stats, metrics: impair-loss, impair-duplicate, impair-corrupt, impair-queue-full,
impair-rate), and vsw trace shows what was done to each traced frame. Setting a port again
replaces all its settings (frames already delayed leave at once). Kept in the state: back
after a restart, gone when the port goes.

Examples:
  vsw impair set web --delay 20ms --jitter 5ms --distribution normal
  vsw impair set web --loss 1% --seed 7
  vsw impair set web:backend --direction both --rate 10mbit --burst 32k`)
    .action(async (port: string, o: Omit<ImpairRequest, 'port'>, cmd: Command) => {
      const info = await client(cmd).post<ImpairInfo>('/impair', { ...o, port });
      io.out(`${info.port} ${info.direction}: ${info.settings} (seed ${info.seed})\n`);
    });

  sub(impair, 'rm', 'Remove ports\' impairments (frames delayed leave at once); prints each port')
    .alias('remove')
    .argument('<port...>', PORT_HELP)
    .action(async (ports: string[], _o: unknown, cmd: Command) => {
      done(await eachName(io, ports, (p) => client(cmd).del(`/impair/${enc(p)}`)));
    });

  tableCommand<ImpairInfo>(impair, 'ls', 'List impaired ports (PORT NETWORK CONTAINER DIRECTION SEED SETTINGS)', '/impair', impairTable)
    .alias('list');
}
