#!/usr/bin/env node
// The `vsw` command. Every command but `daemon` is a thin client of the daemon's API
// (control/client.ts); `run`/`exec` in the foreground also run the user's command in the
// container's network namespace themselves (see docs/DESIGN.md, "Control plane").
//
// Exit codes: 0 success; 1 the daemon refused or failed (it prints `vsw: <message>`), or the
// daemon cannot be reached; 2 usage errors (bad/missing arguments or options, detected here);
// foreground `run`/`exec`: the command's own code (128+N when killed by signal N, 127 when it
// cannot be found, 126 when it cannot be executed).

import { CommanderError } from 'commander';
import { buildProgram } from './cli/index';
import { processIo, type CliIo } from './cli/common';
import { daemonRan } from './cli/daemon';

export { buildProgram } from './cli/index';
export type { CliIo } from './cli/common';
export { findExecutable } from './cli/exec';
export { parseDnsServer, parseUplinkIp, uplinkProblem } from './cli/options';

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
    if (daemonRan()) process.exit(code);
  });
}
