// The CLI's option value parsers, one module for every command group. A throw here is a
// usage error (exit 2); commander prints the message after naming the option.

import { InvalidArgumentError as OptionValueError, Option } from 'commander';
import { parseMetricsAddr } from '../metrics';
import { STAGE_CHOICES, stageIndex } from '../../dataplane/stages/names';
import { formatIp, maskOf, parseIp } from '../ipam';
import { DNS_ORDERS, type DnsOrder } from '../types';

export type Format = 'table' | 'json';

export function integer(min?: number, max?: number): (v: string) => number {
  return (v: string): number => {
    if (!/^[+-]?\d+$/.test(v.trim())) throw new OptionValueError('Not an integer.');
    const n = Number(v);
    if ((min !== undefined && n < min) || (max !== undefined && n > max)) {
      throw new OptionValueError(max === undefined ? `Must be at least ${min}.` : `Must be from ${min} to ${max}.`);
    }
    return n;
  };
}

export function nonEmpty(what: string): (v: string) => string {
  return (v: string): string => {
    if (v.trim() === '') throw new OptionValueError(`${what} must not be empty.`);
    return v;
  };
}

/** --filter EXPR: checked here (a usage error names the column); the daemon checks again. */
export function filterExpr(v: string): string {
  return checked((x) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('../../dataplane/filter') as typeof import('../../dataplane/filter')).compileFilter(x);
    return x;
  }, (m) => `${m}.`)(v);
}

export function stageName(v: string): string {
  if (stageIndex(v) < 0) throw new OptionValueError(`Not a stage: one of ${STAGE_CHOICES.join(', ')}.`);
  return v;
}

/** --metrics ADDR: HOST:PORT or :PORT (control/metrics.ts parses it; prom-client is not loaded). */
export function metricsAddr(v: string): string {
  return checked((x) => { parseMetricsAddr(x); return x; }, (m) => `${m}.`)(v);
}

/**
 * An option parser from a checker that throws: its message becomes the usage error. By
 * default (a VswError from ipam/publish) without the "invalid X 'VALUE': " that commander
 * already says, capitalised; `say` words it otherwise.
 */
export function checked<T>(check: (v: string) => T, say: (message: string) => string = usageSentence): (v: string) => T {
  return (v: string): T => {
    try {
      return check(v);
    } catch (e) {
      throw new OptionValueError(say((e as Error).message));
    }
  };
}

function usageSentence(message: string): string {
  const m = message.replace(/^invalid [^']*'[^']*': /, '');
  return `${m.charAt(0).toUpperCase()}${m.slice(1)}${m.endsWith('.') ? '' : '.'}`;
}

/** A repeatable option: every value checked, collected in order. */
export function repeatable<T>(check: (v: string) => T): (v: string, previous?: T[]) => T[] {
  const one = checked(check);
  return (v: string, previous?: T[]): T[] => [...(previous ?? []), one(v)];
}

/** `true` or `false` (any case), for --icc. */
export function bool(v: string): boolean {
  const s = v.trim().toLowerCase();
  if (s === 'true') return true;
  if (s === 'false') return false;
  throw new OptionValueError('Expected true or false.');
}

/** --dns-order: rotate, random or fixed (as commander's choices say it, without the help clutter). */
export function dnsOrder(v: string): DnsOrder {
  if (!DNS_ORDERS.includes(v as DnsOrder)) throw new OptionValueError(`Allowed choices are ${DNS_ORDERS.join(', ')}.`);
  return v as DnsOrder;
}

/** A strict IPv4 address (no prefix). */
export function ipv4(what: string): (v: string) => string {
  return (v: string): string => {
    try {
      return formatIp(parseIp(v));
    } catch {
      throw new OptionValueError(`Expected ${what}, an IPv4 address like 198.51.100.1.`);
    }
  };
}

/** What the kernel takes as an interface name (dev_valid_name): 1 to 15 bytes, no '/', ':' or space. */
export function ifName(v: string): string {
  if (v === '' || v === '.' || v === '..' || Buffer.byteLength(v) > 15 || /[/:\s]/.test(v)) {
    throw new OptionValueError("Expected an interface name: 1 to 15 characters, without '/', ':' or spaces.");
  }
  return v;
}

const UPLINK_IP_FORM = 'an IPv4 address with its prefix length, e.g. 198.51.100.2/24';

/** --uplink-ip: the switch's own address on the uplink, with the prefix (host bits set). */
export function parseUplinkIp(v: string): { ip: number; prefixLen: number; text: string } {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(v);
  let ip: number;
  try {
    if (!m) throw new Error();
    ip = parseIp(m[1]);
  } catch {
    throw new OptionValueError(`Expected ${UPLINK_IP_FORM}.`);
  }
  const prefixLen = Number(m[2]);
  if (prefixLen < 1 || prefixLen > 32) throw new OptionValueError(`The prefix length must be from 1 to 32 (expected ${UPLINK_IP_FORM}).`);
  const first = ip >>> 24;
  if (first === 0 || first === 127 || first >= 224) {
    throw new OptionValueError(`${m[1]} is not a unicast address (expected ${UPLINK_IP_FORM}).`);
  }
  if (prefixLen <= 30) {
    const base = (ip & maskOf(prefixLen)) >>> 0;
    const last = (base + 2 ** (32 - prefixLen) - 1) >>> 0;
    const subnet = `${formatIp(base)}/${prefixLen}`;
    if (ip === base) throw new OptionValueError(`${m[1]} is the network address of ${subnet}: give the switch's own address, e.g. ${formatIp(base + 2)}/${prefixLen}.`);
    if (ip === last) throw new OptionValueError(`${m[1]} is the broadcast address of ${subnet}.`);
  }
  return { ip, prefixLen, text: `${formatIp(ip)}/${prefixLen}` };
}

/**
 * --uplink, --uplink-ip and --uplink-gateway go together, and the gateway is a usable
 * address of the uplink subnet other than the switch's own. Returns what is wrong, if anything.
 */
export function uplinkProblem(o: { uplink?: string; uplinkIp?: string; uplinkGateway?: string }): string | undefined {
  const given = [o.uplink, o.uplinkIp, o.uplinkGateway].filter((x) => x !== undefined).length;
  if (given === 0) return undefined;
  if (o.uplink === undefined) return '--uplink-ip and --uplink-gateway need --uplink DEV (all three go together)';
  if (given < 3) {
    const missing = [o.uplinkIp === undefined ? '--uplink-ip CIDR' : '', o.uplinkGateway === undefined ? '--uplink-gateway IP' : '']
      .filter((x) => x).join(' and ');
    return `--uplink needs ${missing} (all three go together)`;
  }
  const own = parseUplinkIp(o.uplinkIp!);
  const gw = parseIp(o.uplinkGateway!);
  const mask = maskOf(own.prefixLen);
  const base = (own.ip & mask) >>> 0;
  const subnet = `${formatIp(base)}/${own.prefixLen}`;
  if (((gw & mask) >>> 0) !== base) {
    return `--uplink-gateway ${o.uplinkGateway} is not inside the uplink subnet ${subnet} (of --uplink-ip ${o.uplinkIp})`;
  }
  if (gw === own.ip) return `--uplink-gateway ${o.uplinkGateway} is the switch's own uplink address (--uplink-ip): give the next hop's`;
  if (own.prefixLen <= 30 && (gw === base || gw === ((base + 2 ** (32 - own.prefixLen) - 1) >>> 0))) {
    return `--uplink-gateway ${o.uplinkGateway} is the ${gw === base ? 'network' : 'broadcast'} address of ${subnet}`;
  }
  return undefined;
}

/** --dns IP[:PORT]: an IPv4 resolver, port 53 unless given. Returns the text as given. */
export function parseDnsServer(v: string): string {
  const m = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(v);
  let ok = m !== null;
  if (m) {
    try { parseIp(m[1]); } catch { ok = false; }
    if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) ok = false;
  }
  if (!ok) {
    throw new OptionValueError('Expected IP[:PORT]: an IPv4 address and optionally a port from 1 to 65535, e.g. 1.1.1.1 or 10.0.0.53:5353.');
  }
  return v;
}

/** `vsw port NAME [PORT[/PROTO]]`'s filter: PORT alone means PORT/tcp, as in Docker. */
export function portFilter(v: string): { port: number; proto: 'tcp' | 'udp' } {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(v);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) {
    throw new OptionValueError('Expected PORT[/tcp|udp], e.g. 80 or 53/udp.');
  }
  return { port: Number(m[1]), proto: (m[2]?.toLowerCase() ?? 'tcp') as 'tcp' | 'udp' };
}

export function formatOption(): Option {
  return new Option('--format <format>', 'output format: table or json').choices(['table', 'json']).default('table');
}
