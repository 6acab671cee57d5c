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
import { Argument, Command, CommanderError, InvalidArgumentError as OptionValueError, Option } from 'commander';
import * as http from 'http';
import { Client, DEFAULT_SOCKET, unreachableMessage } from './client';
import { readPcap } from './pcap';
import { formatEvent } from './events';
import { DaemonUnreachableError, errorFromJson, NotFoundError, VswError } from './errors';
import { parseMetricsAddr } from './metrics';
import { STAGE_CHOICES, stageIndex } from '../dataplane/stages/names';
import {
  conntrackTable, containersTable, fdbTable, formatJson, neighTable, networksTable, statsTable, trunksTable,
} from './format';
import { formatVlanSet, parseVlanSet } from './vlan';
import { formatIp, maskOf, parseIp } from './ipam';
import {
  ANY_IP, checkAlias, formatPortLine, type Link, parseLink, parsePublish, publishConflict,
} from './publish';
import type {
  ConntrackEntryInfo, ContainerCreate, ContainerInfo, DaemonInfo, DaemonOptions, DnsOrder, EndpointInfo,
  FdbEntryInfo, NeighEntryInfo, NetworkCreate, NetworkInfo, PortMapping, PortStatsInfo, TraceResult, TrunkCreate,
  TrunkInfo, VswEvent,
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
  conntrackMax: 65536,
} as const;

/** Largest --conntrack-max: the table lives in shared memory sized from it. */
const CONNTRACK_MAX_LIMIT = 16 * 1024 * 1024;

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

/** --filter EXPR: checked here (a usage error names the column); the daemon checks again. */
function filterExpr(v: string): string {
  return checked((x) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('../dataplane/filter') as typeof import('../dataplane/filter')).compileFilter(x);
    return x;
  }, (m) => `${m}.`)(v);
}

function stageName(v: string): string {
  if (stageIndex(v) < 0) throw new OptionValueError(`Not a stage: one of ${STAGE_CHOICES.join(', ')}.`);
  return v;
}

/** --metrics ADDR: HOST:PORT or :PORT (control/metrics.ts parses it; prom-client is not loaded). */
function metricsAddr(v: string): string {
  return checked((x) => { parseMetricsAddr(x); return x; }, (m) => `${m}.`)(v);
}

/**
 * An option parser from a checker that throws: its message becomes the usage error. By
 * default (a VswError from ipam/publish) without the "invalid X 'VALUE': " that commander
 * already says, capitalised; `say` words it otherwise.
 */
function checked<T>(check: (v: string) => T, say: (message: string) => string = usageSentence): (v: string) => T {
  return (v: string): T => {
    try {
      return check(v);
    } catch (e) {
      throw new OptionValueError(say((e as Error).message));
    }
  };
}

function usageSentence(message: string): string {
  const m = message.replace(/^invalid [^']*'[^']*': /, '');
  return `${m.charAt(0).toUpperCase()}${m.slice(1)}${m.endsWith('.') ? '' : '.'}`;
}

/** A repeatable option: every value checked, collected in order. */
function repeatable<T>(check: (v: string) => T): (v: string, previous?: T[]) => T[] {
  const one = checked(check);
  return (v: string, previous?: T[]): T[] => [...(previous ?? []), one(v)];
}

/** `true` or `false` (any case), for --icc. */
function bool(v: string): boolean {
  const s = v.trim().toLowerCase();
  if (s === 'true') return true;
  if (s === 'false') return false;
  throw new OptionValueError('Expected true or false.');
}

const DNS_ORDERS: readonly DnsOrder[] = ['rotate', 'random', 'fixed'];

/** --dns-order: rotate, random or fixed (as commander's choices say it, without the help clutter). */
function dnsOrder(v: string): DnsOrder {
  if (!DNS_ORDERS.includes(v as DnsOrder)) throw new OptionValueError(`Allowed choices are ${DNS_ORDERS.join(', ')}.`);
  return v as DnsOrder;
}

/** A strict IPv4 address (no prefix). */
function ipv4(what: string): (v: string) => string {
  return (v: string): string => {
    try {
      return formatIp(parseIp(v));
    } catch {
      throw new OptionValueError(`Expected ${what}, an IPv4 address like 198.51.100.1.`);
    }
  };
}

/** What the kernel takes as an interface name (dev_valid_name): 1 to 15 bytes, no '/', ':' or space. */
function ifName(v: string): string {
  if (v === '' || v === '.' || v === '..' || Buffer.byteLength(v) > 15 || /[/:\s]/.test(v)) {
    throw new OptionValueError("Expected an interface name: 1 to 15 characters, without '/', ':' or spaces.");
  }
  return v;
}

const UPLINK_IP_FORM = 'an IPv4 address with its prefix length, e.g. 198.51.100.2/24';

/** --uplink-ip: the switch's own address on the uplink, with the prefix (host bits set). */
export function parseUplinkIp(v: string): { ip: number; prefixLen: number; text: string } {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(v);
  let ip: number;
  try {
    if (!m) throw new Error();
    ip = parseIp(m[1]);
  } catch {
    throw new OptionValueError(`Expected ${UPLINK_IP_FORM}.`);
  }
  const prefixLen = Number(m[2]);
  if (prefixLen < 1 || prefixLen > 32) throw new OptionValueError(`The prefix length must be from 1 to 32 (expected ${UPLINK_IP_FORM}).`);
  const first = ip >>> 24;
  if (first === 0 || first === 127 || first >= 224) {
    throw new OptionValueError(`${m[1]} is not a unicast address (expected ${UPLINK_IP_FORM}).`);
  }
  if (prefixLen <= 30) {
    const base = (ip & maskOf(prefixLen)) >>> 0;
    const last = (base + 2 ** (32 - prefixLen) - 1) >>> 0;
    const subnet = `${formatIp(base)}/${prefixLen}`;
    if (ip === base) throw new OptionValueError(`${m[1]} is the network address of ${subnet}: give the switch's own address, e.g. ${formatIp(base + 2)}/${prefixLen}.`);
    if (ip === last) throw new OptionValueError(`${m[1]} is the broadcast address of ${subnet}.`);
  }
  return { ip, prefixLen, text: `${formatIp(ip)}/${prefixLen}` };
}

/**
 * --uplink, --uplink-ip and --uplink-gateway go together, and the gateway is a usable
 * address of the uplink subnet other than the switch's own. Returns what is wrong, if anything.
 */
export function uplinkProblem(o: { uplink?: string; uplinkIp?: string; uplinkGateway?: string }): string | undefined {
  const given = [o.uplink, o.uplinkIp, o.uplinkGateway].filter((x) => x !== undefined).length;
  if (given === 0) return undefined;
  if (o.uplink === undefined) return '--uplink-ip and --uplink-gateway need --uplink DEV (all three go together)';
  if (given < 3) {
    const missing = [o.uplinkIp === undefined ? '--uplink-ip CIDR' : '', o.uplinkGateway === undefined ? '--uplink-gateway IP' : '']
      .filter((x) => x).join(' and ');
    return `--uplink needs ${missing} (all three go together)`;
  }
  const own = parseUplinkIp(o.uplinkIp!);
  const gw = parseIp(o.uplinkGateway!);
  const mask = maskOf(own.prefixLen);
  const base = (own.ip & mask) >>> 0;
  const subnet = `${formatIp(base)}/${own.prefixLen}`;
  if (((gw & mask) >>> 0) !== base) {
    return `--uplink-gateway ${o.uplinkGateway} is not inside the uplink subnet ${subnet} (of --uplink-ip ${o.uplinkIp})`;
  }
  if (gw === own.ip) return `--uplink-gateway ${o.uplinkGateway} is the switch's own uplink address (--uplink-ip): give the next hop's`;
  if (own.prefixLen <= 30 && (gw === base || gw === ((base + 2 ** (32 - own.prefixLen) - 1) >>> 0))) {
    return `--uplink-gateway ${o.uplinkGateway} is the ${gw === base ? 'network' : 'broadcast'} address of ${subnet}`;
  }
  return undefined;
}

/** --dns IP[:PORT]: an IPv4 resolver, port 53 unless given. Returns the text as given. */
export function parseDnsServer(v: string): string {
  const m = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(v);
  let ok = m !== null;
  if (m) {
    try { parseIp(m[1]); } catch { ok = false; }
    if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) ok = false;
  }
  if (!ok) {
    throw new OptionValueError('Expected IP[:PORT]: an IPv4 address and optionally a port from 1 to 65535, e.g. 1.1.1.1 or 10.0.0.53:5353.');
  }
  return v;
}

/** `vsw port NAME [PORT[/PROTO]]`'s filter: PORT alone means PORT/tcp, as in Docker. */
function portFilter(v: string): { port: number; proto: 'tcp' | 'udp' } {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(v);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) {
    throw new OptionValueError('Expected PORT[/tcp|udp], e.g. 80 or 53/udp.');
  }
  return { port: Number(m[1]), proto: (m[2]?.toLowerCase() ?? 'tcp') as 'tcp' | 'udp' };
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
  /**
   * A read-only view of the daemon, as a table or JSON: `vsw [PARENT] NAME [NETWORK]
   * [--format json]`, from GET `route` (`?net=NETWORK` when the view takes one).
   */
  const tableCommand = <T>(parent: Command, name: string, description: string, route: string,
    table: (rows: T[]) => string, netHelp?: string): Command => {
    const c = sub(parent, name, description);
    if (netHelp !== undefined) c.argument('[network]', netHelp);
    return c.addOption(formatOption()).action(async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const o = args[args.length - 2] as { format: Format };
      const net = netHelp !== undefined ? (args[0] as string | undefined) : undefined;
      const rows = await client(cmd).get<T[]>(net !== undefined ? `${route}?net=${enc(net)}` : route);
      print(o.format, rows, () => table(rows));
    });
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
    .addOption(new Option('--internal', 'no route out and no published ports (containers reach each other, the gateway and the host)'))
    .addOption(new Option('--icc <true|false>', 'whether containers of the network may talk to each other (default true; false: only to the gateway and the host)').argParser(bool))
    .addOption(new Option('--dns-order <order>', 'order of the addresses in a DNS answer for a name with several: rotate (default), random or fixed').argParser(dnsOrder))
    .addOption(new Option('--vlan <id>', '802.1Q VLAN id, 1 to 4094: container ports are access ports of that VLAN, trunks carry it tagged (default: untagged)').argParser(integer(1, 4094)))
    .action(async (name: string, o: {
      subnet?: string; gateway?: string; ipRange?: string; mtu?: number; internal?: boolean; icc?: boolean; dnsOrder?: DnsOrder;
      vlan?: number;
    }, cmd: Command) => {
      const spec: NetworkCreate = { name };
      if (o.subnet !== undefined) spec.subnet = o.subnet;
      if (o.gateway !== undefined) spec.gateway = o.gateway;
      if (o.ipRange !== undefined) spec.ipRange = o.ipRange;
      if (o.mtu !== undefined) spec.mtu = o.mtu;
      if (o.internal) spec.internal = true;
      if (o.icc !== undefined) spec.icc = o.icc;
      if (o.dnsOrder !== undefined) spec.dnsOrder = o.dnsOrder;
      if (o.vlan !== undefined) spec.vlan = o.vlan;
      const info = await client(cmd).post<NetworkInfo>('/networks', spec);
      io.out(`${info.name}\n`);
    });

  tableCommand<NetworkInfo>(network, 'ls', 'List networks (NAME ID SUBNET GATEWAY MTU ENDPOINTS DEFAULT FLAGS: vlan=ID, internal, no-icc, dns=ORDER)',
    '/networks', networksTable).alias('list');

  sub(network, 'inspect', 'Show a network as JSON: subnet, gateway (IP, MAC), settings, ports, endpoints with IP, MAC and aliases')
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
    .option('--alias <name>', 'an extra DNS name of the container in this network (repeatable)', repeatable(checkAlias))
    .action(async (net: string, container: string, o: { ip?: string; alias?: string[] }, cmd: Command) => {
      const body: { container: string; ip?: string; aliases?: string[] } = { container };
      if (o.ip !== undefined) body.ip = o.ip;
      if (o.alias !== undefined) body.aliases = o.alias;
      await client(cmd).post<EndpointInfo>(`/networks/${enc(net)}/connect`, body);
    });

  sub(network, 'disconnect', 'Detach a container from a network')
    .argument('<network>', 'network name')
    .argument('<container>', 'container name')
    .action(async (net: string, container: string, _o: unknown, cmd: Command) => {
      await client(cmd).post<void>(`/networks/${enc(net)}/disconnect`, { container });
    });

  // --- 802.1Q trunks -------------------------------------------------------------------
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

  // --- containers ---------------------------------------------------------------------
  sub(program, 'run', 'Create a container (a network namespace) and optionally run a command in it')
    .usage('[-d] [--rm] --name NAME [--network NET|none|host|container:OTHER] [--ip IP]\n' +
      '               [-p [IP:]HOSTPORT:PORT[/tcp|udp]]... [--alias NAME]... [--link NAME[:ALIAS]]...\n' +
      '               [-- CMD [ARGS...]]')
    .argument('[cmd...]', 'command to run in the container (after --)')
    .option('-d, --detach', 'let the daemon run CMD in the background (log in STATE/containers/NAME.log); print the name')
    .option('--rm', 'remove the container when CMD exits')
    .requiredOption('--name <name>', 'container name (also the name of its network namespace)', nonEmpty('--name'))
    .option('--network <net>', 'a network name, none, host, or container:OTHER (default: the default network)')
    .option('--ip <ip>', 'address in the network (default: the next free one)')
    .option('-p, --publish <mapping>', 'publish a container port: [IP:]HOSTPORT:PORT[/tcp|udp] (repeatable; IP default 0.0.0.0 = every switch address, protocol default tcp)', repeatable(parsePublish))
    .option('--alias <name>', 'an extra DNS name of the container in its network (repeatable)', repeatable(checkAlias))
    .option('--link <name[:alias]>', "add container NAME's address to this container's /etc/hosts as NAME (and ALIAS) (repeatable)", repeatable(parseLink))
    .passThroughOptions()
    .addHelpText('after', `
Without -d, CMD runs in the foreground with this terminal's stdio; vsw exits with its code
(128+N when killed by signal N). Without CMD, the container is only created.
-p [IP:]HOSTPORT:PORT[/tcp|udp] (e.g. 8080:80, 10.89.0.1:5353:53/udp): connections to a
switch address (the uplink's, a gateway's) on HOSTPORT go to the container's PORT; not on
an --internal network. -p, --alias and --link need a network (not none, host, container:).`)
    .action(async (argv: string[], o: {
      detach?: boolean; rm?: boolean; name: string; network?: string; ip?: string;
      publish?: PortMapping[]; alias?: string[]; link?: Link[];
    }, cmd: Command) => {
      const usage = (m: string): never => cmd.error(`vsw: ${m}`, { exitCode: 2, code: 'vsw.usage' }) as never;
      const c = client(cmd);
      const spec: ContainerCreate = { name: o.name, detach: !!o.detach, rm: !!o.rm };
      if (o.network !== undefined) spec.network = o.network;
      if (o.ip !== undefined) spec.ip = o.ip;
      const mode = o.network === 'none' || o.network === 'host' ? o.network
        : o.network?.startsWith('container:') ? 'container:' : undefined;
      if (mode !== undefined) {
        const used = [o.publish && '-p/--publish', o.alias && '--alias', o.link && '--link'].filter((x) => x);
        if (used.length > 0) usage(`${used.join(', ')} need${used.length === 1 ? 's' : ''} a network: not with --network ${o.network}`);
      }
      if (o.publish !== undefined) {
        const clash = publishConflict(o.publish);
        if (clash) usage(clash);
        spec.publish = o.publish;
      }
      if (o.alias !== undefined) spec.aliases = o.alias;
      if (o.link !== undefined) spec.links = o.link;
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

  tableCommand<ContainerInfo>(program, 'ps', 'List containers (NAME ID NETWORK IP MAC STATUS PORTS COMMAND)', '/containers', containersTable);

  sub(program, 'port', 'List the published ports of a container, as PORT/PROTO -> ADDRESS:HOSTPORT')
    .argument('<name>', 'container name')
    .argument('[port]', 'only this container port: PORT[/tcp|udp] (PORT alone: tcp)', portFilter)
    .addHelpText('after', `
A port published on every address (0.0.0.0) shows the uplink's address when the daemon has
an uplink (--uplink), else 0.0.0.0.`)
    .action(async (name: string, filter: { port: number; proto: string } | undefined, _o: unknown, cmd: Command) => {
      const c = client(cmd);
      const info = await c.get<ContainerInfo>(`/containers/${enc(name)}`);
      let ports = info.ports ?? [];
      if (filter) {
        ports = ports.filter((m) => m.containerPort === filter.port && m.proto === filter.proto);
        if (ports.length === 0) {
          throw new NotFoundError(`no public port '${filter.port}/${filter.proto}' published for ${info.name}`);
        }
      }
      let uplinkIp: string | undefined;
      if (ports.some((m) => m.hostIp === ANY_IP)) {
        const uplink = (await c.get<DaemonInfo>('/info')).uplink;
        if (uplink) uplinkIp = uplink.ip.split('/')[0];
      }
      io.out(ports.map((m) => `${formatPortLine(m, uplinkIp)}\n`).join(''));
    });

  sub(program, 'rm', 'Remove containers; prints each name')
    .argument('<name...>', 'container names')
    .option('-f, --force', 'also stop a running (detached) command')
    .action(async (names: string[], o: { force?: boolean }, cmd: Command) => {
      const q = o.force ? '?force=1' : '';
      done(await eachName(io, names, (n) => client(cmd).del(`/containers/${enc(n)}${q}`)));
    });

  // --- dataplane views ----------------------------------------------------------------
  tableCommand<FdbEntryInfo>(program, 'fdb', 'Show the MAC tables (NETWORK MAC VLAN PORT CONTAINER AGE in seconds)',
    '/fdb', fdbTable, 'only this network');
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
      const usage = (m: string): never => cmd.error(`vsw: ${m}`, { exitCode: 2, code: 'vsw.usage' }) as never;
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
          let pending = '';
          res.on('data', (d: Buffer) => {
            pending += d.toString();
            let nl: number;
            while ((nl = pending.indexOf('\n')) >= 0) {
              const line = pending.slice(0, nl);
              pending = pending.slice(nl + 1);
              if (line === '') continue;
              if (o.format === 'json') { io.out(`${line}\n`); continue; }
              const r = JSON.parse(line) as TraceResult;
              io.out(`${r.time ?? ''} port ${r.port ?? '?'} worker ${r.worker ?? '?'}\n${format(r)}\n`);
            }
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
    .option('--stage <stage>', 'the frames received on the port as they leave this pipeline stage (parse, ingress, learn, gateway, forward; pre-nat = learn, post-nat = gateway, pre-vlan = parse, post-vlan = ingress) instead of on the wire', stageName)
    .option('--filter <expr>', "only frames that match, e.g. 'icmp or arp' (see README: filters)", filterExpr)
    .action(async (o: { port: string; write: string; count?: number; stage?: string; filter?: string }, cmd: Command) => {
      const q = `/capture?port=${enc(o.port)}${o.count ? `&count=${o.count}` : ''}${o.stage ? `&stage=${enc(o.stage)}` : ''}${o.filter ? `&filter=${enc(o.filter)}` : ''}`;
      const toStdout = o.write === '-';
      await streamGet(client(cmd), q, (res) => {
        const port = res.headers['x-vsw-port'] ?? o.port;
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
    .option('--uplink <dev>', "the outside port: an interface of the daemon's namespace, for masquerading and published ports (needs --uplink-ip and --uplink-gateway)", ifName)
    .option('--uplink-ip <cidr>', "the switch's own address on the uplink, with its prefix, e.g. 198.51.100.2/24", (v: string) => parseUplinkIp(v).text)
    .option('--uplink-gateway <ip>', 'next hop to the outside, inside the uplink subnet', ipv4('the uplink gateway'))
    .option('--uplink-vlan <id>', 'the uplink is an 802.1Q trunk of one VLAN: its frames are tagged with ID both ways (1 to 4094)', integer(1, 4094))
    .option('--dns <ip[:port]>', "upstream resolver for the embedded DNS (repeatable; default: the nameservers of the daemon's /etc/resolv.conf)", repeatable(parseDnsServer))
    .option('--conntrack-max <n>', `maximum tracked connections (NAT), 1 to ${CONNTRACK_MAX_LIMIT}`, integer(1, CONNTRACK_MAX_LIMIT), DAEMON_DEFAULTS.conntrackMax)
    .action(async (o: {
      stateDir: string; socket?: string; workers: number; defaultSubnet?: string; defaultNetwork: string;
      fdbAging: number; fdbMax: number; fdbMaxPerPort: number; metrics?: string;
      uplink?: string; uplinkIp?: string; uplinkGateway?: string; uplinkVlan?: number; dns?: string[]; conntrackMax: number;
    }, cmd: Command) => {
      const problem = uplinkProblem(o) ?? (o.uplinkVlan !== undefined && o.uplink === undefined ? '--uplink-vlan needs --uplink DEV' : undefined);
      if (problem) cmd.error(`vsw: ${problem}`, { exitCode: 2, code: 'vsw.usage' });
      const opts: DaemonOptions = {
        stateDir: o.stateDir,
        socket: socketOf(cmd),
        workers: o.workers,
        defaultNetwork: o.defaultNetwork,
        fdbAgingSeconds: o.fdbAging,
        fdbMax: o.fdbMax,
        fdbMaxPerPort: o.fdbMaxPerPort,
        conntrackMax: o.conntrackMax,
      };
      if (o.defaultSubnet !== undefined) opts.defaultSubnet = o.defaultSubnet;
      if (o.metrics !== undefined) opts.metrics = o.metrics;
      if (o.uplink !== undefined) {
        opts.uplink = o.uplink;
        opts.uplinkIp = o.uplinkIp;
        opts.uplinkGateway = o.uplinkGateway;
        if (o.uplinkVlan !== undefined) opts.uplinkVlan = o.uplinkVlan;
      }
      if (o.dns !== undefined) opts.dns = o.dns;
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

/**
 * dataplane/trace's formatTrace, loaded when `vsw trace` prints: that module brings the
 * whole pipeline with it, which no other command needs at start-up.
 */
function loadTraceFormatter(): (r: TraceResult) => string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../dataplane/trace') as typeof import('../dataplane/trace')).formatTrace;
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
/** The daemon's count of records lost on the way (a trailer of capture/trace streams). */
function lostText(res: http.IncomingMessage): string {
  const n = Number(res.trailers?.['x-vsw-lost'] ?? 0);
  return n > 0 ? `; ${n} lost: the capture could not keep up (filter, or write to a faster sink)` : '';
}

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
