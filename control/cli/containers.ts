// `vsw run|exec|ps|port|rm`: containers. A foreground `run` and `exec` run the command
// here, in the container's namespace (exec.ts), and report its exit to the daemon.

import { Command } from 'commander';
import { NotFoundError } from '../errors';
import { containersTable } from '../format';
import { ANY_IP, checkAlias, formatPortLine, type Link, parseLink, parsePublish, publishConflict } from '../publish';
import type { ContainerCreate, ContainerInfo, DaemonInfo, PortMapping } from '../types';
import { bestEffort, eachName, enc, usageError, type Cli } from './common';
import { findExecutable, runInContainer } from './exec';
import { nonEmpty, portFilter, repeatable } from './options';

export function addContainerCommands(program: Command, { io, done, sub, client, tableCommand }: Cli): void {
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
      const usage = (m: string): never => usageError(cmd, m);
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
        usageError(cmd, 'exec needs a command: vsw exec NAME -- CMD [ARGS...]');
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
}
