// ADD, DEL, CHECK and VERSION: what vsw-cni does for each, over the daemon's attachments API.
// `runCni(env, stdin)` is the whole plugin minus the process (main.ts): it returns what to
// print on stdout and the exit code, so the unit tests drive it exactly as a runtime would.
//
//   ADD    the network (created when absent), an address (vsw's IPAM, or the IPAM plugin's),
//          then POST /attachments: the daemon makes the veth, puts the inner end into
//          CNI_NETNS as CNI_IFNAME, configures it and attaches the host end to the switch.
//          The result lists the host end and the container interface (with its sandbox and
//          MAC), the address on the container interface, the default route and the gateway
//          as the nameserver (its embedded DNS answers the network's names). A failure after
//          the IPAM plugin allocated releases the address again (IPAM DEL): nothing half-made.
//   DEL    DELETE /attachments/ID/IFNAME (404: already gone, fine), then IPAM DEL. Needs
//          neither the namespace (it may be gone) nor the network.
//   CHECK  the attachment exists and is for this network; the IPAM plugin's CHECK; in the
//          namespace, CNI_IFNAME exists with the attachment's address and the MAC the
//          result says (a chained plugin such as tuning may have changed it).
//   VERSION the versions of spec.ts.
//
// Exit codes: 0 success, 1 an error (its JSON on stdout). The daemon not answering is 11
// ("try again later"): the runtime may retry.

import * as fs from 'fs';
import { Client } from '../client';
import { VswError } from '../errors';
import { cidrContains, parseCidr } from '../ipam';
import type { AttachmentCreate, AttachmentInfo, NetworkCreate, NetworkInfo } from '../types';
import { attachmentName, configVersion, decodeStdin, readCommand, readRequest, type CniRequest } from './config';
import { ipamAdd, ipamCheck, ipamDel } from './delegate';
import { inspectInterface, type InterfaceState } from './inspect';
import {
  CNI_ERR, CniError, CURRENT_VERSION, allowsCheck, errorJson, formatResult, isSupportedVersion, mergeResult,
  SUPPORTED_VERSIONS, type CniResult,
} from './spec';

export interface CniOutput {
  stdout: string;
  code: number;
}

/** What the handlers reach outside themselves; the tests replace the namespace inspection. */
export interface CniDeps {
  inspect(netns: string, ifname: string): Promise<InterfaceState | undefined>;
}

const realDeps: CniDeps = { inspect: inspectInterface };

/** One invocation: env and stdin in, stdout and exit code out. Never throws. */
export async function runCni(env: NodeJS.ProcessEnv, stdin: string, deps: CniDeps = realDeps): Promise<CniOutput> {
  let version: string = CURRENT_VERSION;
  try {
    const command = readCommand(env);
    if (command === 'VERSION') return { stdout: versionAnswer(stdin), code: 0 };
    // The error JSON carries the configuration's version when it is one we speak.
    try {
      const v = decodeStdin(stdin).cniVersion;
      if (isSupportedVersion(v)) version = v;
    } catch { /* readRequest reports it */ }
    const req = readRequest(command, env, stdin);
    switch (command) {
      case 'ADD': return { stdout: `${JSON.stringify(formatResult(await add(req, env), req.config.cniVersion))}\n`, code: 0 };
      case 'DEL': await del(req, env); return { stdout: '', code: 0 };
      case 'CHECK': await check(req, env, deps); return { stdout: '', code: 0 };
    }
  } catch (e) {
    const ce = e instanceof CniError ? e : new CniError(CNI_ERR.VSW_INTERNAL, `vsw-cni: ${(e as Error).message ?? String(e)}`);
    return { stdout: `${JSON.stringify(errorJson(ce, version))}\n`, code: 1 };
  }
}

/** VERSION: the input's cniVersion echoed when we speak it (1.0.0 otherwise), and ours. */
function versionAnswer(stdin: string): string {
  let v: string = CURRENT_VERSION;
  try {
    const asked = configVersion(decodeStdin(stdin));
    v = asked;
  } catch { /* VERSION answers whatever it was asked with */ }
  return `${JSON.stringify({ cniVersion: v, supportedVersions: SUPPORTED_VERSIONS })}\n`;
}

/** A daemon refusal as a CNI error: unreachable is 11, the rest by the daemon's error code. */
export function daemonError(e: unknown, what: string): CniError {
  if (e instanceof CniError) return e;
  if (!(e instanceof VswError)) return new CniError(CNI_ERR.VSW_INTERNAL, `${what}: ${(e as Error)?.message ?? String(e)}`);
  const code = {
    E_DAEMON_UNREACHABLE: CNI_ERR.TRY_AGAIN_LATER,
    E_INVALID_ARGUMENT: CNI_ERR.VSW_INVALID,
    E_CONFLICT: CNI_ERR.VSW_CONFLICT,
    E_EXHAUSTED: CNI_ERR.VSW_EXHAUSTED,
    E_NOT_FOUND: CNI_ERR.VSW_NOT_FOUND,
    E_SYSTEM: CNI_ERR.VSW_SYSTEM,
  }[e.code] ?? CNI_ERR.VSW_INTERNAL;
  return new CniError(code, `${what}: ${e.message}`, e.code);
}

function isNotFound(e: unknown): boolean {
  return e instanceof VswError && (e.code === 'E_NOT_FOUND' || e.status === 404);
}

const endpointOf = (req: CniRequest): string => `${req.containerId}/${req.ifname}`;

/** The vsw network, created from the configuration when absent; its subnet/gateway must match the configuration's. */
async function ensureNetwork(c: Client, req: CniRequest): Promise<NetworkInfo> {
  const cfg = req.config;
  const path = `/networks/${encodeURIComponent(cfg.network)}`;
  let net: NetworkInfo;
  try {
    net = await c.get<NetworkInfo>(path);
  } catch (e) {
    if (!isNotFound(e)) throw daemonError(e, `vsw network ${cfg.network}`);
    const spec: NetworkCreate = { name: cfg.network };
    if (cfg.subnet !== undefined) spec.subnet = cfg.subnet;
    if (cfg.gateway !== undefined) spec.gateway = cfg.gateway;
    if (cfg.mtu !== undefined) spec.mtu = cfg.mtu;
    try {
      net = await c.post<NetworkInfo>('/networks', spec);
    } catch (e2) {
      // Two ADDs at once: the other one created it.
      if (!(e2 instanceof VswError && e2.code === 'E_CONFLICT')) throw daemonError(e2, `creating the vsw network ${cfg.network}`);
      try { net = await c.get<NetworkInfo>(path); } catch { throw daemonError(e2, `creating the vsw network ${cfg.network}`); }
    }
  }
  if (cfg.subnet !== undefined && net.subnet !== cfg.subnet) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `the configuration says subnet ${cfg.subnet}, but the vsw network ${cfg.network} has ${net.subnet}`);
  }
  if (cfg.gateway !== undefined && net.gateway !== cfg.gateway) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `the configuration says gateway ${cfg.gateway}, but the vsw network ${cfg.network} has ${net.gateway}`);
  }
  return net;
}

/** The IPv4 address an IPAM plugin allocated, checked against the vsw network. */
function ipamAddress(r: CniResult, net: NetworkInfo, type: string): string {
  const v4 = r.ips.find((ip) => !ip.address.includes(':'));
  if (!v4) throw new CniError(CNI_ERR.VSW_IPAM, `the IPAM plugin '${type}' allocated no IPv4 address`);
  const ip = v4.address.split('/')[0];
  const subnet = parseCidr(net.subnet);
  if (!cidrContains(subnet, ip)) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `the IPAM plugin '${type}' allocated ${v4.address}, outside the vsw network ${net.name} (${net.subnet}): make its range a part of that subnet`);
  }
  if (v4.gateway !== undefined && v4.gateway !== net.gateway) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `the IPAM plugin '${type}' gives gateway ${v4.gateway}, but the vsw network ${net.name}'s gateway (its router) is ${net.gateway}: set the range's gateway to ${net.gateway}`);
  }
  return ip;
}

async function add(req: CniRequest, env: NodeJS.ProcessEnv): Promise<CniResult> {
  const cfg = req.config;
  if (!fs.existsSync(req.netns)) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_NETNS ${req.netns} does not exist`);
  const c = new Client(cfg.socket);
  const net = await ensureNetwork(c, req);
  const delegate = cfg.ipam ? { type: cfg.ipam.type, dirs: req.path, env, stdin: req.stdin } : undefined;
  let allocated: CniResult | undefined;
  let ip = req.args.ip;
  if (delegate) {
    allocated = await ipamAdd(delegate);
    try {
      ip = ipamAddress(allocated, net, delegate.type);
    } catch (e) {
      await ipamDel(delegate).catch(() => undefined);
      throw e;
    }
  }
  const name = attachmentName(req.containerId, req.args);
  const spec: AttachmentCreate = {
    owner: 'cni', endpoint: endpointOf(req), sandbox: req.containerId, name, network: cfg.network,
    ifname: req.ifname, netns: req.netns, defaultRoute: cfg.defaultRoute,
    aliases: cfg.aliases.filter((a) => a !== name), publish: cfg.publish,
  };
  if (ip !== undefined) spec.ip = ip;
  if (req.args.mac !== undefined) spec.mac = req.args.mac;
  if (cfg.mtu !== undefined) spec.mtu = cfg.mtu;
  let att: AttachmentInfo;
  try {
    att = await c.attach(spec);
  } catch (e) {
    if (delegate) await ipamDel(delegate).catch(() => undefined);
    throw daemonError(e, `attaching ${req.ifname} of ${req.containerId} to the vsw network ${cfg.network}`);
  }
  const ours: CniResult = {
    interfaces: [{ name: att.hostIf }, { name: att.innerIf, mac: att.mac, sandbox: req.netns }],
    ips: [{ address: `${att.ip}/${att.prefixLen}`, gateway: att.gateway, interface: 1 }],
    routes: cfg.defaultRoute ? [{ dst: '0.0.0.0/0', gw: att.gateway }] : [],
    dns: { nameservers: [att.gateway] },
  };
  if (allocated) {
    // The IPAM plugin's DNS settings (host-local's resolvConf) come after vsw's nameserver.
    ours.dns = mergeResult({ interfaces: [], ips: [], routes: [], dns: allocated.dns }, ours).dns;
  }
  return cfg.prevResult ? mergeResult(cfg.prevResult, ours) : ours;
}

async function del(req: CniRequest, env: NodeJS.ProcessEnv): Promise<void> {
  const c = new Client(req.config.socket);
  try {
    await c.detach(endpointOf(req)); // false: already gone, as good as done
  } catch (e) {
    throw daemonError(e, `detaching ${req.ifname} of ${req.containerId}`);
  }
  if (req.config.ipam) await ipamDel({ type: req.config.ipam.type, dirs: req.path, env, stdin: req.stdin });
}

async function check(req: CniRequest, env: NodeJS.ProcessEnv, deps: CniDeps): Promise<void> {
  const cfg = req.config;
  if (!allowsCheck(cfg.cniVersion)) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `CHECK is not part of cniVersion ${cfg.cniVersion} (it came with 0.4.0)`);
  }
  const c = new Client(cfg.socket);
  let att: AttachmentInfo | undefined;
  try {
    att = await c.attachment(endpointOf(req));
  } catch (e) {
    throw daemonError(e, `checking ${endpointOf(req)}`);
  }
  if (!att) throw new CniError(CNI_ERR.VSW_NOT_FOUND, `vsw has no attachment ${endpointOf(req)}: ${req.ifname} of ${req.containerId} is not on a vsw network`);
  const mismatch = (msg: string): CniError => new CniError(CNI_ERR.VSW_CHECK_MISMATCH, msg);
  if (att.network !== cfg.network) throw mismatch(`${endpointOf(req)} is on the vsw network ${att.network}, not ${cfg.network}`);
  const address = `${att.ip}/${att.prefixLen}`;
  const prev = cfg.prevResult;
  const prevIf = prev?.interfaces.find((i) => i.name === req.ifname && (i.sandbox === undefined || i.sandbox === req.netns));
  if (prev && !prev.ips.some((i) => i.address === address)) {
    throw mismatch(`prevResult does not hold ${endpointOf(req)}'s address ${address}`);
  }
  if (cfg.ipam) await ipamCheck({ type: cfg.ipam.type, dirs: req.path, env, stdin: req.stdin });
  const state = await deps.inspect(req.netns, req.ifname);
  if (!state) throw mismatch(`there is no interface ${req.ifname} in ${req.netns}`);
  if (!state.addresses.includes(address)) {
    throw mismatch(`${req.ifname} in ${req.netns} has ${state.addresses.join(', ') || 'no IPv4 address'}, not ${address}`);
  }
  const mac = (prevIf?.mac ?? att.mac).toLowerCase();
  if (state.mac.toLowerCase() !== mac) throw mismatch(`${req.ifname} in ${req.netns} has MAC ${state.mac}, not ${mac}`);
}
