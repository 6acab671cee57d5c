// The CNI protocol's own shapes (spec 1.0.0, containernetworking/cni SPEC.md): the versions
// vsw-cni speaks, the error codes and the error JSON, and the result with its conversion to
// and from the older versions runtimes still send (0.3.0, 0.3.1, 0.4.0 differ from 1.0.0
// only in `ips[].version`, which 1.0.0 dropped). Pure: no I/O.
//
// Versions before 0.3.0 (0.1.0, 0.2.0: `ip4`/`ip6` results) are not supported: the runtimes
// that matter (podman 4, containerd 1.6, CRI-O, kubelet's dockershim gone) send 0.3.1 or later.

import { compact } from '../api/request';

/** What VERSION answers, oldest first. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: CniVersion = '1.0.0';

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** CHECK came with 0.4.0; a runtime must not send it for an older configuration. */
export function allowsCheck(v: CniVersion): boolean {
  return v === '0.4.0' || v === '1.0.0';
}

/**
 * Error codes. 1-7 and 11 are the spec's ("well-known error codes"); 100 and above are
 * vsw's own, one per kind of daemon refusal (control/errors.ts codes), so a runtime's log
 * says which.
 */
export const CNI_ERR = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** The daemon refused the request as invalid (E_INVALID_ARGUMENT): an address outside the network, a bad alias... */
  VSW_INVALID: 100,
  /** The daemon found a conflict (E_CONFLICT): the address or a published port is taken, the endpoint exists with other settings. */
  VSW_CONFLICT: 101,
  /** A pool ran out (E_EXHAUSTED): no free address in the network. */
  VSW_EXHAUSTED: 102,
  /** Something the request names does not exist in the daemon (E_NOT_FOUND), or CHECK found no attachment. */
  VSW_NOT_FOUND: 103,
  /** A system command or syscall failed in the daemon (E_SYSTEM). */
  VSW_SYSTEM: 104,
  /** Any other daemon failure (E_INTERNAL). */
  VSW_INTERNAL: 105,
  /** CHECK: the container's interface is not as the attachment says (missing, other address or MAC). */
  VSW_CHECK_MISMATCH: 106,
  /** The IPAM plugin could not be run or gave an unusable answer (its own errors keep their code). */
  VSW_IPAM: 107,
} as const;

/** An error the plugin reports as the spec's error JSON. */
export class CniError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, msg: string, details = '') {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
}

/** The error result: `{cniVersion, code, msg, details}` (printed on stdout, exit non-zero). */
export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export function errorJson(e: CniError, version: string): CniErrorJson {
  const out: CniErrorJson = { cniVersion: version, code: e.code, msg: e.message };
  if (e.details !== '') out.details = e.details;
  return out;
}

// ---- the result ----------------------------------------------------------------------

export interface CniInterface {
  name: string;
  mac?: string;
  /** The container's namespace path; absent for an interface in the host's. */
  sandbox?: string;
}

/** An address, in the 1.0.0 form (no `version`). */
export interface CniIp {
  address: string;       // CIDR with the host's address: 10.89.0.5/24
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A result in vsw's internal form (1.0.0 shape, whatever version it came in or goes out as). */
export interface CniResult {
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: CniRoute[];
  dns: CniDns;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strField(o: Record<string, unknown>, k: string, where: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new CniError(CNI_ERR.DECODE, `${where}.${k} must be a string`);
  return v;
}

function strList(o: Record<string, unknown>, k: string, where: string): string[] | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new CniError(CNI_ERR.DECODE, `${where}.${k} must be an array of strings`);
  }
  return v as string[];
}

/**
 * Read a result of any supported version (a prevResult, an IPAM plugin's answer) into the
 * internal form. `where` names it in messages ("prevResult", "the IPAM plugin's result").
 * IPv6 addresses are kept as they are (vsw itself only configures IPv4).
 */
export function parseResult(v: unknown, where: string): CniResult {
  if (!isObject(v)) throw new CniError(CNI_ERR.DECODE, `${where} must be a JSON object`);
  const list = (k: string): unknown[] => {
    const x = v[k];
    if (x === undefined || x === null) return [];
    if (!Array.isArray(x)) throw new CniError(CNI_ERR.DECODE, `${where}.${k} must be an array`);
    return x;
  };
  const interfaces = list('interfaces').map((x, i): CniInterface => {
    const w = `${where}.interfaces[${i}]`;
    if (!isObject(x)) throw new CniError(CNI_ERR.DECODE, `${w} must be an object`);
    const name = strField(x, 'name', w);
    if (name === undefined) throw new CniError(CNI_ERR.DECODE, `${w}.name is required`);
    return compact({ name, mac: strField(x, 'mac', w), sandbox: strField(x, 'sandbox', w) });
  });
  const ips = list('ips').map((x, i): CniIp => {
    const w = `${where}.ips[${i}]`;
    if (!isObject(x)) throw new CniError(CNI_ERR.DECODE, `${w} must be an object`);
    const address = strField(x, 'address', w);
    if (address === undefined) throw new CniError(CNI_ERR.DECODE, `${w}.address is required`);
    const iface = x.interface;
    if (iface !== undefined && iface !== null && !(typeof iface === 'number' && Number.isInteger(iface) && iface >= 0)) {
      throw new CniError(CNI_ERR.DECODE, `${w}.interface must be an index into interfaces`);
    }
    return compact({ address, gateway: strField(x, 'gateway', w), interface: iface ?? undefined });
  });
  const routes = list('routes').map((x, i): CniRoute => {
    const w = `${where}.routes[${i}]`;
    if (!isObject(x)) throw new CniError(CNI_ERR.DECODE, `${w} must be an object`);
    const dst = strField(x, 'dst', w);
    if (dst === undefined) throw new CniError(CNI_ERR.DECODE, `${w}.dst is required`);
    return compact({ dst, gw: strField(x, 'gw', w) });
  });
  let dns: CniDns = {};
  if (v.dns !== undefined && v.dns !== null) {
    if (!isObject(v.dns)) throw new CniError(CNI_ERR.DECODE, `${where}.dns must be an object`);
    const w = `${where}.dns`;
    dns = compact({ nameservers: strList(v.dns, 'nameservers', w), domain: strField(v.dns, 'domain', w),
      search: strList(v.dns, 'search', w), options: strList(v.dns, 'options', w) });
  }
  return { interfaces, ips, routes, dns };
}

/** The result as printed for `version`: 0.3.x and 0.4.0 carry `ips[].version` ("4"/"6"). */
export function formatResult(r: CniResult, version: CniVersion): Record<string, unknown> {
  const old = version !== '1.0.0';
  const out: Record<string, unknown> = {
    cniVersion: version,
    interfaces: r.interfaces,
    ips: r.ips.map((ip) => (old ? { version: ip.address.includes(':') ? '6' : '4', ...ip } : ip)),
  };
  if (r.routes.length > 0) out.routes = r.routes;
  out.dns = r.dns;
  return out;
}

/**
 * Chaining: what an interface-creating plugin returns when it is not first in the list. The
 * previous plugins' interfaces, addresses, routes and DNS stay; ours come after them, with
 * our address indexes moved past theirs; DNS lists are joined without repeats (ours first:
 * vsw's DNS is the one that knows the network's names).
 */
export function mergeResult(prev: CniResult, ours: CniResult): CniResult {
  const shift = prev.interfaces.length;
  const join = (a?: string[], b?: string[]): string[] | undefined => {
    const all = [...(b ?? []), ...(a ?? [])].filter((x, i, xs) => xs.indexOf(x) === i);
    return all.length > 0 ? all : undefined;
  };
  return {
    interfaces: [...prev.interfaces, ...ours.interfaces],
    ips: [...prev.ips, ...ours.ips.map((ip) => (ip.interface === undefined ? ip : { ...ip, interface: ip.interface + shift }))],
    routes: [...prev.routes, ...ours.routes.filter((r) => !prev.routes.some((p) => p.dst === r.dst && p.gw === r.gw))],
    dns: compact({
      nameservers: join(prev.dns.nameservers, ours.dns.nameservers),
      domain: prev.dns.domain ?? ours.dns.domain,
      search: join(prev.dns.search, ours.dns.search),
      options: join(prev.dns.options, ours.dns.options),
    }),
  };
}
