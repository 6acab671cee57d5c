// The `vsw` program (commander): global settings and help, then each command group in the
// order `vsw --help` lists them. Exit codes and the entry point: control/cli.ts.

import { Command } from 'commander';
import { DEFAULT_SOCKET } from '../client';
import { makeCli, processIo, type CliIo } from './common';
import { addNetworkCommands } from './networks';
import { addTrunkCommands } from './trunks';
import { addContainerCommands } from './containers';
import { addObserveCommands } from './observe';
import { addDaemonCommand } from './daemon';
import { addImpairCommands } from './impair';
import { addCniCommands } from './cni';
import { addExperimentCommands } from './experiments';

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

  const cli = makeCli(io, done);
  addNetworkCommands(program, cli);
  addTrunkCommands(program, cli);
  addContainerCommands(program, cli);
  addObserveCommands(program, cli);
  addImpairCommands(program, cli);
  addExperimentCommands(program, cli);
  addDaemonCommand(program, cli);
  addCniCommands(program, cli);
  return program;
}
