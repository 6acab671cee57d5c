// What the switch sees: `vsw fdb|neigh|conntrack|stats` (tables), `vsw trace` (live or
// --dry-run), `vsw events` and `vsw capture` (streams).

import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import type { Client } from '../client';
import { PcapWriter } from '../pcap';
import { VswError } from '../errors';
import { formatEvent } from '../events';
import { conntrackTable, fdbTable, neighTable, statsTable } from '../format';
import { readPcap } from '../pcap-read';
import { CAPTURE_DIRECTIONS, PORT_HEADER, type CapturedLine, type ConntrackEntryInfo, type FdbEntryInfo, type NeighEntryInfo, type PortStatsInfo, type TraceResult, type VswEvent } from '../types';
import { enc, usageError, type Cli } from './common';
import { filterExpr, formatOption, integer, stageName, type Format } from './options';
import { followLines, lostText, skippedText, streamGet } from './stream';

export function addObserveCommands(program: Command, { io, sub, client, print, tableCommand }: Cli): void {
  const fdb = tableCommand<FdbEntryInfo>(program, 'fdb', 'Show the MAC tables (NETWORK MAC VLAN PORT CONTAINER [VTEP] AGE in seconds); fdb add|rm for static entries',
    '/fdb', fdbTable, 'only this network');
  // VXLAN (docs/VXLAN.md): static entries for peers that do not flood (flannel-style).
  sub(fdb, 'add', 'Add a static MAC entry to a VXLAN network: MAC lives behind the VTEP IP (never aged)')
    .argument('<network>', 'network name')
    .argument('<mac>', 'MAC address, e.g. 02:42:0a:4d:00:05')
    .requiredOption('--vtep <ip>', "the remote VTEP's underlay address")
    .option('--ip <addr>', "the station's IPv4 address too, for a network with --arp-proxy (ARP for it is answered locally)")
    .action(async (net: string, mac: string, o: { vtep: string; ip?: string }, cmd: Command) => {
      await client(cmd).post<FdbEntryInfo>('/fdb', { network: net, mac, vtep: o.vtep, ...(o.ip !== undefined ? { ip: o.ip } : {}) });
    });
  sub(fdb, 'rm', 'Remove a MAC entry (static or learned) from a network')
    .alias('remove')
    .argument('<network>', 'network name')
    .argument('<mac>', 'MAC address')
    .action(async (net: string, mac: string, _o: unknown, cmd: Command) => {
      await client(cmd).del(`/fdb?net=${enc(net)}&mac=${enc(mac)}`);
    });
  tableCommand<NeighEntryInfo>(program, 'neigh', "Show the gateways' neighbour (ARP) tables (NETWORK IP MAC STATE AGE in seconds)",
    '/neigh', neighTable, "only this network, or 'uplink' for the uplink's");

  tableCommand<ConntrackEntryInfo>(program, 'conntrack', 'Show the tracked connections (NAT): PROTO STATE ORIG REPLY KIND NETWORK EXPIRES PKTS',
    '/conntrack', conntrackTable)
    .addHelpText('after', `
ORIG is the connection as its first packet arrived (SRC:SPORT -> DST:DPORT), REPLY as the
answers arrive, after NAT (ICMP: SRC -> DST id=ID). KIND is masquerade (to the outside),
dnat (a published port) or dns. EXPIRES is in seconds; PKTS is original/reply packets.`);

  sub(program, 'trace', 'Follow frames through every pipeline stage: live traffic, or given frames with --dry-run')
    .option('--port <port>', 'frames arriving on this port: a port name as `vsw stats` shows it, a container name (its first network), or NAME:NET')
    .option('--net <network>', 'frames of this network (or uplink)')
    .option('--filter <expr>', "only frames that match, e.g. 'tcp and host 10.89.0.2 and port 80' (see README: filters)", filterExpr)
    .option('-c, --count <n>', 'stop after N traced frames (default: until Ctrl-C)', integer(1))
    .option('--dry-run', 'run the given frames (--frame/--pcap) on --port without side effects: nothing learned, nothing sent')
    .option('--frame <hex>', 'with --dry-run: one Ethernet frame in hex, from the destination MAC on')
    .option('--pcap <file>', 'with --dry-run: every frame of a pcap file (Ethernet link type; at most 1000)')
    .addOption(formatOption())
    .action(async (o: { port?: string; net?: string; filter?: string; count?: number; dryRun?: boolean; frame?: string; pcap?: string; format: Format }, cmd: Command) => {
      const usage = (m: string): never => usageError(cmd, m);
      if (!o.dryRun) {
        if (o.frame !== undefined || o.pcap !== undefined) usage('--frame and --pcap go with --dry-run');
        const q = new URLSearchParams();
        if (o.port) q.set('port', o.port);
        if (o.net) q.set('net', o.net);
        if (o.filter) q.set('filter', o.filter);
        if (o.count) q.set('count', String(o.count));
        const format = loadTraceFormatter();
        await streamGet(client(cmd), `/trace?${q.toString()}`, (res) => {
          io.err(`vsw: tracing ${o.port ? `port ${o.port}` : o.net ? `network ${o.net}` : 'every port'}${o.filter ? ` where ${o.filter}` : ''}${o.count ? ` (${o.count} frames)` : ''}; Ctrl-C stops\n`);
          followLines(res, (line) => {
            const r = JSON.parse(line) as TraceResult | { type: 'skipped'; count: number };
            if ('type' in r && r.type === 'skipped') io.err(skippedText(r.count, 'traced frames'));
            if (o.format === 'json') { io.out(`${line}\n`); return; }
            if ('type' in r) return;
            io.out(`${r.time ?? ''} port ${r.port ?? '?'} worker ${r.worker ?? '?'}\n${format(r)}\n`);
          });
          return () => { const lost = lostText(res); if (lost) io.err(`vsw: trace ended${lost}\n`); };
        });
        return;
      }
      if (o.port === undefined) usage('trace --dry-run needs --port');
      if (o.net !== undefined || o.filter !== undefined || o.count !== undefined) usage('--net, --filter and --count are for live traces (without --dry-run)');
      if ((o.frame === undefined) === (o.pcap === undefined)) usage('trace --dry-run needs exactly one of --frame HEX or --pcap FILE');
      let frames: string[];
      if (o.pcap !== undefined) {
        let data: Buffer;
        try {
          data = fs.readFileSync(o.pcap);
        } catch (e) {
          throw new VswError(`cannot read ${o.pcap}: ${(e as Error).message}`, 'E_INVALID_ARGUMENT', 400);
        }
        frames = readPcap(data, o.pcap).map((f) => Buffer.from(f.data).toString('hex'));
        if (frames.length === 0) throw new VswError(`${o.pcap} holds no frame`, 'E_INVALID_ARGUMENT', 400);
      } else {
        frames = [o.frame!];
      }
      const results = await client(cmd).post<TraceResult[]>('/trace/dry-run', { port: o.port!, frames });
      print(o.format, results, () => results.map(loadTraceFormatter()).join('\n'));
    });

  sub(program, 'events', 'Stream what changes: MACs learned/moved/aged/evicted, table full, ports up/down, containers, networks')
    .addOption(formatOption())
    .action(async (o: { format: Format }, cmd: Command) => {
      await streamGet(client(cmd), '/events', (res) => {
        // JSON: every line as the daemon sent it (its first, `ready`, says the stream is live).
        // Text: changes only; a `skipped` note goes to stderr.
        followLines(res, (line) => {
          const e = JSON.parse(line) as VswEvent;
          if (e.type === 'skipped') io.err(skippedText(e.count, 'events'));
          if (o.format === 'json') io.out(`${line}\n`);
          else if (e.type !== 'skipped' && e.type !== 'ready') io.out(`${formatEvent(e)}\n`);
        });
        return () => undefined;
      });
    });

  sub(program, 'capture', 'Write a port\'s frames (both directions, or one) to a pcap file, or every port\'s to a directory (--all-ports); tcpdump, tshark, Wireshark read them')
    .option('--port <port>', 'a port name as `vsw stats` shows it, a container name (its first network), or NAME:NET')
    .option('--all-ports', 'every port (and ports added meanwhile): -w names a directory, where PORT.in.pcap gets what PORT received and PORT.out.pcap what it sent (the inputs and outputs of vsw replay)')
    .requiredOption('-w, --write <file>', 'pcap file to write, or - for standard output; with --all-ports a directory')
    .addOption(new Option('--direction <dir>', 'with --port: received frames (in), sent frames (out), or both').choices([...CAPTURE_DIRECTIONS]))
    .option('-c, --count <n>', 'stop after N frames (default: until Ctrl-C)', integer(1))
    .option('--stage <stage>', 'the frames received on the port as they leave this pipeline stage (parse, ingress, learn, gateway, forward; pre-nat = learn, post-nat = gateway, pre-vlan = parse, post-vlan = ingress) instead of on the wire', stageName)
    .option('--filter <expr>', "only frames that match, e.g. 'icmp or arp' (see README: filters)", filterExpr)
    .action(async (o: { port?: string; allPorts?: boolean; write: string; direction?: string; count?: number; stage?: string; filter?: string }, cmd: Command) => {
      if (o.allPorts) {
        if (o.port !== undefined || o.stage !== undefined || o.direction !== undefined) usageError(cmd, '--all-ports takes every port on the wire, both directions (in/out files): no --port, --stage or --direction');
        if (o.write === '-') usageError(cmd, '--all-ports writes a directory: -w DIR');
        await captureAllPorts(io, client(cmd), o.write, o.count, o.filter);
        return;
      }
      if (o.port === undefined) usageError(cmd, 'capture needs --port PORT (or --all-ports)');
      const q = `/capture?port=${enc(o.port!)}${o.count ? `&count=${o.count}` : ''}${o.stage ? `&stage=${enc(o.stage)}` : ''}${o.filter ? `&filter=${enc(o.filter)}` : ''}${o.direction ? `&direction=${o.direction}` : ''}`;
      const toStdout = o.write === '-';
      await streamGet(client(cmd), q, (res) => {
        const port = res.headers[PORT_HEADER] ?? o.port;
        const out = toStdout ? process.stdout : fs.createWriteStream(o.write);
        let bytes = 0;
        res.on('data', (d: Buffer) => { bytes += d.length; });
        io.err(`vsw: capturing on ${port}${o.count ? ` (${o.count} frames)` : ''}; Ctrl-C stops\n`);
        res.pipe(out as NodeJS.WritableStream, { end: false });
        return () => new Promise<void>((done) => {
          const frames = `${Math.max(0, bytes - 24)} bytes of frames${lostText(res)}`;
          if (toStdout) { io.err(`vsw: capture ended (${frames})\n`); done(); return; }
          (out as fs.WriteStream).end(() => { io.err(`vsw: wrote ${o.write} (${frames})\n`); done(); });
        });
      });
    });

  tableCommand<PortStatsInfo>(program, 'stats', 'Per-port counters: rx/tx packets and bytes, drops by reason', '/stats', statsTable);
}

/**
 * dataplane/trace's formatTrace, loaded when `vsw trace` prints: that module brings the
 * whole pipeline with it, which no other command needs at start-up.
 */
function loadTraceFormatter(): (r: TraceResult) => string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../dataplane/trace') as typeof import('../../dataplane/trace')).formatTrace;
}

const FLUSH_MS = 200;

/**
 * capture --all-ports -w DIR: one stream of every port's frames (GET /capture?all=1, NDJSON);
 * each port's received frames to DIR/PORT.in.pcap, its sent frames to DIR/PORT.out.pcap
 * (opened when the port's first frame that way arrives). Readiness: the "capturing" line.
 */
async function captureAllPorts(io: Cli['io'], c: Client, dir: string, count: number | undefined, filter: string | undefined): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const files = new Map<string, PcapWriter>();
  let frames = 0;
  const q = `/capture?all=1${count ? `&count=${count}` : ''}${filter ? `&filter=${enc(filter)}` : ''}`;
  // The files are written out every FLUSH_MS (readable while the capture runs), and at the end.
  const flusher = setInterval(() => { for (const w of files.values()) w.flush(); }, FLUSH_MS);
  flusher.unref();
  await streamGet(c, q, (res) => {
    io.err(`vsw: capturing on every port to ${dir}${count ? ` (${count} frames)` : ''}; Ctrl-C stops\n`);
    followLines(res, (line) => {
      const m = JSON.parse(line) as CapturedLine | { type: 'skipped'; count: number };
      if ('type' in m) { io.err(skippedText(m.count, 'frames')); return; }
      const key = `${m.port}.${m.dir}`;
      let w = files.get(key);
      if (w === undefined) files.set(key, w = new PcapWriter(path.join(dir, `${key}.pcap`)));
      w.writeMs(Buffer.from(m.frame, 'hex'), m.timeMs);
      frames++;
    });
    return () => {
      clearInterval(flusher);
      for (const w of files.values()) w.close();
      io.err(`vsw: wrote ${frames} frames to ${files.size} files in ${dir}${lostText(res)}\n`);
    };
  });
}
