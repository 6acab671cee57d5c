#!/usr/bin/env node
// vsw-cni: vsw as a CNI plugin (README "CNI"). A runtime runs it with CNI_COMMAND and the
// other CNI_* variables set and the network configuration on stdin; it prints the result
// (or the spec's error JSON) on stdout. The work is in commands.ts; this is the process.
// `vsw cni install DIR` puts a launcher for it into a CNI plugin directory as `vsw`.

import { runCni } from './commands';
import { SUPPORTED_VERSIONS } from './spec';

export const USAGE = `Usage: vsw-cni (run by a container runtime, not by hand)

vsw as a CNI plugin: a conflist entry {"type": "vsw", "network": "NAME", ...} attaches the
container to the vsw network NAME through the vsw daemon. The runtime sets CNI_COMMAND
(ADD, DEL, CHECK or VERSION), CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH
and passes the network configuration on stdin; the result or the error is JSON on stdout.

Install it into a CNI plugin directory with: vsw cni install DIR
Configuration keys: network (required), subnet, gateway, socket, mtu, defaultRoute, ipam;
capabilities portMappings and aliases. CNI versions: ${SUPPORTED_VERSIONS.join(', ')}.
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<number> {
  const a = process.argv.slice(2);
  if (a.includes('--help') || a.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!process.env.CNI_COMMAND) process.stderr.write(USAGE);
  // VERSION may come with nothing on stdin; a terminal means a person ran it: do not wait.
  const stdin = process.env.CNI_COMMAND && !process.stdin.isTTY ? await readStdin() : '';
  const out = await runCni(process.env, stdin);
  process.stdout.write(out.stdout);
  return out.code;
}

if (require.main === module) {
  main().then((code) => { process.exitCode = code; });
}
