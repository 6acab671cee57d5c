// `vsw daemon`: its options, checked here (usage errors, exit 2), then control/daemon.ts,
// loaded only now (the dataplane is only needed by the daemon).

import * as path from 'path';
import { Command } from 'commander';
import { DEFAULT_SOCKET } from '../client';
import { VswError } from '../errors';
import type { DaemonOptions } from '../types';
import { MAX_BUSY_POLL_US } from '../../workers/shared';
import { RING_FRAME_SIZE, RING_FRAMES, RING_FRAMES_MAX, RING_FRAMES_MIN } from '../../workers/io';
import { isValidName } from '../ipam';
import { usageError, socketOf, type Cli } from './common';
import { ifName, integer, ipv4, metricsAddr, nonEmpty, parseDnsServer, parseUplinkIp, repeatable, uplinkProblem } from './options';

/** What `require('../daemon')` must provide (control/daemon.ts, loaded only by `vsw daemon`). */
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

let daemonStopped = false;

/** True once `vsw daemon` has run and stopped: the process exits without waiting for handles. */
export function daemonRan(): boolean {
  return daemonStopped;
}

export function addDaemonCommand(program: Command, { sub, done }: Cli): void {
  sub(program, 'daemon', 'Run the vsw daemon (the switch and its API) in the foreground; needs root', false)
    .option('--state-dir <dir>', 'state directory', nonEmpty('--state-dir'), DAEMON_DEFAULTS.stateDir)
    .option('--socket <path>', `API socket (default: the global --socket, $VSW_SOCKET or ${DEFAULT_SOCKET})`, nonEmpty('--socket'))
    .option('--workers <n>', 'dataplane worker threads, 1 to 16', integer(1, 16), DAEMON_DEFAULTS.workers)
    .option('--busy-poll <usec>', `once frames come closer together than USEC microseconds, a worker polls without sleeping until USEC after the last (0 to ${MAX_BUSY_POLL_US}; 0, the default: off): lower latency, at up to one core per busy worker while traffic flows; a lone frame starts no spin (docs/PERF.md "Latency")`, integer(0, MAX_BUSY_POLL_US), 0)
    .option('--rx-ring <frames>', `frames in each container port's receive ring, ${RING_FRAMES_MIN} to ${RING_FRAMES_MAX} (default ${RING_FRAMES}: ${RING_FRAMES * RING_FRAME_SIZE >> 20} MiB of kernel memory a port); more rides out longer bursts`, integer(RING_FRAMES_MIN, RING_FRAMES_MAX))
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
    .option('--docker-plugin [name]', 'also be Docker\'s network and IPAM plugin NAME (default vsw): `docker network create -d NAME` (README "Docker")')
    .option('--docker-plugin-dir <dir>', 'where the plugin socket NAME.sock goes (default /run/docker/plugins, where dockerd looks)', nonEmpty('--docker-plugin-dir'))
    .option('--docker-host <url>', 'dockerd\'s API socket (unix:///run/docker.sock), to show Docker\'s network and container names (without it: docker-ID)', nonEmpty('--docker-host'))
    .action(async (o: {
      stateDir: string; socket?: string; workers: number; busyPoll: number; rxRing?: number; defaultSubnet?: string; defaultNetwork: string;
      fdbAging: number; fdbMax: number; fdbMaxPerPort: number; metrics?: string;
      uplink?: string; uplinkIp?: string; uplinkGateway?: string; uplinkVlan?: number; dns?: string[]; conntrackMax: number;
      dockerPlugin?: string | true; dockerPluginDir?: string; dockerHost?: string;
    }, cmd: Command) => {
      if (o.dockerPlugin === undefined && (o.dockerPluginDir !== undefined || o.dockerHost !== undefined)) {
        usageError(cmd, `${o.dockerHost !== undefined ? '--docker-host' : '--docker-plugin-dir'} needs --docker-plugin`);
      }
      if (typeof o.dockerPlugin === 'string' && !isValidName(o.dockerPlugin)) {
        usageError(cmd, `--docker-plugin ${o.dockerPlugin}: a plugin name is 1 to 63 characters from [A-Za-z0-9_.-]`);
      }
      if (o.dockerHost !== undefined && !/^(unix:\/\/)?\//.test(o.dockerHost)) usageError(cmd, `--docker-host ${o.dockerHost}: expected unix:///PATH`);
      const problem = uplinkProblem(o) ?? (o.uplinkVlan !== undefined && o.uplink === undefined ? '--uplink-vlan needs --uplink DEV' : undefined);
      if (problem) usageError(cmd, problem);
      const opts: DaemonOptions = {
        stateDir: o.stateDir,
        socket: socketOf(cmd),
        workers: o.workers,
        busyPollUs: o.busyPoll,
        ...(o.rxRing !== undefined ? { rxRingFrames: o.rxRing } : {}),
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
      if (o.dockerPlugin !== undefined) {
        opts.dockerPlugin = o.dockerPlugin === true ? 'vsw' : o.dockerPlugin;
        if (o.dockerPluginDir !== undefined) opts.dockerPluginDir = path.resolve(o.dockerPluginDir);
        if (o.dockerHost !== undefined) opts.dockerHost = o.dockerHost;
      }
      await loadDaemon().runDaemon(opts);
      daemonStopped = true; // do not wait for stray handles
      done(0);
    });
}

/** Lazily load control/daemon (the dataplane is only needed by `vsw daemon`). */
function loadDaemon(): DaemonModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../daemon') as DaemonModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && /[\\/]daemon['"]/.test(err.message)) {
      throw new VswError(`the daemon is not part of this build (${path.join(__dirname, '..', 'daemon.js')} is missing)`);
    }
    throw e;
  }
}
