// Packet-level experiments (docs/EXPERIMENTS.md): `vsw inject` (a capture's frames into a
// port, through the daemon), `vsw snapshot` (what decides forwarding, to a file) and
// `vsw replay` (captures through a snapshot's switch, offline: no daemon, no root).

import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { VswError } from '../errors';
import { formatJson } from '../format';
import type { InjectProgress, InjectSummary } from '../inject';
import type { Snapshot } from '../snapshot';
import { uncarriableText } from '../pcap-read';
import { usageError, type Cli } from './common';
import { filterExpr, formatOption, integer, type Format } from './options';
import { followLines, streamRequest } from './stream';

export function addExperimentCommands(program: Command, { io, sub, client, print }: Cli): void {
  sub(program, 'inject', "Send a capture's frames into the switch as if a port had received them (the whole pipeline), with progress and a summary")
    .requiredOption('--port <port>', 'the port they arrive on: a port name as `vsw stats` shows it, a container name (its first network), or NAME:NET')
    .requiredOption('--pcap <file>', 'a pcap or pcapng file (Ethernet frames); the daemon reads it')
    .addOption(new Option('--timing <timing>', "the capture's own spacing between frames (the default)").choices(['original']))
    .option('--rate <pps>', 'instead: this many frames per second', integer(1, 100_000_000))
    .option('--top-speed', 'instead: as fast as the port\'s worker takes them')
    .option('--loop <n>', 'send the capture N times', integer(1, 1_000_000), 1)
    .option('--filter <expr>', "only the frames that match, e.g. 'icmp or arp' (see README: filters)", filterExpr)
    .addOption(formatOption())
    .addHelpText('after', `
Frames the capture cannot carry (cut by its snap length, not Ethernet, shorter than an
Ethernet header, larger than 64 KiB) are counted and not sent. The summary's forwarded/dropped counts are
the pipeline's verdicts on exactly these frames (see vsw stats for the port's totals).`)
    .action(async (o: { port: string; pcap: string; timing?: string; rate?: number; topSpeed?: boolean; loop: number; filter?: string; format: Format }, cmd: Command) => {
      if ([o.timing !== undefined, o.rate !== undefined, o.topSpeed === true].filter((x) => x).length > 1) {
        usageError(cmd, '--timing original, --rate PPS and --top-speed are alternatives: give one');
      }
      const file = path.resolve(o.pcap);
      if (!fs.existsSync(file)) throw new VswError(`cannot read ${o.pcap}: no such file`, 'E_INVALID_ARGUMENT', 400);
      const timing = o.rate !== undefined ? 'rate' : o.topSpeed ? 'top-speed' : 'original';
      const body = { port: o.port, pcap: file, timing, loop: o.loop, ...(o.rate !== undefined ? { rate: o.rate } : {}), ...(o.filter ? { filter: o.filter } : {}) };
      let summary: InjectSummary | undefined;
      let failure: VswError | undefined;
      await streamRequest(client(cmd), 'POST', '/inject', body, (res) => {
        followLines(res, (line) => {
          const m = JSON.parse(line) as InjectProgress | InjectSummary | { type: 'error'; code: string; message: string };
          if (m.type === 'progress') io.err(`vsw: inject: ${m.done}/${m.total} frames, ${m.rate} frames/s, ${m.leftSeconds} s left\n`);
          else if (m.type === 'summary') summary = m;
          else failure = new VswError(m.message, m.code, 500);
        });
        return () => undefined;
      });
      if (failure) throw failure;
      if (!summary) throw new VswError('the daemon ended the injection without a summary', 'E_INTERNAL', 500);
      const s = summary;
      print(o.format, s, () => injectText(s));
    });

  sub(program, 'snapshot', 'Save what decides forwarding (ports, VLANs, port security, MAC/neighbour/connection tables, router, published ports, DNS names, impairment settings) for vsw replay')
    .requiredOption('-w, --write <file>', 'the snapshot file to write (JSON, docs/EXPERIMENTS.md)')
    .action(async (o: { write: string }, cmd: Command) => {
      const s = await client(cmd).get<Snapshot>('/snapshot');
      fs.writeFileSync(o.write, `${JSON.stringify(s)}\n`);
      io.err(`vsw: wrote ${o.write} (snapshot version ${s.version}: ${s.ports.length} ports, ${s.networks.length} networks)\n`);
    });

  sub(program, 'replay', 'Run captures through the switch of a snapshot, offline (no daemon, no root), with a virtual clock: the same inputs give byte-identical outputs', false)
    .requiredOption('--snapshot <file>', 'a file from vsw snapshot -w')
    .requiredOption('--in <port=file...>', 'PORT=FILE.pcap: the frames received on PORT (port name, container, NAME:NET); repeatable')
    .requiredOption('--out <dir>', 'where to write PORT.pcap per port (what it sent), drops.json, punted.pcap')
    .option('--trace', 'also write every frame\'s path through the stages to DIR/trace.txt (the wording of vsw trace)')
    .addOption(formatOption())
    .action((o: { snapshot: string; in: string[]; out: string; trace?: boolean; format: Format }, cmd: Command) => {
      const inputs = o.in.map((spec) => {
        const eq = spec.indexOf('=');
        if (eq <= 0 || eq === spec.length - 1) usageError(cmd, `--in ${spec}: expected PORT=FILE.pcap`);
        return { port: spec.slice(0, eq), file: spec.slice(eq + 1) };
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { runReplay, replaySummaryText } = require('../replay') as typeof import('../replay');
      const summary = runReplay({ snapshot: o.snapshot, inputs, out: o.out, trace: o.trace === true });
      io.out(o.format === 'json' ? formatJson(summary) : replaySummaryText(summary));
    });
}

/** The summary of `vsw inject` as text. */
export function injectText(s: InjectSummary): string {
  const drops = Object.entries(s.dropped);
  const lines = [
    `sent ${s.sent} of ${s.total} frames to ${s.port} in ${s.seconds} s${s.stopped ? ' (stopped before the end)' : ''}`,
    `forwarded ${s.forwarded}, taken by the switch ${s.local}, dropped ${drops.reduce((a, [, n]) => a + n, 0)}${drops.length ? `: ${drops.map(([r, n]) => `${r} ${n}`).join(', ')}` : ''}`,
  ];
  const notSent = uncarriableText(s.notSent);
  if (notSent) lines.push(notSent);
  if (s.impaired > 0) lines.push(`held by the port's in-direction impairment (decided when released; see vsw stats): ${s.impaired}`);
  if (s.filteredOut > 0) lines.push(`not matched by --filter: ${s.filteredOut}`);
  return `${lines.join('\n')}\n`;
}
