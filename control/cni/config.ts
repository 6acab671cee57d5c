// One CNI invocation read and checked: the environment (CNI_COMMAND, CNI_CONTAINERID,
// CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH) and the network configuration on stdin, with
// vsw's keys. Every problem is a CniError with the spec's code: 6 the stdin is not JSON,
// 1 a cniVersion we do not speak, 4 a missing or malformed variable (CNI_ARGS included),
// 7 a bad configuration value. Pure: no I/O.
//
// vsw's configuration keys (README "CNI"):
//   network   the vsw network (required); created when absent, with `subnet`/`gateway`/`mtu`
//   subnet, gateway   only used to create the network; if the network exists they must match it
//   socket    the daemon's API socket (default: $VSW_SOCKET, else the CLI's default)
//   mtu       the container interface's MTU (default: the network's)
//   defaultRoute   false: no default route via the gateway in the container (default true)
//   ipam      absent: vsw's own IPAM; present: the IPAM plugin CNI_PATH/<ipam.type> is run
// Capabilities (runtimeConfig): portMappings -> published ports, aliases -> DNS names.
// Unknown top-level keys are ignored, as every reference plugin does: runtimes and
// meta-plugins (multus) add their own.

import { DEFAULT_SOCKET } from '../client';
import { isValidName, parseCidr, parseIp, formatIp, MIN_MTU, MAX_MTU } from '../ipam';
import { checkAlias, checkPublishJson } from '../publish';
import type { PortMapping } from '../types';
import { CNI_ERR, CniError, isSupportedVersion, parseResult, SUPPORTED_VERSIONS, type CniResult, type CniVersion } from './spec';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION'];

/** The CNI_ARGS keys vsw reads; the others are refused unless IgnoreUnknown is set. */
export interface CniArgs {
  ip?: string;
  mac?: string;
  podName?: string;
  podNamespace?: string;
}
const KNOWN_ARGS = ['IgnoreUnknown', 'IP', 'MAC', 'K8S_POD_NAME', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'];

export interface IpamConfig {
  type: string;
}

export interface VswCniConfig {
  cniVersion: CniVersion;
  /** The CNI network's name (the conflist's). */
  name: string;
  network: string;
  subnet?: string;
  gateway?: string;
  socket: string;
  mtu?: number;
  defaultRoute: boolean;
  ipam?: IpamConfig;
  publish: PortMapping[];
  aliases: string[];
  prevResult?: CniResult;
}

export interface CniRequest {
  command: CniCommand;
  containerId: string;
  /** '' when absent (DEL may come without it). */
  netns: string;
  ifname: string;
  args: CniArgs;
  /** CNI_PATH split on ':' (empty entries dropped). */
  path: string[];
  config: VswCniConfig;
  /** The stdin as received: what an IPAM plugin gets. */
  stdin: string;
}

/** The command, or a code-4 error (VERSION needs nothing else). */
export function readCommand(env: NodeJS.ProcessEnv): CniCommand {
  const c = env.CNI_COMMAND;
  if (c === undefined || c === '') {
    throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_COMMAND is not set: vsw-cni is a CNI plugin, run by a container runtime (ADD, DEL, CHECK or VERSION)');
  }
  if (!COMMANDS.includes(c as CniCommand)) {
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_COMMAND '${c}' is not one of ${COMMANDS.join(', ')}`);
  }
  return c as CniCommand;
}

/** The stdin as a JSON object, or a code-6 error. */
export function decodeStdin(stdin: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(CNI_ERR.DECODE, `the network configuration on stdin is not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new CniError(CNI_ERR.DECODE, 'the network configuration on stdin must be a JSON object');
  }
  return v as Record<string, unknown>;
}

/** The configuration's cniVersion when it is one we speak (code 1 otherwise, 7 when absent). */
export function configVersion(raw: Record<string, unknown>): CniVersion {
  const v = raw.cniVersion;
  if (v === undefined || v === null || v === '') {
    throw new CniError(CNI_ERR.INVALID_CONFIG, 'the network configuration has no cniVersion');
  }
  if (!isSupportedVersion(v)) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `cniVersion ${JSON.stringify(v)} is not supported by vsw-cni`,
      `supported versions: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return v;
}

/** CNI_ARGS `K=V;K=V` (code 4 when malformed, an unknown key without IgnoreUnknown, a bad IP/MAC). */
export function parseCniArgs(text: string | undefined): CniArgs {
  const out: CniArgs = {};
  if (text === undefined || text.trim() === '') return out;
  const pairs: [string, string][] = [];
  for (const part of text.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS: '${part}' is not KEY=VALUE`);
    pairs.push([part.slice(0, eq), part.slice(eq + 1)]);
  }
  const ignore = pairs.some(([k, v]) => k === 'IgnoreUnknown' && /^(1|true)$/i.test(v));
  for (const [k, v] of pairs) {
    switch (k) {
      case 'IP':
        try {
          out.ip = formatIp(parseIp(v));
        } catch {
          throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS: IP '${v}' is not an IPv4 address`);
        }
        break;
      case 'MAC':
        if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(v)) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS: MAC '${v}' is not a MAC address like 02:42:ac:11:00:02`);
        if ((parseInt(v.slice(0, 2), 16) & 1) === 1) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS: MAC '${v}' is a multicast address`);
        out.mac = v.toLowerCase();
        break;
      case 'K8S_POD_NAME':
        if (v !== '') out.podName = v;
        break;
      case 'K8S_POD_NAMESPACE':
        if (v !== '') out.podNamespace = v;
        break;
      default:
        if (!KNOWN_ARGS.includes(k) && !ignore) {
          throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS: unknown key '${k}' (vsw-cni reads IP, MAC, K8S_POD_NAME and K8S_POD_NAMESPACE; add IgnoreUnknown=1 to pass others)`);
        }
    }
  }
  return out;
}

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function requireEnv(env: NodeJS.ProcessEnv, k: string, why: string): string {
  const v = env[k];
  if (v === undefined || v === '') throw new CniError(CNI_ERR.INVALID_ENV, `${k} is not set (${why})`);
  return v;
}

/** Read and check one ADD, DEL or CHECK invocation. */
export function readRequest(command: Exclude<CniCommand, 'VERSION'>, env: NodeJS.ProcessEnv, stdin: string): CniRequest {
  const raw = decodeStdin(stdin);
  const cniVersion = configVersion(raw);
  const containerId = requireEnv(env, 'CNI_CONTAINERID', 'the container this is for');
  if (!CONTAINER_ID_RE.test(containerId)) {
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_CONTAINERID '${containerId}' must start with a letter or digit and hold only letters, digits, '_', '.' and '-'`);
  }
  const ifname = requireEnv(env, 'CNI_IFNAME', 'the interface name in the container');
  if (ifname === '.' || ifname === '..' || Buffer.byteLength(ifname) > 15 || /[/:\s]/.test(ifname)) {
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_IFNAME '${ifname}' is not an interface name (1 to 15 characters, without '/', ':' or spaces)`);
  }
  // DEL must work when the namespace is gone, and runtimes then leave CNI_NETNS empty.
  const netns = command === 'DEL' ? (env.CNI_NETNS ?? '') : requireEnv(env, 'CNI_NETNS', 'the path of the container\'s network namespace');
  const args = parseCniArgs(env.CNI_ARGS);
  const config = readConfig(raw, cniVersion, env);
  const path = (env.CNI_PATH ?? '').split(':').filter((p) => p !== '');
  if (config.ipam !== undefined && path.length === 0) {
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_PATH is not set: it is needed to find the IPAM plugin '${config.ipam.type}'`);
  }
  return { command, containerId, netns, ifname, args, path, config, stdin };
}

function configError(msg: string): CniError {
  return new CniError(CNI_ERR.INVALID_CONFIG, msg);
}

function optString(raw: Record<string, unknown>, k: string): string | undefined {
  const v = raw[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw configError(`'${k}' must be a non-empty string`);
  return v;
}

/** The vsw keys of the configuration (code 7 for a bad value). */
export function readConfig(raw: Record<string, unknown>, cniVersion: CniVersion, env: NodeJS.ProcessEnv): VswCniConfig {
  const name = optString(raw, 'name') ?? '';
  const network = optString(raw, 'network');
  if (network === undefined) throw configError("'network' is required: the vsw network to attach to, e.g. \"network\": \"bridge\"");
  if (!isValidName(network)) throw configError(`'network' ${JSON.stringify(network)} is not a vsw network name (1 to 63 characters from [a-zA-Z0-9_.-], starting with a letter or digit)`);
  const subnet = optString(raw, 'subnet');
  if (subnet !== undefined) {
    try { parseCidr(subnet); } catch (e) { throw configError(`'subnet': ${(e as Error).message}`); }
  }
  const gateway = optString(raw, 'gateway');
  if (gateway !== undefined) {
    try { parseIp(gateway); } catch { throw configError(`'gateway' '${gateway}' is not an IPv4 address`); }
  }
  const socket = optString(raw, 'socket') ?? (env.VSW_SOCKET || DEFAULT_SOCKET);
  let mtu: number | undefined;
  if (raw.mtu !== undefined && raw.mtu !== null) {
    if (typeof raw.mtu !== 'number' || !Number.isInteger(raw.mtu) || raw.mtu < MIN_MTU || raw.mtu > MAX_MTU) {
      throw configError(`'mtu' must be an integer from ${MIN_MTU} to ${MAX_MTU}`);
    }
    mtu = raw.mtu;
  }
  let defaultRoute = true;
  if (raw.defaultRoute !== undefined && raw.defaultRoute !== null) {
    if (typeof raw.defaultRoute !== 'boolean') throw configError("'defaultRoute' must be true or false");
    defaultRoute = raw.defaultRoute;
  }
  let ipam: IpamConfig | undefined;
  if (raw.ipam !== undefined && raw.ipam !== null) {
    const i = raw.ipam as Record<string, unknown>;
    if (typeof i !== 'object' || Array.isArray(i)) throw configError("'ipam' must be an object with a 'type'");
    // An empty ipam object is what some tools write for "no IPAM plugin": vsw's own then.
    if (Object.keys(i).length > 0) {
      if (typeof i.type !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(i.type)) {
        throw configError("'ipam.type' must name an IPAM plugin in CNI_PATH, e.g. \"host-local\"");
      }
      ipam = { type: i.type };
    }
  }
  const rc = readRuntimeConfig(raw.runtimeConfig, name, network);
  const config: VswCniConfig = { cniVersion, name, network, socket, defaultRoute, publish: rc.publish, aliases: rc.aliases };
  if (subnet !== undefined) config.subnet = subnet;
  if (gateway !== undefined) config.gateway = gateway;
  if (mtu !== undefined) config.mtu = mtu;
  if (ipam !== undefined) config.ipam = ipam;
  if (raw.prevResult !== undefined && raw.prevResult !== null) config.prevResult = parseResult(raw.prevResult, 'prevResult');
  return config;
}

/**
 * runtimeConfig: `portMappings: [{hostPort, containerPort, protocol, hostIP}]` (hostIP ''
 * or absent: every switch address) and `aliases: {NETWORK: [names]}` (podman's, keyed by the
 * CNI network's name; the vsw network's name is accepted too).
 */
function readRuntimeConfig(v: unknown, cniName: string, network: string): { publish: PortMapping[]; aliases: string[] } {
  if (v === undefined || v === null) return { publish: [], aliases: [] };
  if (typeof v !== 'object' || Array.isArray(v)) throw configError("'runtimeConfig' must be an object");
  const rc = v as Record<string, unknown>;
  let publish: PortMapping[] = [];
  if (rc.portMappings !== undefined && rc.portMappings !== null) {
    if (!Array.isArray(rc.portMappings)) throw configError("'runtimeConfig.portMappings' must be an array");
    const asVsw = rc.portMappings.map((m: unknown, i) => {
      if (typeof m !== 'object' || m === null) throw configError(`'runtimeConfig.portMappings[${i}]' must be an object {hostPort, containerPort, protocol, hostIP}`);
      const o = m as Record<string, unknown>;
      const out: Record<string, unknown> = { hostPort: o.hostPort, containerPort: o.containerPort };
      if (o.protocol !== undefined && o.protocol !== null && o.protocol !== '') out.proto = typeof o.protocol === 'string' ? o.protocol.toLowerCase() : o.protocol;
      if (o.hostIP !== undefined && o.hostIP !== null && o.hostIP !== '') out.hostIp = o.hostIP;
      return out;
    });
    try {
      publish = checkPublishJson(asVsw, 'runtimeConfig.portMappings');
    } catch (e) {
      throw configError((e as Error).message.replace(/\.hostIp\b/g, '.hostIP').replace(/\.proto\b/g, '.protocol'));
    }
  }
  let aliases: string[] = [];
  if (rc.aliases !== undefined && rc.aliases !== null) {
    if (typeof rc.aliases !== 'object' || Array.isArray(rc.aliases)) throw configError("'runtimeConfig.aliases' must be an object {NETWORK: [names]}");
    const byNet = rc.aliases as Record<string, unknown>;
    const list = byNet[cniName] ?? byNet[network];
    if (list !== undefined && list !== null) {
      if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
        throw configError(`'runtimeConfig.aliases.${cniName}' must be an array of names`);
      }
      try {
        aliases = (list as string[]).map((a) => checkAlias(a)).filter((a, i, xs) => xs.indexOf(a) === i);
      } catch (e) {
        throw configError(`'runtimeConfig.aliases': ${(e as Error).message}`);
      }
    }
  }
  return { publish, aliases };
}

/**
 * The attachment's name, which `vsw ps`, `fdb`, `stats` and the DNS show: the pod name from
 * CNI_ARGS (`NAME.NAMESPACE` when Kubernetes gives the namespace too, so pods of two
 * namespaces do not collide), else the container id (its first 12 characters when it is a
 * 64-hex-digit id, as `docker ps` and `podman ps` show it).
 */
export function attachmentName(containerId: string, args: CniArgs): string {
  if (args.podName !== undefined) {
    const full = args.podNamespace !== undefined ? `${args.podName}.${args.podNamespace}` : args.podName;
    if (isValidName(full)) return full;
    if (isValidName(args.podName)) return args.podName;
  }
  if (/^[0-9a-f]{64}$/.test(containerId)) return containerId.slice(0, 12);
  return containerId.slice(0, 63);
}
