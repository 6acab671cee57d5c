// Network namespaces, veth pairs, addresses and routes, all through iproute2 `ip`.
//
// Two kinds of namespace appear here:
//   - a container's namespace: a named one (/run/netns/NAME), targeted with `ip -n NAME`;
//   - the daemon's namespace, where the switch ports (veth host ends, the host TAP) live.
//     That is simply the *current* namespace of the process. Every function that touches
//     it takes an optional last parameter `hostNetns`: when given, the named namespace is
//     used instead (tests run a whole "host" inside a throwaway namespace that way). The
//     daemon passes nothing.
//
// Errors: a missing device or namespace -> NotFoundError, "File exists" -> ConflictError,
// anything else -> SystemError; the message is always the command line + ip's complaint.
//
// Longer than most control/ files on purpose: it is the one module that runs `ip`, so
// every command, its error classification and the mount-namespace rule live side by side;
// the sections (namespaces, names, links, addresses, processes) are independent.

import { ChildProcess, spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import { crashPoint } from './crash';
import { ConflictError, NotFoundError, SystemError } from './errors';
import { run, runJson, pidAlive as pidAliveImpl } from './exec';
import { formatIp, maskOf, parseIp, validName as validNameImpl, isValidName as isValidNameImpl } from './ipam';

export const NETNS_DIR = '/run/netns';
const IP = 'ip';

/** Container/network name check (see ipam.validName): returns the name or throws InvalidArgumentError. */
export const validName = validNameImpl;
export const isValidName = isValidNameImpl;
/** True when the pid exists and is not a zombie. */
export const pidAlive = pidAliveImpl;

/**
 * The command line of `ip args...` in namespace NS: `ip -n NS` for a named one, `nsenter
 * --net=PATH ip` for one given by its path (a runtime's sandbox: /proc/PID/ns/net,
 * /var/run/netns/cni-..., which `ip -n` does not take).
 */
function nsArgs(netns: string | undefined | null, args: string[]): { cmd: string; argv: string[] } {
  if (netns && netns.startsWith('/')) return { cmd: 'nsenter', argv: [`--net=${netns}`, '--', IP, ...args] };
  return { cmd: IP, argv: netns ? ['-n', netns, ...args] : args };
}

/** Re-class an `ip` failure by its message. */
function classify(err: unknown): unknown {
  if (!(err instanceof SystemError)) return err;
  const m = err.message;
  if (/Cannot find device|does not exist|No such device|Cannot open network namespace|Invalid "netns" value|nsenter: cannot open/i.test(m)) {
    return new NotFoundError(m);
  }
  if (/File exists/.test(m)) return new ConflictError(m);
  return err;
}

async function ip(args: string[], netns?: string | null): Promise<string> {
  try {
    const { cmd, argv } = nsArgs(netns, args);
    return (await run(cmd, argv)).stdout;
  } catch (err) {
    throw classify(err);
  }
}

async function ipJson<T>(args: string[], netns?: string | null): Promise<T> {
  try {
    const { cmd, argv } = nsArgs(netns, ['-j', ...args]);
    return await runJson<T>(cmd, argv);
  } catch (err) {
    throw classify(err);
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof NotFoundError;
}

// ---- namespaces ----------------------------------------------------------------------

/**
 * `ip netns add/delete` must run in the user's mount namespace, not necessarily ours. A
 * named namespace is a bind mount on /run/netns/NAME. A daemon started with
 * `ip netns exec HOST ...` (or by a service manager with a private /tmp) lives in a private
 * mount namespace whose mounts are *slaves* of the user's: mounts it makes stay invisible
 * to everyone else (`ip netns exec NAME` in the user's shell then fails with "setns:
 * Invalid argument", and so does the next daemon, in a new private namespace), while
 * mounts made in the user's namespace propagate into ours.
 *
 * So the upstream mount namespace is the one our /run/netns mount (or the mount it lives
 * on) is a slave of: `master:N` in /proc/self/mountinfo, the peer group that is `shared:N`
 * in the upstream namespace. It is looked for at daemon start (initMountNamespace), while
 * the process that started us may still be there: first among our ancestors, then pid 1,
 * then any process. Not only among ancestors: a shell that starts the daemon in the
 * background and exits leaves it with no ancestor but pid 1 (`(ip netns exec HOST vsw
 * daemon &)`, `nohup`), and pid 1 may be unreadable. An fd on that namespace is kept (it
 * stays valid when its processes exit) and namespaces are added/deleted through
 * `nsenter --mount=/proc/self/fd/3`. When our mount is no slave (a daemon started
 * normally, or sharing its peers' mounts), `ip netns` runs directly.
 */
let upstreamMnt: { fd: number; pid: number; ns: string } | null | undefined;

function parentPid(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * The propagation of the mount that holds /run/netns in PID's mount namespace (the
 * /run/netns mount itself, else the mount of the longest prefix of it, the top one when
 * several are stacked): `shared:N` and `master:N` of /proc/PID/mountinfo.
 */
function netnsMountPeers(pid: number | 'self'): { shared?: number; master?: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  } catch {
    return undefined;
  }
  return mountPeersOf(text, NETNS_DIR);
}

/**
 * In a mountinfo text, the propagation (`shared:N`, `master:N`) of the mount that holds
 * `dir`: the mount at `dir` itself, else the mount at its longest prefix; of mounts stacked
 * at one place, the last (top) one. Undefined when none holds it.
 */
export function mountPeersOf(mountinfo: string, dir: string): { shared?: number; master?: number } | undefined {
  let best: { len: number; shared?: number; master?: number } | undefined;
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root MOUNTPOINT options [optional fields...] - fstype source super
    const f = line.split(' ');
    const at = f[4];
    if (at === undefined || !(at === '/' || dir === at || dir.startsWith(`${at}/`))) continue;
    if (best && at.length < best.len) continue;
    const cur: { len: number; shared?: number; master?: number } = { len: at.length };
    for (let i = 6; i < f.length && f[i] !== '-'; i++) {
      const m = /^(shared|master):(\d+)$/.exec(f[i]);
      if (m) cur[m[1] as 'shared' | 'master'] = Number(m[2]);
    }
    best = cur;
  }
  if (!best) return undefined;
  const { shared, master } = best;
  return { shared, master };
}

function findUpstreamMountNs(): { fd: number; pid: number; ns: string } | null {
  const mine = fs.readlinkSync('/proc/self/ns/mnt');
  const master = netnsMountPeers('self')?.master;
  if (master === undefined) return null;
  const candidates: number[] = [];
  try {
    for (let pid = process.ppid; pid > 1; pid = parentPid(pid)) candidates.push(pid);
  } catch {
    // an ancestor exited during the walk: the others are tried below
  }
  candidates.push(1);
  try {
    for (const e of fs.readdirSync('/proc')) if (/^\d+$/.test(e)) candidates.push(Number(e));
  } catch {
    // no /proc listing: ancestors and pid 1 only
  }
  const tried = new Set<string>([mine]);
  for (const pid of candidates) {
    let ns: string;
    try { ns = fs.readlinkSync(`/proc/${pid}/ns/mnt`); } catch { continue; }
    if (tried.has(ns)) continue;
    tried.add(ns);
    if (netnsMountPeers(pid)?.shared !== master) continue;
    let fd: number;
    try { fd = fs.openSync(`/proc/${pid}/ns/mnt`, 'r'); } catch { continue; }
    // The pid could have exited and been reused between the two looks.
    let held = '';
    try { held = fs.readlinkSync(`/proc/self/fd/${fd}`); } catch { /* checked below */ }
    if (held === ns) return { fd, pid, ns };
    fs.closeSync(fd);
  }
  return null;
}

function upstreamMountNs(): number | null {
  if (upstreamMnt === undefined) {
    try {
      upstreamMnt = findUpstreamMountNs();
    } catch {
      upstreamMnt = null; // no /proc access: stay in our own mount namespace
    }
  }
  return upstreamMnt?.fd ?? null;
}

/**
 * Find the mount namespace where container namespaces are made (see above), now rather
 * than at the first container, and say which (for the daemon's log).
 */
export function initMountNamespace(): string {
  upstreamMountNs();
  if (!upstreamMnt) {
    const master = netnsMountPeers('self')?.master;
    if (master === undefined) return 'container namespaces are made in this mount namespace';
    return `warning: this mount namespace is a private copy (its ${NETNS_DIR} mount is a slave of peer group ${master}), ` +
      'but no process of the namespace it copies was found: container namespaces made here are invisible outside ' +
      "this daemon (start it where its parent's mount namespace is still around, e.g. not from an exiting subshell)";
  }
  return `container namespaces are made in the mount namespace ${upstreamMnt.ns} (of pid ${upstreamMnt.pid}): ours is a private copy of it`;
}

function netnsAdmin(args: string[]): Promise<void> {
  const fd = upstreamMountNs();
  if (fd === null) return ip(['netns', ...args]).then(() => undefined);
  const argv = ['--mount=/proc/self/fd/3', '--', IP, 'netns', ...args];
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', argv, { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', (e) => reject(new SystemError(`nsenter: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(classify(new SystemError(`${IP} netns ${args.join(' ')}: ${err.trim() || `exit ${code}`}`)));
    });
  });
}

/** /run/netns/NAME */
export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

/** True when /run/netns/NAME exists (or, for an absolute path, that file). */
export function netnsExists(name: string): boolean {
  if (name.startsWith('/')) return fs.existsSync(name);
  if (!isValidNameImpl(name)) return false;
  return fs.existsSync(netnsPath(name));
}

/**
 * True when /run/netns/NAME exists but is no namespace: a plain file, not the bind mount of
 * one (the mount was made in a mount namespace we do not see, or was unmounted). `ip -n
 * NAME` then fails with "Invalid argument"; such a file can only be deleted.
 */
export function netnsStale(name: string): boolean {
  if (!isValidNameImpl(name)) return false;
  try {
    // A bind-mounted namespace is a file of nsfs; a plain file is on the directory's device.
    return fs.statSync(netnsPath(name)).dev === fs.statSync(NETNS_DIR).dev;
  } catch {
    return false;
  }
}

/** Names of all named namespaces (the entries of /run/netns), sorted. */
export function listNetns(): string[] {
  try {
    return fs.readdirSync(NETNS_DIR).filter((n) => !n.startsWith('.')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new SystemError(`cannot list ${NETNS_DIR}: ${(err as Error).message}`);
  }
}

/**
 * `ip netns add NAME` + `ip -n NAME link set lo up`. ConflictError when it already exists;
 * InvalidArgumentError for a bad name. On a failure after the add, the namespace is removed.
 */
export async function createNetns(name: string): Promise<void> {
  validNameImpl(name, 'namespace name');
  if (netnsExists(name)) throw new ConflictError(`network namespace '${name}' already exists`);
  await netnsAdmin(['add', name]);
  try {
    await ip(['link', 'set', 'dev', 'lo', 'up'], name);
    crashPoint('after-netns');
  } catch (err) {
    await netnsAdmin(['delete', name]).catch(() => undefined);
    throw err;
  }
}

/**
 * Remove a named namespace; absent is fine. Its veth interfaces are deleted first, which
 * removes their peers (the switch-port host ends) at once and even when some process still
 * holds the namespace open (otherwise the kernel only frees it, and the veths, when the last
 * process leaves, and asynchronously).
 */
export async function deleteNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  // A namespace file that is no longer a namespace (stale) cannot be entered: just remove it.
  if (!netnsStale(name)) {
    try {
      const links = await listLinks(name);
      for (const l of links) {
        if (l.kind === 'veth') await deleteLink(l.name, name);
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  try {
    await netnsAdmin(['delete', name]);
  } catch (err) {
    if (netnsExists(name)) throw err;
  }
}

/** Pids of the processes inside a named namespace (`ip netns pids`). */
export async function netnsPids(name: string): Promise<number[]> {
  if (!netnsExists(name)) throw new NotFoundError(`network namespace '${name}' does not exist`);
  const out = await ip(['netns', 'pids', name]);
  return out.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
}

// ---- names ---------------------------------------------------------------------------

/** `vsw` (or `prefix`) + 8 hex chars of sha256(seed): stable for a seed, 11 chars (Linux allows 15). */
export function hostIfName(seed: string, prefix = 'vsw'): string {
  return `${prefix}${createHash('sha256').update(seed).digest('hex').slice(0, 8)}`;
}

/** The first ethN (N = 0, 1, ...) not present in the namespace. */
export async function nextInnerIfName(netns: string): Promise<string> {
  const names = new Set((await listLinks(netns)).map((l) => l.name));
  for (let i = 0; ; i++) {
    if (!names.has(`eth${i}`)) return `eth${i}`;
  }
}

// ---- links ---------------------------------------------------------------------------

export interface LinkInfo {
  name: string;
  ifindex: number;
  mac: string;
  mtu: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** rtnl kind: 'veth', 'tun', 'loopback'... ('' when the kernel does not say). */
  kind: string;
}

interface IpLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu: number;
  address?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string };
}

function toLinkInfo(l: IpLink): LinkInfo {
  return {
    name: l.ifname,
    ifindex: l.ifindex,
    mac: l.address ?? '',
    mtu: l.mtu,
    up: (l.flags ?? []).includes('UP'),
    kind: l.linkinfo?.info_kind ?? (l.link_type === 'loopback' ? 'loopback' : ''),
  };
}

/** All interfaces of a namespace (default: the current one). */
export async function listLinks(netns?: string): Promise<LinkInfo[]> {
  const links = await ipJson<IpLink[]>(['-d', 'link', 'show'], netns);
  return links.map(toLinkInfo);
}

/** One interface; NotFoundError when it (or the namespace) does not exist. */
export async function getLink(name: string, netns?: string): Promise<LinkInfo> {
  const links = await ipJson<IpLink[]>(['-d', 'link', 'show', 'dev', name], netns);
  if (links.length === 0) throw new NotFoundError(`interface '${name}' does not exist`);
  return toLinkInfo(links[0]);
}

/** True when the interface exists (false also when the namespace does not). */
export async function linkExists(name: string, netns?: string): Promise<boolean> {
  if (netns && !netnsExists(netns)) return false;
  try {
    await getLink(name, netns);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Delete an interface (a veth takes its peer along). Absent interface or namespace is fine. */
export async function deleteLink(name: string, netns?: string): Promise<void> {
  if (netns && !netnsExists(netns)) return;
  try {
    await ip(['link', 'delete', 'dev', name], netns);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** `ip link set dev NAME up` */
export async function linkUp(name: string, netns?: string): Promise<void> {
  await ip(['link', 'set', 'dev', name, 'up'], netns);
}

/** `ip link set dev NAME down` */
export async function linkDown(name: string, netns?: string): Promise<void> {
  await ip(['link', 'set', 'dev', name, 'down'], netns);
}

/** The interface's MAC address (lower case aa:bb:...). */
export async function linkMac(name: string, netns?: string): Promise<string> {
  return (await getLink(name, netns)).mac.toLowerCase();
}

/** `ip link set dev NAME mtu M` */
export async function setMtu(name: string, mtu: number, netns?: string): Promise<void> {
  await ip(['link', 'set', 'dev', name, 'mtu', String(mtu)], netns);
}

/** `ip link set dev NAME address MAC` */
export async function setMac(name: string, mac: string, netns?: string): Promise<void> {
  await ip(['link', 'set', 'dev', name, 'address', mac], netns);
}

/**
 * `ip addr replace CIDR brd + dev IF` (CIDR = the interface's address + prefix, e.g.
 * 10.89.0.254/24). Idempotent: re-adding the same address is fine.
 */
export async function addAddress(ifname: string, cidr: string, netns?: string): Promise<void> {
  await ip(['addr', 'replace', cidr, 'brd', '+', 'dev', ifname], netns);
}

/** `ip addr del CIDR dev IF`; an absent address or interface is fine. */
export async function deleteAddress(ifname: string, cidr: string, netns?: string): Promise<void> {
  try {
    await ip(['addr', 'del', cidr, 'dev', ifname], netns);
  } catch (err) {
    if (isNotFound(err) || /Cannot assign requested address/.test((err as Error).message)) return;
    throw err;
  }
}

/**
 * Turn IPv6 off on an interface (writes 1 to /proc/sys/net/ipv6/conf/IF/disable_ipv6), so
 * the daemon namespace's stack stays quiet on switch ports (no link-local address, no
 * router solicitations, no DAD). Ignored when the file is absent (IPv6 off in the kernel).
 * With hostNetns the write is done by a shell inside that namespace (/proc/sys/net is
 * per namespace of the writing process).
 */
export async function disableIpv6(ifname: string, hostNetns?: string): Promise<void> {
  if (!/^[^/\s]{1,15}$/.test(ifname) || ifname === '.' || ifname === '..') {
    throw new SystemError(`invalid interface name '${ifname}'`);
  }
  const file = `/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`;
  if (hostNetns) {
    try {
      await run(IP, ['netns', 'exec', hostNetns, 'sh', '-c', 'if [ -e "$1" ]; then echo 1 > "$1"; fi', 'sh', file]);
    } catch (err) {
      throw classify(err);
    }
    return;
  }
  try {
    fs.writeFileSync(file, '1\n');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new SystemError(`cannot disable IPv6 on ${ifname} (${file}): ${(err as Error).message}`);
  }
}

/**
 * Create a veth pair: HOSTIF (in the daemon's namespace, or hostNetns) and INNERIF inside
 * the container namespace NETNS (a name, or an absolute path), both with MTU `mtu`:
 *   ip link add HOSTIF mtu M type veth peer name INNERIF netns NETNS mtu M
 * then IPv6 is disabled on the host end and the host end is set up. The inner end stays
 * down until configureEndpoint. NETNS '' leaves the inner end beside the host end (for a
 * runtime that moves it itself: Docker), with `innerMac` when given. ConflictError when
 * HOSTIF or INNERIF already exists; on a later failure the pair is removed again.
 */
export async function createVeth(
  hostIf: string,
  netns: string,
  mtu: number,
  innerIf = 'eth0',
  hostNetns?: string,
  innerMac?: string,
): Promise<void> {
  if (netns !== '' && !netnsExists(netns)) throw new NotFoundError(`network namespace '${netns}' does not exist`);
  if (await linkExists(hostIf, hostNetns)) {
    throw new ConflictError(`interface '${hostIf}' already exists${hostNetns ? ` in namespace '${hostNetns}'` : ''}`);
  }
  if (await linkExists(innerIf, netns === '' ? hostNetns : netns)) {
    throw new ConflictError(`interface '${innerIf}' already exists in namespace '${netns === '' ? hostNetns ?? 'of the daemon' : netns}'`);
  }
  const m = String(mtu);
  const peer = [innerIf, ...(netns === '' ? [] : ['netns', netns]), 'mtu', m, ...(innerMac ? ['address', innerMac] : [])];
  await ip(['link', 'add', hostIf, 'mtu', m, 'type', 'veth', 'peer', 'name', ...peer], hostNetns);
  try {
    await disableIpv6(hostIf, hostNetns);
    await linkUp(hostIf, hostNetns);
    crashPoint('after-veth');
  } catch (err) {
    await deleteLink(hostIf, hostNetns).catch(() => undefined);
    throw err;
  }
}

export interface EndpointConfig {
  mac: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mtu: number;
  /** Add `default via GATEWAY dev IF` (replacing an existing default route). */
  defaultRoute: boolean;
}

/**
 * Configure a container's interface inside NETNS:
 *   ip -n NETNS link set dev IF address MAC mtu M
 *   ip -n NETNS addr replace IP/LEN brd + dev IF
 *   ip -n NETNS link set dev IF up
 *   ip -n NETNS route replace default via GW dev IF      (when defaultRoute)
 * `replace` instead of `add` makes it idempotent (safe to redo on recovery).
 */
export async function configureEndpoint(netns: string, ifname: string, cfg: EndpointConfig): Promise<void> {
  await ip(['link', 'set', 'dev', ifname, 'address', cfg.mac, 'mtu', String(cfg.mtu)], netns);
  await ip(['addr', 'replace', `${cfg.ip}/${cfg.prefixLen}`, 'brd', '+', 'dev', ifname], netns);
  await ip(['link', 'set', 'dev', ifname, 'up'], netns);
  if (cfg.defaultRoute) {
    await ip(['route', 'replace', 'default', 'via', cfg.gateway, 'dev', ifname], netns);
  }
  crashPoint('after-addr');
}

// ---- what the daemon's namespace uses -------------------------------------------------

interface IpAddr {
  ifname: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}
interface IpRoute {
  dst?: string;
  type?: string;
}

/**
 * CIDRs of every IPv4 address (as its network: 192.168.1.7/24 -> 192.168.1.0/24) and every
 * IPv4 route destination of the main table (a host route gives a.b.c.d/32) in the current
 * namespace (or hostNetns). 'default' is left out. Sorted, without duplicates.
 */
export async function usedPrefixes(hostNetns?: string): Promise<string[]> {
  const out = new Set<string>();
  const addrs = await ipJson<IpAddr[]>(['-4', 'addr', 'show'], hostNetns);
  for (const a of addrs) {
    for (const i of a.addr_info ?? []) {
      if (i.family && i.family !== 'inet') continue;
      if (!i.local || i.prefixlen === undefined) continue;
      out.add(`${formatIp(parseIp(i.local) & maskOf(i.prefixlen))}/${i.prefixlen}`);
    }
  }
  const routes = await ipJson<IpRoute[]>(['-4', 'route', 'show'], hostNetns);
  for (const r of routes) {
    if (!r.dst || r.dst === 'default') continue;
    const [addr, len] = r.dst.split('/');
    const prefixLen = len === undefined ? 32 : Number(len);
    try {
      out.add(`${formatIp(parseIp(addr) & maskOf(prefixLen))}/${prefixLen}`);
    } catch {
      // not a plain IPv4 destination: ignore
    }
  }
  return [...out].sort();
}

// ---- processes -----------------------------------------------------------------------

/**
 * Start a command detached (own session via setsid; stdin /dev/null; stdout and stderr
 * appended to logFile): `ip netns exec NETNS CMD...`, or CMD directly when netns is null
 * (host mode). `ip netns exec` execs the command in place, so `pid` is the command's own
 * pid. Listen to child's 'exit' event for the exit code (code, or signal). The child is
 * unref()ed: it does not keep the daemon's event loop alive, and it survives the daemon.
 * Throws SystemError when the process cannot be started at all.
 */
export function spawnInNetns(
  netns: string | null,
  cmd: string[],
  logFile: string,
): { pid: number; child: ChildProcess } {
  if (cmd.length === 0) throw new SystemError('no command to run');
  if (netns !== null && !netnsExists(netns)) throw new NotFoundError(`network namespace '${netns}' does not exist`);
  let fd: number;
  try {
    fd = fs.openSync(logFile, 'a', 0o600);
  } catch (err) {
    throw new SystemError(`cannot open log file ${logFile}: ${(err as Error).message}`);
  }
  let child: ChildProcess;
  try {
    const [file, args] = netns === null ? [cmd[0], cmd.slice(1)] : [IP, ['netns', 'exec', netns, ...cmd]];
    child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd] });
  } catch (err) {
    throw new SystemError(`cannot start ${cmd[0]}: ${(err as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
  if (child.pid === undefined) {
    // The 'error' event comes on the next tick; swallow it, the caller gets this throw.
    child.on('error', () => undefined);
    throw new SystemError(`cannot start '${cmd[0]}': command not found or not executable`);
  }
  child.unref();
  return { pid: child.pid, child };
}
