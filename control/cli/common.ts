// What every command group shares: where output goes, the subcommand factory (usage hint,
// a local --socket), the daemon client, table-or-JSON printing, and the helpers for
// commands over several names.

import { Command, Option } from 'commander';
import { Client, DEFAULT_SOCKET } from '../client';
import { NotFoundError, VswError } from '../errors';
import { formatJson } from '../format';
import { formatOption, type Format } from './options';

/** Where output goes; the real process streams unless a caller (a test) substitutes them. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (t) => { process.stdout.write(t); },
  err: (t) => { process.stderr.write(t); },
};

/** The program being built, as each command group sees it. */
export interface Cli {
  io: CliIo;
  /** Receives the exit code an action chooses (foreground run/exec, several names). */
  done(code: number): void;
  /** A subcommand with the shared settings: its own usage hint and a local --socket. */
  sub(parent: Command, spec: string, description: string, socketOption?: boolean): Command;
  client(cmd: Command): Client;
  print(format: Format, data: unknown, table: () => string): void;
  /**
   * A read-only view of the daemon, as a table or JSON: `vsw [PARENT] NAME [NETWORK]
   * [--format json]`, from GET `route` (`?net=NETWORK` when the view takes one).
   */
  tableCommand<T>(parent: Command, name: string, description: string, route: string,
    table: (rows: T[]) => string, netHelp?: string): Command;
}

export function makeCli(io: CliIo, done: (code: number) => void): Cli {
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
  return { io, done, sub, client, print, tableCommand };
}

/** A usage error found by an action (exit 2), worded like commander's. */
export function usageError(cmd: Command, message: string): never {
  return cmd.error(`vsw: ${message}`, { exitCode: 2, code: 'vsw.usage' }) as never;
}

function* ancestors(cmd: Command): Generator<Command> {
  for (let c: Command | null = cmd; c; c = c.parent) yield c;
}

/** The socket: the nearest --socket (command, then its parents), $VSW_SOCKET, the default. */
export function socketOf(cmd: Command): string {
  for (const c of ancestors(cmd)) {
    const s = (c.opts() as { socket?: string }).socket;
    if (s) return s;
  }
  return process.env.VSW_SOCKET || DEFAULT_SOCKET;
}

export function enc(name: string): string {
  return encodeURIComponent(name);
}

/** Apply op to each name, print the name on success, `vsw: msg` on failure; 0 if all worked. */
export async function eachName(io: CliIo, names: string[], op: (name: string) => Promise<void>): Promise<number> {
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

export async function bestEffort(io: CliIo, what: string, op: () => Promise<void>): Promise<void> {
  try {
    await op();
  } catch (e) {
    if (e instanceof NotFoundError || (e instanceof VswError && e.code === 'E_NOT_FOUND')) return; // already gone
    io.err(`vsw: warning: ${what}: ${(e as Error).message}\n`);
  }
}
