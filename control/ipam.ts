// IPv4 address management: strict parsing, CIDR arithmetic, network validation with a
// default-subnet pool, address allocation and the MAC-from-IP rule. Pure: no I/O.
//
// Addresses are handled as unsigned 32-bit numbers internally; the exported helpers take
// and return dotted-quad / CIDR text unless their name or type says otherwise.
//
// Reserved addresses of a network (never given to a container):
//   - the network address and the broadcast address,
//   - the gateway (default: first usable address),
//   - the host port address = the last usable address (hostPortIp): the daemon's own
//     interface on the network.
// So a /30 (two usable addresses) holds no container at all: /29 is the smallest useful
// network (6 usable: gateway, host port, 4 containers). normalizeNetwork refuses /30.
//
// Longer than most control/ files on purpose: parsing, CIDR arithmetic, normalisation and
// allocation share one vocabulary (Cidr, the reserved addresses) and are read together;
// each section below is short and pure.

import { ConflictError, ExhaustedError, InvalidArgumentError } from './errors';

export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefixLen: number;
  /** Canonical text, e.g. "10.89.0.0/24". */
  text: string;
}

export interface NetworkSpec {
  name: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  mtu?: number;
}

export interface NormalizedNetwork {
  subnet: string;
  gateway: string;
  ipRange: string;
  mtu: number;
}

export interface NormalizeContext {
  /** The other networks (name + subnet CIDR). */
  existingSubnets: { name: string; subnet: string }[];
  /** CIDRs (or plain addresses) in use in the daemon's namespace: netns.usedPrefixes(). */
  usedPrefixes: string[];
}

/**
 * Address ranges a network may not overlap: they are not unicast addresses a switch may
 * hand out (RFC 6890). The kernel treats loopback, multicast and class E specially in every
 * namespace; link-local addresses are never forwarded by a router, and hosts (and cloud
 * metadata services, 169.254.169.254) take them as on-link, so a gateway there cannot work.
 */
const UNUSABLE_RANGES: readonly [string, string][] = [
  ['0.0.0.0/8', '"this network"'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved, and the limited broadcast address'],
];

export const DEFAULT_MTU = 1500;
export const MIN_MTU = 68;
export const MAX_MTU = 65535;
/** Largest prefix length a network may have: see the header. */
export const MAX_NETWORK_PREFIX = 29;

// ---- names ---------------------------------------------------------------------------

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** True when `name` is a valid container/network name. */
export function isValidName(name: string): boolean {
  return typeof name === 'string' && NAME_RE.test(name);
}

/**
 * Check a container/network name: `^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`. Returns the name;
 * throws InvalidArgumentError otherwise. `what` names the thing in the message.
 */
export function validName(name: string, what = 'name'): string {
  if (typeof name !== 'string' || name === '') {
    throw new InvalidArgumentError(`${what} must not be empty`);
  }
  if (!NAME_RE.test(name)) {
    const shown = name.length > 80 ? `${name.slice(0, 80)}...` : name;
    throw new InvalidArgumentError(
      `invalid ${what} '${shown}': use 1 to 63 characters from [a-zA-Z0-9_.-], starting with a letter or digit`,
    );
  }
  return name;
}

// ---- addresses -----------------------------------------------------------------------

const OCTET = '(0|[1-9][0-9]{0,2})';
const IP_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** Strict dotted quad (no leading zeros, each part 0..255) -> unsigned 32-bit number. */
export function parseIp(text: string): number {
  const m = typeof text === 'string' ? IP_RE.exec(text) : null;
  if (!m) throw new InvalidArgumentError(`invalid IPv4 address '${text}'`);
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) throw new InvalidArgumentError(`invalid IPv4 address '${text}'`);
    n = n * 256 + b;
  }
  return n >>> 0;
}

/** Unsigned 32-bit number -> dotted quad. */
export function formatIp(n: number): string {
  const v = n >>> 0;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Netmask of a prefix length as an unsigned number (prefix 0 -> 0). */
export function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

function makeCidr(base: number, prefixLen: number): Cidr {
  return { base: base >>> 0, prefixLen, text: `${formatIp(base)}/${prefixLen}` };
}

/**
 * Strict CIDR "a.b.c.d/len". `maxPrefix` (default 30) is the longest prefix accepted: a
 * network needs room for a gateway and a container, so /31 and /32 are refused; pass 32
 * for an ip range. Host bits set is an error naming the right network.
 * `what` names the thing in messages ("subnet", "ip range").
 */
export function parseCidr(text: string, maxPrefix = 30, what = 'subnet'): Cidr {
  if (typeof text !== 'string') throw new InvalidArgumentError(`invalid ${what} '${text}': expected a.b.c.d/len`);
  const slash = text.indexOf('/');
  if (slash < 0) {
    throw new InvalidArgumentError(`invalid ${what} '${text}': expected CIDR notation a.b.c.d/len`);
  }
  const ipText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  if (!IP_RE.test(ipText)) throw new InvalidArgumentError(`invalid ${what} '${text}': invalid IPv4 address '${ipText}'`);
  const ip = parseIp(ipText);
  if (!/^(0|[1-9][0-9]?)$/.test(lenText) || Number(lenText) > 32) {
    throw new InvalidArgumentError(`invalid ${what} '${text}': prefix length must be a number from 1 to ${maxPrefix}`);
  }
  const prefixLen = Number(lenText);
  if (prefixLen < 1) {
    throw new InvalidArgumentError(`invalid ${what} '${text}': prefix length must be from 1 to ${maxPrefix}`);
  }
  if (prefixLen > maxPrefix) {
    const hint = maxPrefix === 30
      ? ': a network needs room for a gateway and at least one container (use /29 or shorter)'
      : '';
    throw new InvalidArgumentError(`invalid ${what} '${text}': prefix length must be at most ${maxPrefix}${hint}`);
  }
  const base = (ip & maskOf(prefixLen)) >>> 0;
  if (base !== ip) {
    throw new InvalidArgumentError(
      `${what} ${text} has host bits set; use ${formatIp(base)}/${prefixLen}`,
    );
  }
  return makeCidr(base, prefixLen);
}

/**
 * Lenient prefix parsing for what the system reports: "a.b.c.d/len" (host bits are
 * masked off) or a plain address (= /32). Returns undefined for anything else.
 */
export function parsePrefixLoose(text: string): Cidr | undefined {
  const [ipText, lenText, extra] = text.split('/');
  if (extra !== undefined || !IP_RE.test(ipText)) return undefined;
  let prefixLen = 32;
  if (lenText !== undefined) {
    if (!/^[0-9]{1,2}$/.test(lenText) || Number(lenText) > 32) return undefined;
    prefixLen = Number(lenText);
  }
  return makeCidr(parseIp(ipText) & maskOf(prefixLen), prefixLen);
}

type CidrLike = string | Cidr;
type IpLike = string | number;

function toCidr(c: CidrLike): Cidr {
  return typeof c === 'string' ? parseCidr(c, 32) : c;
}
function toIp(ip: IpLike): number {
  return typeof ip === 'string' ? parseIp(ip) : ip >>> 0;
}

/** Number of addresses in the block (2^(32-len)). */
export function size(cidr: CidrLike): number {
  return 2 ** (32 - toCidr(cidr).prefixLen);
}

function lastAddr(c: Cidr): number {
  return (c.base + 2 ** (32 - c.prefixLen) - 1) >>> 0;
}

/** True when `ip` is inside `cidr` (network and broadcast addresses included). */
export function cidrContains(cidr: CidrLike, ip: IpLike): boolean {
  const c = toCidr(cidr);
  return ((toIp(ip) & maskOf(c.prefixLen)) >>> 0) === c.base;
}

/** True when the blocks share at least one address. */
export function cidrOverlaps(a: CidrLike, b: CidrLike): boolean {
  const x = toCidr(a);
  const y = toCidr(b);
  const len = Math.min(x.prefixLen, y.prefixLen);
  return ((x.base & maskOf(len)) >>> 0) === ((y.base & maskOf(len)) >>> 0);
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrInside(inner: CidrLike, outer: CidrLike): boolean {
  const i = toCidr(inner);
  const o = toCidr(outer);
  return i.prefixLen >= o.prefixLen && cidrContains(o, i.base);
}

/** The network address (dotted quad). */
export function networkAddress(cidr: CidrLike): string {
  return formatIp(toCidr(cidr).base);
}

/** The broadcast address (dotted quad). */
export function broadcast(cidr: CidrLike): string {
  return formatIp(lastAddr(toCidr(cidr)));
}

/** First address after the network address (dotted quad). */
export function firstUsable(cidr: CidrLike): string {
  return formatIp(toCidr(cidr).base + 1);
}

/** Last address before the broadcast address (dotted quad). */
export function lastUsable(cidr: CidrLike): string {
  return formatIp(lastAddr(toCidr(cidr)) - 1);
}

/** The daemon's host port address on a network: the subnet's last usable address. */
export function hostPortIp(subnet: CidrLike): string {
  return lastUsable(subnet);
}

/** Docker's rule: 02:42 + the four address bytes (172.17.0.2 -> 02:42:ac:11:00:02). */
export function macFromIp(ip: IpLike): string {
  const n = toIp(ip);
  const bytes = [0x02, 0x42, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

// ---- networks ------------------------------------------------------------------------

/**
 * The pool default subnets come from, in order: 10.89.0.0/24, 10.89.1.0/24, ...,
 * 10.95.255.0/24 (1792 networks). Chosen to dodge the usual clashes:
 *   - 172.17.0.0/16 (docker0) and 172.18-31.x (Docker's network pool) on Docker hosts,
 *   - 192.168.x.0/24 on home and office LANs,
 *   - 10.0.x.0 (and 10.1, 10.10...) on cloud VPCs and VPNs,
 *   - 10.96.0.0/12 (Kubernetes services) and 10.244.0.0/16 (flannel pods).
 * Candidates that overlap an existing network or a prefix the daemon's namespace already
 * uses (address or route) are skipped. Used prefixes shorter than /8 (e.g. OpenVPN's
 * 0.0.0.0/1 + 128.0.0.0/1 "def1" routes) are ignored: they are default routes in disguise
 * and would make every candidate look taken.
 */
export const DEFAULT_POOL_FIRST = '10.89.0.0/24';
const POOL_START = parseIp('10.89.0.0');
const POOL_COUNT = 7 * 256;
const POOL_PREFIX = 24;
const MIN_USED_PREFIX = 8;

/** Every candidate of the default pool, in order (for tests and messages). */
export function defaultSubnetCandidates(): string[] {
  const out: string[] = [];
  for (let i = 0; i < POOL_COUNT; i++) out.push(`${formatIp(POOL_START + i * 256)}/${POOL_PREFIX}`);
  return out;
}

/**
 * Validate a network request and fill in the defaults:
 *  - name: validName;
 *  - subnet: given -> strict CIDR, prefix <= /29, must not overlap another network
 *    (ConflictError naming it; used prefixes are NOT checked for an explicit subnet: the
 *    user asked for it); absent -> the first pool candidate free of other networks and used
 *    prefixes (ExhaustedError when none);
 *  - gateway: default first usable; must be inside the subnet and not its network or
 *    broadcast address (it may be the host port address);
 *  - ipRange: default the subnet; must be inside the subnet and leave at least one address
 *    for containers;
 *  - mtu: default 1500, integer 68..65535.
 * gateway / ipRange without subnet is an error (like Docker).
 */
export function normalizeNetwork(spec: NetworkSpec, ctx: NormalizeContext): NormalizedNetwork {
  const name = validName(spec.name, 'network name');
  for (const e of ctx.existingSubnets) {
    if (e.name === name) throw new ConflictError(`network '${name}' already exists`);
  }
  const others = ctx.existingSubnets.map((e) => ({ name: e.name, cidr: parsePrefixLoose(e.subnet) }));

  // mtu
  let mtu = DEFAULT_MTU;
  if (spec.mtu !== undefined && spec.mtu !== null) {
    if (typeof spec.mtu !== 'number' || !Number.isInteger(spec.mtu) || spec.mtu < MIN_MTU || spec.mtu > MAX_MTU) {
      throw new InvalidArgumentError(`invalid mtu '${spec.mtu}': must be an integer from ${MIN_MTU} to ${MAX_MTU}`);
    }
    mtu = spec.mtu;
  }

  // subnet
  let subnet: Cidr;
  if (spec.subnet !== undefined && spec.subnet !== '') {
    subnet = parseCidr(spec.subnet, 30, 'subnet');
    if (subnet.prefixLen > MAX_NETWORK_PREFIX) {
      throw new InvalidArgumentError(
        `subnet ${subnet.text} is too small: its 2 usable addresses go to the gateway and the host port, ` +
          `leaving none for containers; use /${MAX_NETWORK_PREFIX} or larger`,
      );
    }
    for (const [range, why] of UNUSABLE_RANGES) {
      if (cidrOverlaps(range, subnet)) {
        throw new InvalidArgumentError(`subnet ${subnet.text} overlaps ${range} (${why}): containers cannot use it`);
      }
    }
    for (const o of others) {
      if (o.cidr && cidrOverlaps(o.cidr, subnet)) {
        throw new ConflictError(`subnet ${subnet.text} overlaps network '${o.name}' (${o.cidr.text})`);
      }
    }
  } else {
    if (spec.gateway || spec.ipRange) {
      throw new InvalidArgumentError(`${spec.gateway ? 'gateway' : 'ip range'} requires a subnet`);
    }
    const taken: Cidr[] = [];
    for (const o of others) if (o.cidr) taken.push(o.cidr);
    for (const p of ctx.usedPrefixes) {
      const c = parsePrefixLoose(p);
      if (c && c.prefixLen >= MIN_USED_PREFIX) taken.push(c);
    }
    let found: Cidr | undefined;
    for (let i = 0; i < POOL_COUNT && !found; i++) {
      const cand = makeCidr(POOL_START + i * 256, POOL_PREFIX);
      if (!taken.some((t) => cidrOverlaps(t, cand))) found = cand;
    }
    if (!found) {
      throw new ExhaustedError(
        `no free subnet left in the default pool (10.89.0.0/24 to 10.95.255.0/24): give a subnet explicitly`,
      );
    }
    subnet = found;
  }

  const netAddr = subnet.base;
  const bcast = lastAddr(subnet);

  // gateway
  let gateway: number;
  if (spec.gateway !== undefined && spec.gateway !== '') {
    gateway = parseIp(spec.gateway);
    if (!cidrContains(subnet, gateway)) {
      throw new InvalidArgumentError(`gateway ${spec.gateway} is not inside subnet ${subnet.text}`);
    }
    if (gateway === netAddr || gateway === bcast) {
      throw new InvalidArgumentError(
        `gateway ${spec.gateway} is the ${gateway === netAddr ? 'network' : 'broadcast'} address of subnet ${subnet.text}`,
      );
    }
    if (gateway === bcast - 1) {
      throw new InvalidArgumentError(
        `gateway ${spec.gateway} is the host port address of subnet ${subnet.text} (its last usable address): pick another`,
      );
    }
  } else {
    gateway = netAddr + 1;
  }

  // ip range
  let ipRange: Cidr = subnet;
  if (spec.ipRange !== undefined && spec.ipRange !== '') {
    ipRange = parseCidr(spec.ipRange, 32, 'ip range');
    if (!cidrInside(ipRange, subnet)) {
      throw new InvalidArgumentError(`ip range ${ipRange.text} is not inside subnet ${subnet.text}`);
    }
  }
  const net = { subnet: subnet.text, gateway: formatIp(gateway), ipRange: ipRange.text };
  if (firstFree(net, new Map()) === undefined) {
    throw new InvalidArgumentError(
      `ip range ${ipRange.text} leaves no address for containers (network, broadcast, gateway ` +
        `${net.gateway} and host port ${hostPortIp(subnet)} are reserved)`,
    );
  }
  return { ...net, mtu };
}

// ---- allocation ----------------------------------------------------------------------

export interface AllocNetwork {
  subnet: string;
  gateway: string;
  /** Containers get addresses from here when none is requested. Default: the subnet. */
  ipRange?: string;
}

/** Addresses in use: a Map ip -> owner (for messages) or a plain Set of ips. */
export type UsedAddresses = ReadonlyMap<string, string> | ReadonlySet<string>;

function ownerOf(used: UsedAddresses, ip: string): string | undefined {
  if (used instanceof Map) return used.get(ip);
  return used.has(ip) ? '' : undefined;
}

/** Why `ip` cannot go to a container, or undefined when it is not reserved. */
export function reservedReason(net: AllocNetwork, ip: IpLike): string | undefined {
  const subnet = parseCidr(net.subnet, 32);
  const n = toIp(ip);
  if (n === subnet.base) return `the network address of ${subnet.text}`;
  if (n === lastAddr(subnet)) return `the broadcast address of ${subnet.text}`;
  if (n === parseIp(net.gateway)) return `the gateway of ${subnet.text}`;
  if (n === lastAddr(subnet) - 1) return `the host port address of ${subnet.text}`;
  return undefined;
}

function firstFree(net: AllocNetwork, used: UsedAddresses): string | undefined {
  const subnet = parseCidr(net.subnet, 32);
  const range = net.ipRange ? parseCidr(net.ipRange, 32) : subnet;
  const gw = parseIp(net.gateway);
  const lo = Math.max(subnet.base + 1, range.base);
  const hi = Math.min(lastAddr(subnet) - 2, lastAddr(range)); // -1 broadcast, -2 host port
  for (let n = lo; n <= hi; n++) {
    if (n === gw) continue;
    const text = formatIp(n);
    if (ownerOf(used, text) === undefined) return text;
  }
  return undefined;
}

/**
 * Pick a container address.
 *  - requested: must be a valid address inside the subnet (like Docker, it need not be
 *    inside ipRange), not reserved (network/broadcast -> InvalidArgumentError, gateway/host
 *    port -> ConflictError), not in `used` (ConflictError "address X is already in use by
 *    OWNER");
 *  - otherwise: the lowest free, non-reserved address of ipRange (default the subnet);
 *    ExhaustedError when none is left.
 */
export function allocateIp(net: AllocNetwork, used: UsedAddresses, requested?: string): string {
  const subnet = parseCidr(net.subnet, 32);
  if (requested !== undefined && requested !== '') {
    const n = parseIp(requested);
    const text = formatIp(n);
    if (!cidrContains(subnet, n)) {
      throw new InvalidArgumentError(`address ${text} is not inside subnet ${subnet.text}`);
    }
    if (n === subnet.base || n === lastAddr(subnet)) {
      throw new InvalidArgumentError(`address ${text} is ${reservedReason(net, n)}`);
    }
    const why = reservedReason(net, n);
    if (why) throw new ConflictError(`address ${text} is reserved: it is ${why}`);
    const owner = ownerOf(used, text);
    if (owner !== undefined) {
      throw new ConflictError(`address ${text} is already in use${owner ? ` by ${owner}` : ''}`);
    }
    return text;
  }
  const ip = firstFree(net, used);
  if (ip === undefined) {
    const where = net.ipRange && net.ipRange !== subnet.text ? `ip range ${net.ipRange} of subnet ${subnet.text}` : `subnet ${subnet.text}`;
    throw new ExhaustedError(`no free address left in ${where}`);
  }
  return ip;
}
