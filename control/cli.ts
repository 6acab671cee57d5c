#!/usr/bin/env node
// The `vsw` command. Every command but `daemon` is a thin client of the daemon's API
// (control/client.ts); `run`/`exec` in the foreground also run the user's command in the
// container's network namespace themselves (see docs/DESIGN.md, "Control plane").
//
// Exit codes: 0 success; 1 the daemon refused or failed (it prints `vsw: <message>`), or the
// daemon cannot be reached; 2 usage errors (bad/missing arguments or options, detected here);
// foreground `run`/`exec`: the command's own code (128+N when killed by signal N, 127 when it
// cannot be found, 126 when it cannot be executed).

import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tty from 'tty';
import { Command, CommanderError, InvalidArgumentError as OptionValueError, Option } from 'commander';
import * as http from 'http';
import { Client, DEFAULT_SOCKET, unreachableMessage } from './client';
import { readPcap } from './pcap';
import { formatTrace } from '../dataplane/trace';
import { formatEvent } from './events';
import { DaemonUnreachableError, errorFromJson, NotFoundError, VswError } from './errors';
import { parseMetricsAddr } from './metrics';
import {
  containersTable, fdbTable, formatJson, networksTable, statsTable,
} from './format';
import type {
  ContainerCreate, ContainerInfo, DaemonInfo, DaemonOptions, EndpointInfo, FdbEntryInfo,
  NetworkCreate, NetworkInfo, PortStatsInfo, TraceResult, VswEvent,
} from './types';

/** What `require('./daemon')` must provide (control/daemon.ts, loaded only by `vsw daemon`). */
interface DaemonModule {
  runDaemon(opts: DaemonOptions): Promise<void>;
}

const DAEMON_DEFAULTS = {
  stateDir: '/var/lib/vsw',
  workers: 2,
  defaultNetwork: 'bridge',
  fdbAgingSeconds: 300,
  fdbMax: 16384,
  fdbMaxPerPort: 4096,
} as const;

type Format = 'table' | 'json';

/** Where output goes; the real process streams unless a caller (a test) substitutes them. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: CliIo = {
  out: (t) => { process.stdout.write(t); },
  err: (t) => { process.stderr.write(t); },
};

// ---------------------------------------------------------------------------------------
// Option value parsers (a throw here is a usage error: exit 2)

function integer(min?: number, max?: number): (v: string) => number {
  return (v: string): number => {
    if (!/^[+-]?\d+$/.test(v.trim())) throw new OptionValueError('Not an integer.');
    const n = Number(v);
    if ((min !== undefined && n < min) || (max !== undefined && n > max)) {
      throw new OptionValueError(max === undefined ? `Must be at least ${min}.` : `Must be from ${min} to ${max}.`);
    }
    return n;
  };
}

function nonEmpty(what: string): (v: string) => string {
  return (v: string): string => {
    if (v.trim() === '') throw new OptionValueError(`${what} must not be empty.`);
    return v;
  };
}

/** --metrics ADDR: HOST:PORT or :PORT (control/metrics.ts parses it; prom-client is not loaded). */
function metricsAddr(v: string): string {
  try {
    parseMetricsAddr(v);
  } catch (e) {
    throw new OptionValueError(`${(e as Error).message}.`);
  }
  return v;
}

function formatOption(): Option {
  return new Option('--format <format>', 'output format: table or json').choices(['table', 'json']).default('table');
}

// ---------------------------------------------------------------------------------------
// The program

/**
 * Build the commander program. `done(code)` receives the exit code chosen by an action
 * (foreground run/exec); `io` is where output goes.
 */
export function buildProgram(io: CliIo = processIo, done: (code: number) => void = () => {}): Command {
  const program = new Command('vsw');
  program
    .description('vsw: a userspace virtual switch for container networks, with a Docker-like CLI')
    .usage('[--socket PATH] COMMAND [ARGS...]')
    .option('--socket <path>', `API socket of the daemon (default: $VSW_SOCKET or ${DEFAULT_SOCKET})`)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s, write) => write(s.replace(/^error: /, 'vsw: ')),
    })
    .showHelpAfterError("(run 'vsw --help' for usage)")
    .addHelpText('after', `
Environment:
  VSW_SOCKET   path of the daemon's API socket (default ${DEFAULT_SOCKET}); --socket overrides it

Run 'vsw COMMAND --help' for the options of a command.`);

  /** A subcommand with the shared settings: its own usage hint and a local --socket. */
  const sub = (parent: Command, spec: string, description: string, socketOption = true): Command => {
    const c = parent.command(spec).description(description);
    const fullName = [...ancestors(c)].reverse().slice(1).map((x) => x.name()).join(' ');
    c.showHelpAfterError(`(run 'vsw ${fullName} --help' for usage)`);
    if (socketOption) c.addOption(new Option('--socket <path>', 'API socket of the daemon').hideHelp());
    return c;
  };

  const client = (cmd: Command): Client => new Client(socketOf(cmd));
  const print = (format: Format, data: unknown, table: () => string): void => {
    io.out(format === 'json' ? formatJson(data) : table());
  };

  // --- networks -----------------------------------------------------------------------
  const network = sub(program, 'network', 'Manage networks (create, ls, inspect, rm, connect, disconnect)', false);
  network.usage('COMMAND [ARGS...]');

  sub(network, 'create', 'Create a network; prints its name')
    .argument('<name>', 'network name')
    .addOption(new Option('--subnet <cidr>', 'subnet in CIDR form, e.g. 10.10.0.0/24 (default: a free one from the pool)'))
    .addOption(new Option('--gateway <ip>', 'gateway address (default: the first address of the subnet)'))
    .addOption(new Option('--ip-range <cidr>', 'allocate container addresses from this CIDR inside the subnet'))
    .addOption(new Option('--mtu <bytes>', 'MTU of the network (default 1500)').argParser(integer()))
    .action(async (name: string, o: { subnet?: string; gateway?: string; ipRange?: string; mtu?: number }, cmd: Command) => {
      const spec: NetworkCreate = { name };
      if (o.subnet !== undefined) spec.subnet = o.subnet;
      if (o.gateway !== undefined) spec.gateway = o.gateway;
      if (o.ipRange !== undefined) spec.ipRange = o.ipRange;
      if (o.mtu !== undefined) spec.mtu = o.mtu;
      const info = await client(cmd).post<NetworkInfo>('/networks', spec);
      io.out(`${info.name}\n`);
    });

  sub(network, 'ls', 'List networks (NAME ID SUBNET GATEWAY MTU ENDPOINTS DEFAULT)')
    .alias('list')
    .addOption(formatOption())
    .action(async (o: { format: Format }, cmd: Command) => {
      const nets = await client(cmd).get<NetworkInfo[]>('/networks');
      print(o.format, nets, () => networksTable(nets));
    });

  sub(network, 'inspect', 'Show a network as JSON: subnet, gateway, ports, endpoints with IP and MAC')
    .argument('<name>', 'network name')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      io.out(formatJson(await client(cmd).get<NetworkInfo>(`/networks/${enc(name)}`)));
    });

  sub(network, 'rm', 'Remove networks (refused while containers are attached); prints each name')
    .alias('remove')
    .argument('<name...>', 'network names')
    .action(async (names: string[], _o: unknown, cmd: Command) => {
      done(await eachName(io, names, (n) => client(cmd).del(`/networks/${enc(n)}`)));
    });

  sub(network, 'connect', 'Attach a container to a network')
    .argument('<network>', 'network name')
    .argument('<container>', 'container name')
    .option('--ip <ip>', 'address for the container (default: the next free one)')
    .action(async (net: string, container: string, o: { ip?: string }, cmd: Command) => {
      const body: { container: string; ip?: string } = { container };
      if (o.ip !== undefined) body.ip = o.ip;
      await client(cmd).post<EndpointInfo>(`/networks/${enc(net)}/connect`, body);
    });

  sub(network, 'disconnect', 'Detach a container from a network')
    .argument('<network>', 'network name')
    .argument('<container>', 'container name')
    .action(async (net: string, container: string, _o: unknown, cmd: Command) => {
      await client(cmd).post<void>(`/networks/${enc(net)}/disconnect`, { container });
    });

  // --- containers ---------------------------------------------------------------------
  sub(program, 'run', 'Create a container (a network namespace) and optionally run a command in it')
    .usage('[-d] [--rm] --name NAME [--network NET|none|host|container:OTHER] [--ip IP] [-- CMD [ARGS...]]')
    .argument('[cmd...]', 'command to run in the container (after --)')
    .option('-d, --detach', 'let the daemon run CMD in the background (log in STATE/containers/NAME.log); print the name')
    .option('--rm', 'remove the container when CMD exits')
    .requiredOption('--name <name>', 'container name (also the name of its network namespace)', nonEmpty('--name'))
    .option('--network <net>', 'a network name, none, host, or container:OTHER (default: the default network)')
    .option('--ip <ip>', 'address in the network (default: the next free one)')
    .passThroughOptions()
    .addHelpText('after', `
Without -d, CMD runs in the foreground with this terminal's stdio; vsw exits with its code
(128+N when killed by signal N). Without CMD, the container is only created.`)
    .action(async (argv: string[], o: { detach?: boolean; rm?: boolean; name: string; network?: string; ip?: string }, cmd: Command) => {
      const c = client(cmd);
      const spec: ContainerCreate = { name: o.name, detach: !!o.detach, rm: !!o.rm };
      if (o.network !== undefined) spec.network = o.network;
      if (o.ip !== undefined) spec.ip = o.ip;
      if (argv.length > 0) {
        // A command that cannot run is refused before anything is created (127/126, as a
        // shell says), for -d too: the daemon would only find out after answering.
        const found = findExecutable(argv[0]);
        if (typeof found === 'number') {
          io.err(`vsw: ${argv[0]}: ${found === 127 ? 'command not found' : 'permission denied'}\n`);
          done(found);
          return;
        }
        spec.cmd = argv;
      }
      const info = await c.post<ContainerInfo>('/containers', spec);
      if (o.detach || argv.length === 0) {
        io.out(`${info.name}\n`);
        return;
      }
      let code: number;
      try {
        code = await runInContainer(c, io, info, argv);
      } catch (e) {
        // Could not even start it (e.g. GET /info failed): still report, and clean up for --rm.
        io.err(`vsw: ${(e as Error).message}\n`);
        code = 1;
      }
      await bestEffort(io, `could not report the exit of ${info.name} to the daemon`,
        () => c.post<void>(`/containers/${enc(info.name)}/exited`, { code }));
      if (o.rm) {
        await bestEffort(io, `could not remove ${info.name}`, () => c.del(`/containers/${enc(info.name)}?force=1`));
      }
      done(code);
    });

  sub(program, 'exec', 'Run a command in an existing container; exits with its code')
    .usage('NAME -- CMD [ARGS...]')
    .argument('<name>', 'container name')
    .argument('[cmd...]', 'command and arguments (after --)')
    .passThroughOptions()
    .action(async (name: string, argv: string[], _o: unknown, cmd: Command) => {
      const command = argv[0] === '--' ? argv.slice(1) : argv;
      if (command.length === 0) {
        cmd.error('vsw: exec needs a command: vsw exec NAME -- CMD [ARGS...]', { exitCode: 2, code: 'vsw.usage' });
      }
      const c = client(cmd);
      const info = await c.get<ContainerInfo>(`/containers/${enc(name)}`);
      done(await runInContainer(c, io, info, command));
    });

  sub(program, 'ps', 'List containers (NAME ID NETWORK IP MAC STATUS COMMAND)')
    .addOption(formatOption())
    .action(async (o: { format: Format }, cmd: Command) => {
      const cs = await client(cmd).get<ContainerInfo[]>('/containers');
      print(o.format, cs, () => containersTable(cs));
    });

  sub(program, 'rm', 'Remove containers; prints each name')
    .argument('<name...>', 'container names')
    .option('-f, --force', 'also stop a running (detached) command')
    .action(async (names: string[], o: { force?: boolean }, cmd: Command) => {
      const q = o.force ? '?force=1' : '';
      done(await eachName(io, names, (n) => client(cmd).del(`/containers/${enc(n)}${q}`)));
    });

  // --- dataplane views ----------------------------------------------------------------
  sub(program, 'fdb', 'Show the MAC tables (NETWORK MAC VLAN PORT CONTAINER AGE in seconds)')
    .argument('[network]', 'only this network')
    .addOption(formatOption())
    .action(async (net: string | undefined, o: { format: Format }, cmd: Command) => {
      const q = net !== undefined ? `?net=${enc(net)}` : '';
      const entries = await client(cmd).get<FdbEntryInfo[]>(`/fdb${q}`);
      print(o.format, entries, () => fdbTable(entries));
    });

  sub(program, 'trace', 'Show what each pipeline stage decides for frames on a port (--dry-run only, for now)')
    .requiredOption('--port <port>', 'a port name as `vsw stats` shows it, a container name (its first network), or NAME:NET')
    .option('--dry-run', 'run the given frames without side effects: nothing learned, nothing sent (required: live tracing is not built yet)')
    .option('--frame <hex>', 'one Ethernet frame in hex, from the destination MAC on')
    .option('--pcap <file>', 'every frame of a pcap file (Ethernet link type; at most 1000)')
    .addOption(formatOption())
    .action(async (o: { port: string; dryRun?: boolean; frame?: string; pcap?: string; format: Format }, cmd: Command) => {
      const usage = (m: string): never => cmd.error(`vsw: ${m}`, { exitCode: 2, code: 'vsw.usage' }) as never;
      if (!o.dryRun) usage('live tracing is not built yet: use --dry-run with --frame HEX or --pcap FILE');
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
      const results = await client(cmd).post<TraceResult[]>('/trace/dry-run', { port: o.port, frames });
      print(o.format, results, () => results.map(formatTrace).join('\n'));
    });

  sub(program, 'events', 'Stream what changes: MACs learned/moved/aged/evicted, table full, ports up/down, containers, networks')
    .addOption(formatOption())
    .action(async (o: { format: Format }, cmd: Command) => {
      await streamGet(client(cmd), '/events', (res) => {
        let pending = '';
        res.on('data', (d: Buffer) => {
          pending += d.toString();
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl);
            pending = pending.slice(nl + 1);
            if (line === '') continue;
            io.out(o.format === 'json' ? `${line}\n` : `${formatEvent(JSON.parse(line) as VswEvent)}\n`);
          }
        });
        return () => undefined;
      });
    });

  sub(program, 'capture', 'Write a port\'s frames, both directions, to a pcap file (tcpdump, tshark, Wireshark read it)')
    .requiredOption('--port <port>', 'a port name as `vsw stats` shows it, a container name (its first network), or NAME:NET')
    .requiredOption('-w, --write <file>', 'pcap file to write, or - for standard output')
    .option('-c, --count <n>', 'stop after N frames (default: until Ctrl-C)', integer(1))
    .action(async (o: { port: string; write: string; count?: number }, cmd: Command) => {
      const q = `/capture?port=${enc(o.port)}${o.count ? `&count=${o.count}` : ''}`;
      const toStdout = o.write === '-';
      await streamGet(client(cmd), q, (res) => {
        const port = res.headers['x-vsw-port'] ?? o.port;
        const out = toStdout ? process.stdout : fs.createWriteStream(o.write);
        let bytes = 0;
        res.on('data', (d: Buffer) => { bytes += d.length; });
        io.err(`vsw: capturing on ${port}${o.count ? ` (${o.count} frames)` : ''}; Ctrl-C stops\n`);
        res.pipe(out as NodeJS.WritableStream, { end: false });
        return () => new Promise<void>((done) => {
          const frames = `${Math.max(0, bytes - 24)} bytes of frames`;
          if (toStdout) { io.err(`vsw: capture ended (${frames})\n`); done(); return; }
          (out as fs.WriteStream).end(() => { io.err(`vsw: wrote ${o.write} (${frames})\n`); done(); });
        });
      });
    });

  sub(program, 'stats', 'Per-port counters: rx/tx packets and bytes, drops by reason')
    .addOption(formatOption())
    .action(async (o: { format: Format }, cmd: Command) => {
      const ports = await client(cmd).get<PortStatsInfo[]>('/stats');
      print(o.format, ports, () => statsTable(ports));
    });

  // --- the daemon ---------------------------------------------------------------------
  sub(program, 'daemon', 'Run the vsw daemon (the switch and its API) in the foreground; needs root', false)
    .option('--state-dir <dir>', 'state directory', nonEmpty('--state-dir'), DAEMON_DEFAULTS.stateDir)
    .option('--socket <path>', `API socket (default: the global --socket, $VSW_SOCKET or ${DEFAULT_SOCKET})`, nonEmpty('--socket'))
    .option('--workers <n>', 'dataplane worker threads, 1 to 16', integer(1, 16), DAEMON_DEFAULTS.workers)
    .option('--default-subnet <cidr>', 'subnet of the default network when it is first created (default: from the pool)')
    .option('--default-network <name>', 'name of the default network', nonEmpty('--default-network'), DAEMON_DEFAULTS.defaultNetwork)
    .option('--fdb-aging <seconds>', 'forget a MAC not seen for this long', integer(1), DAEMON_DEFAULTS.fdbAgingSeconds)
    .option('--fdb-max <n>', 'maximum MAC table entries', integer(1), DAEMON_DEFAULTS.fdbMax)
    .option('--fdb-max-per-port <n>', 'maximum MAC table entries learned on one port', integer(1), DAEMON_DEFAULTS.fdbMaxPerPort)
    .option('--metrics <addr>', 'serve Prometheus metrics at http://ADDR/metrics; ADDR is HOST:PORT or :PORT (all addresses), in the daemon\'s network namespace', metricsAddr)
    .action(async (o: {
      stateDir: string; socket?: string; workers: number; defaultSubnet?: string; defaultNetwork: string;
      fdbAging: number; fdbMax: number; fdbMaxPerPort: number; metrics?: string;
    }, cmd: Command) => {
      const opts: DaemonOptions = {
        stateDir: o.stateDir,
        socket: socketOf(cmd),
        workers: o.workers,
        defaultNetwork: o.defaultNetwork,
        fdbAgingSeconds: o.fdbAging,
        fdbMax: o.fdbMax,
        fdbMaxPerPort: o.fdbMaxPerPort,
      };
      if (o.defaultSubnet !== undefined) opts.defaultSubnet = o.defaultSubnet;
      if (o.metrics !== undefined) opts.metrics = o.metrics;
      await loadDaemon().runDaemon(opts);
      exitWhenDone = true; // the daemon has stopped: do not wait for stray handles
      done(0);
    });

  return program;
}

function* ancestors(cmd: Command): Generator<Command> {
  for (let c: Command | null = cmd; c; c = c.parent) yield c;
}

/** The socket: the nearest --socket (command, then its parents), $VSW_SOCKET, the default. */
function socketOf(cmd: Command): string {
  for (const c of ancestors(cmd)) {
    const s = (c.opts() as { socket?: string }).socket;
    if (s) return s;
  }
  return process.env.VSW_SOCKET || DEFAULT_SOCKET;
}

function enc(name: string): string {
  return encodeURIComponent(name);
}

/** Lazily load control/daemon (the dataplane is only needed by `vsw daemon`). */
function loadDaemon(): DaemonModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('./daemon') as DaemonModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && /[\\/]daemon['"]/.test(err.message)) {
      throw new VswError(`the daemon is not part of this build (${path.join(__dirname, 'daemon.js')} is missing)`);
    }
    throw e;
  }
}

/** Apply op to each name, print the name on success, `vsw: msg` on failure; 0 if all worked. */
async function eachName(io: CliIo, names: string[], op: (name: string) => Promise<void>): Promise<number> {
  let code = 0;
  for (const n of names) {
    try {
      await op(n);
      io.out(`${n}\n`);
    } catch (e) {
      if (names.length === 1 || !(e instanceof VswError) || e.code === 'E_DAEMON_UNREACHABLE') throw e;
      io.err(`vsw: ${e.message}\n`);
      code = 1;
    }
  }
  return code;
}

async function bestEffort(io: CliIo, what: string, op: () => Promise<void>): Promise<void> {
  try {
    await op();
  } catch (e) {
    if (e instanceof NotFoundError || (e instanceof VswError && e.code === 'E_NOT_FOUND')) return; // already gone
    io.err(`vsw: warning: ${what}: ${(e as Error).message}\n`);
  }
}

// ---------------------------------------------------------------------------------------
// Running a command in a container's network namespace (foreground run, exec)

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/**
 * Find an executable like execvp would: a name with '/' as is, else along $PATH (plus the
 * sbin directories when extra is set, since `ip` and `nsenter` often live there).
 * Returns the path, or the shell's code: 127 not found, 126 found but not executable.
 */
export function findExecutable(name: string, extraDirs: string[] = []): string | 126 | 127 {
  const isExec = (p: string): boolean | 'noexec' => {
    try {
      if (!fs.statSync(p).isFile()) return false;
    } catch {
      return false;
    }
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return 'noexec';
    }
  };
  if (name.includes('/')) {
    const r = isExec(name);
    return r === true ? name : r === 'noexec' ? 126 : 127;
  }
  let sawNoExec = false;
  const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').concat(extraDirs);
  for (const d of dirs) {
    const p = path.join(d === '' ? '.' : d, name);
    const r = isExec(p);
    if (r === true) return p;
    if (r === 'noexec') sawNoExec = true;
  }
  return sawNoExec ? 126 : 127;
}

/**
 * GET a stream from the daemon (events, capture) until it ends or Ctrl-C/SIGTERM. `open` is
 * given the response to consume and returns what to do at the end. An error answer becomes
 * the daemon's error; a daemon that cannot be reached says so.
 */
function streamGet(c: Client, path: string, open: (res: http.IncomingMessage) => () => Promise<void> | void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = http.get({ socketPath: c.socketPath, path }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (d: Buffer) => { body += d.toString(); });
        res.on('end', () => {
          let parsed: unknown;
          try { parsed = JSON.parse(body); } catch { parsed = undefined; }
          reject(errorFromJson(res.statusCode ?? 500, parsed));
        });
        return;
      }
      const finish = open(res);
      const stop = (): void => { req.destroy(); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        Promise.resolve(finish()).then(() => resolve(), reject);
      };
      for (const ev of ['end', 'aborted', 'close', 'error']) res.on(ev, end);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') return; // our own Ctrl-C
      reject(['ENOENT', 'ECONNREFUSED', 'EACCES'].includes(e.code ?? '') ? new DaemonUnreachableError(unreachableMessage(c.socketPath)) : e);
    });
  });
}

/** Whether /run/netns/NAME is a mount point (a usable namespace) in our mount namespace. */
function netnsMountVisible(name: string): boolean {
  try {
    const target = ` /run/netns/${name} `;
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.includes(target));
  } catch {
    return true; // cannot tell: let `ip netns exec` try
  }
}

/**
 * Run argv in the container's network namespace with inherited stdio; resolves with the
 * exit code (128+signal when killed; 127/126 when it cannot be started, like a shell).
 */
async function runInContainer(client: Client, io: CliIo, info: ContainerInfo, argv: string[]): Promise<number> {
  let file: string;
  let args: string[];
  if (info.netns !== '') {
    const ip = findExecutable('ip', SBIN);
    if (typeof ip === 'number') {
      io.err('vsw: cannot run `ip` (iproute2): not found\n');
      return 127;
    }
    file = ip;
    args = ['netns', 'exec', info.netns, ...argv];
    if (!netnsMountVisible(info.netns)) {
      // The daemon runs in another mount namespace whose namespace mounts do not reach ours
      // (e.g. it was started with `ip netns exec HOST` and its parent shell is gone): enter
      // its mount namespace first, where /run/netns/NAME is a real namespace.
      const daemon = await client.get<DaemonInfo>('/info');
      const nsenter = findExecutable('nsenter', SBIN);
      if (typeof nsenter === 'number') {
        io.err('vsw: cannot run `nsenter` (util-linux): not found\n');
        return 127;
      }
      file = nsenter;
      args = [`--mount=/proc/${daemon.pid}/ns/mnt`, '--', ip, ...args];
    }
  } else {
    // Host mode: the daemon's own network namespace.
    const daemon = await client.get<DaemonInfo>('/info');
    const nsenter = findExecutable('nsenter', SBIN);
    if (typeof nsenter === 'number') {
      io.err('vsw: cannot run `nsenter` (util-linux): not found\n');
      return 127;
    }
    file = nsenter;
    args = [`--net=${daemon.netnsPath}`, '--', ...argv];
  }
  // The namespace wrappers exec the command themselves: check it first, so that a missing
  // command gives the shell's 127 and a clear message rather than the wrapper's 255.
  const found = findExecutable(argv[0]);
  if (typeof found === 'number') {
    io.err(`vsw: ${argv[0]}: ${found === 127 ? 'command not found' : 'permission denied'}\n`);
    return found;
  }
  return spawnForeground(io, file, args);
}

function spawnForeground(io: CliIo, file: string, args: string[]): Promise<number> {
  return new Promise<number>((resolve) => {
    let settled = false;
    const child = spawn(file, args, { stdio: 'inherit' });
    // Forward signals to the command. A terminal's ^C / hangup already reach the whole
    // foreground process group (the command included): forward SIGINT/SIGHUP only when
    // not on a terminal, so the command does not get them twice. We keep a handler in all
    // cases so that vsw itself survives to report the exit code.
    const onSignal = (sig: NodeJS.Signals): void => {
      if (sig !== 'SIGTERM' && tty.isatty(0)) return;
      if (child.exitCode === null && child.signalCode === null) {
        try { child.kill(sig); } catch { /* already gone */ }
      }
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, onSignal);
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      for (const s of signals) process.off(s, onSignal);
      resolve(code);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      io.err(`vsw: cannot run ${file}: ${e.message}\n`);
      finish(e.code === 'ENOENT' ? 127 : e.code === 'EACCES' ? 126 : 1);
    });
    child.on('exit', (code, signal) => {
      if (code !== null) finish(code);
      else finish(128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
    });
  });
}

// ---------------------------------------------------------------------------------------
// Entry point

let exitWhenDone = false;

/** Run the CLI on process-style argv ([node, script, ...args]); resolves with the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => { code = c; });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // help (0) or usage (2)
    io.err(`vsw: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (require.main === module) {
  // `vsw ps | head -1`: a reader that goes away early is not an error of ours.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  main(process.argv).then((code) => {
    process.exitCode = code;
    if (exitWhenDone) process.exit(code);
  });
}
