// The values of a container's L3 options: published ports (`-p`), DNS aliases
// (`--alias`) and links (`--link`). Parsing of the CLI text, checking of the API's JSON,
// and the Docker-style printing of a published port. Pure: no I/O.
//
// Every check throws InvalidArgumentError (400 in the API); the CLI turns the message into
// a usage error (exit 2).

import { InvalidArgumentError } from './errors';
import { formatIp, isValidName, parseIp } from './ipam';
import type { ContainerInfo, PortMapping } from './types';

/** The accepted form of `-p`, as error messages quote it. */
export const PUBLISH_FORM = '[IP:]HOSTPORT:PORT[/tcp|udp], e.g. 8080:80 or 10.89.0.1:5353:53/udp';

/** Every switch address: what `-p HOSTPORT:PORT` listens on. */
export const ANY_IP = '0.0.0.0';

/**
 * Why a host IP cannot carry a published port, or undefined: ports are published on the
 * switch's own addresses (0.0.0.0 = all of them), never on the host's loopback.
 */
export function hostIpProblem(ip: string): string | undefined {
  if (ip === ANY_IP) return undefined;
  const first = Number(ip.split('.')[0]);
  if (first === 127) return `${ip} is a loopback address: ports are published on the switch's addresses (the uplink's, a gateway's), or 0.0.0.0 for all`;
  if (first === 0 || first >= 224) return `${ip} is not a unicast address`;
  return undefined;
}

function publishError(text: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid port mapping '${text}': ${why} (expected ${PUBLISH_FORM})`);
}

/** A port number as text: 1 to 65535, digits only. */
function portNumber(text: string, whole: string, what: string): number {
  if (/^\d+-\d*$|^\d*-\d+$/.test(text)) throw publishError(whole, 'port ranges are not supported');
  if (!/^\d+$/.test(text)) {
    throw publishError(whole, text === '' ? `the ${what} is missing` : `the ${what} '${text}' is not a number`);
  }
  const n = Number(text);
  if (n < 1 || n > 65535) throw publishError(whole, `the ${what} ${n} is not from 1 to 65535`);
  return n;
}

/**
 * `-p [IP:]HOSTPORT:PORT[/tcp|udp]` -> a PortMapping (IP default 0.0.0.0, protocol default
 * tcp). Refused: a missing host port (no random host ports), port ranges, IPv6, other
 * protocols, anything else.
 */
export function parsePublish(text: string): PortMapping {
  const whole = text;
  let rest = text.trim();
  if (rest === '') throw publishError(whole, 'it is empty');
  if (rest.includes('[') || (rest.match(/:/g) ?? []).length > 2) {
    throw publishError(whole, 'IPv6 addresses are not supported');
  }
  let proto: 'tcp' | 'udp' = 'tcp';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') {
      throw publishError(whole, p === '' ? 'the protocol is missing after /' : `the protocol '${rest.slice(slash + 1)}' is not tcp or udp`);
    }
    proto = p;
    rest = rest.slice(0, slash);
  }
  const parts = rest.split(':');
  if (parts.length === 1) {
    throw publishError(whole, 'the host port is missing (random host ports are not supported)');
  }
  let hostIp = ANY_IP;
  if (parts.length === 3) {
    const ipText = parts.shift()!;
    if (ipText === '') throw publishError(whole, 'the IP address is empty');
    try {
      hostIp = formatIp(parseIp(ipText));
    } catch {
      throw publishError(whole, `'${ipText}' is not an IPv4 address`);
    }
    const problem = hostIpProblem(hostIp);
    if (problem) throw publishError(whole, problem);
  }
  const hostPort = portNumber(parts[0], whole, 'host port');
  const containerPort = portNumber(parts[1], whole, 'container port');
  return { hostIp, hostPort, containerPort, proto };
}

/** Two mappings that cannot both exist: same protocol and host port, and the same IP or one is 0.0.0.0. */
export function publishClash(a: PortMapping, b: PortMapping): boolean {
  return a.proto === b.proto && a.hostPort === b.hostPort &&
    (a.hostIp === b.hostIp || a.hostIp === ANY_IP || b.hostIp === ANY_IP);
}

/** The first pair of clashing mappings of a list, as a message; undefined when none clash. */
export function publishConflict(ms: PortMapping[]): string | undefined {
  for (let i = 0; i < ms.length; i++) {
    for (let j = i + 1; j < ms.length; j++) {
      if (publishClash(ms[i], ms[j])) {
        return `host port ${ms[j].hostPort}/${ms[j].proto} is published twice (${hostSide(ms[i])} and ${hostSide(ms[j])})`;
      }
    }
  }
  return undefined;
}

function hostSide(m: PortMapping, hostIp = m.hostIp): string {
  return `${hostIp}:${m.hostPort}`;
}

/** `vsw ps`'s PORTS entry, as Docker prints it: `0.0.0.0:8080->80/tcp`. */
export function formatPublish(m: PortMapping): string {
  return `${hostSide(m)}->${m.containerPort}/${m.proto}`;
}

/** `vsw ps`'s PORTS column: `0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp` ('' when none). */
export function portsText(c: Pick<ContainerInfo, 'ports'>): string {
  return (c.ports ?? []).map(formatPublish).join(', ');
}

/**
 * `vsw port`'s line, as Docker prints it: `80/tcp -> 198.51.100.2:8080`. A mapping on
 * every address (0.0.0.0) shows `uplinkIp` when the daemon has an uplink.
 */
export function formatPortLine(m: PortMapping, uplinkIp?: string): string {
  const ip = m.hostIp === ANY_IP && uplinkIp ? uplinkIp : m.hostIp;
  return `${m.containerPort}/${m.proto} -> ${hostSide(m, ip)}`;
}

// ---------------------------------------------------------------------------------------
// DNS names: --alias NAME, --link NAME[:ALIAS]

const LABEL_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** The rule aliases follow, as error messages quote it. */
export const ALIAS_RULE = "dot-separated labels of 1 to 63 letters, digits, '-' or '_' (not starting or ending with '-'), 253 characters at most";

/** A DNS name for --alias / a link alias: returns it, or throws saying what is wrong. */
export function checkAlias(name: string, what = 'alias'): string {
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError(`${what} must not be empty`);
  const shown = name.length > 80 ? `${name.slice(0, 80)}...` : name;
  if (name.length > 253 || !name.split('.').every((l) => LABEL_RE.test(l))) {
    throw new InvalidArgumentError(`invalid ${what} '${shown}': use ${ALIAS_RULE}`);
  }
  return name;
}

export interface Link { name: string; alias?: string }

/** `--link NAME[:ALIAS]`: NAME is a container name, ALIAS a DNS name. */
export function parseLink(text: string): Link {
  const colon = text.indexOf(':');
  const name = colon < 0 ? text : text.slice(0, colon);
  if (!isValidName(name)) {
    throw new InvalidArgumentError(
      `invalid link '${text}': '${name}' is not a container name (expected NAME[:ALIAS], e.g. db or db:database)`,
    );
  }
  if (colon < 0) return { name };
  return { name, alias: checkAlias(text.slice(colon + 1), 'link alias') };
}

// ---------------------------------------------------------------------------------------
// The API's JSON (control/api/request.ts): shapes and ranges, with the field named in messages.

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownFields(o: Record<string, unknown>, known: string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new InvalidArgumentError(`unknown field '${where}.${k}' (expected: ${known.join(', ')})`);
  }
}

/** `publish` of a ContainerCreate: hostIp defaults to 0.0.0.0, proto to tcp. */
export function checkPublishJson(v: unknown, field = 'publish'): PortMapping[] {
  if (!Array.isArray(v)) throw new InvalidArgumentError(`field '${field}' must be an array of port mappings`);
  const out = v.map((m, i): PortMapping => {
    const where = `${field}[${i}]`;
    if (!isObject(m)) throw new InvalidArgumentError(`field '${where}' must be an object {hostIp?, hostPort, containerPort, proto?}`);
    unknownFields(m, ['hostIp', 'hostPort', 'containerPort', 'proto'], where);
    const port = (k: string): number => {
      const p = m[k];
      if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) {
        throw new InvalidArgumentError(`field '${where}.${k}' must be an integer from 1 to 65535`);
      }
      return p;
    };
    let hostIp = ANY_IP;
    if (m.hostIp !== undefined && m.hostIp !== null) {
      if (typeof m.hostIp !== 'string') throw new InvalidArgumentError(`field '${where}.hostIp' must be a string`);
      try {
        hostIp = formatIp(parseIp(m.hostIp));
      } catch {
        throw new InvalidArgumentError(`field '${where}.hostIp': '${m.hostIp}' is not an IPv4 address`);
      }
      const problem = hostIpProblem(hostIp);
      if (problem) throw new InvalidArgumentError(`field '${where}.hostIp': ${problem}`);
    }
    const proto = m.proto ?? 'tcp';
    if (proto !== 'tcp' && proto !== 'udp') throw new InvalidArgumentError(`field '${where}.proto' must be 'tcp' or 'udp'`);
    return { hostIp, hostPort: port('hostPort'), containerPort: port('containerPort'), proto };
  });
  const clash = publishConflict(out);
  if (clash) throw new InvalidArgumentError(clash);
  return out;
}

/** `aliases` of a ContainerCreate or a connect: DNS names (checkAlias). */
export function checkAliasesJson(v: unknown, field = 'aliases'): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new InvalidArgumentError(`field '${field}' must be an array of strings`);
  }
  return v.map((a: string) => checkAlias(a));
}

/** `links` of a ContainerCreate: [{name, alias?}]. */
export function checkLinksJson(v: unknown, field = 'links'): Link[] {
  if (!Array.isArray(v)) throw new InvalidArgumentError(`field '${field}' must be an array of {name, alias?}`);
  return v.map((l, i): Link => {
    const where = `${field}[${i}]`;
    if (!isObject(l)) throw new InvalidArgumentError(`field '${where}' must be an object {name, alias?}`);
    unknownFields(l, ['name', 'alias'], where);
    if (typeof l.name !== 'string' || !isValidName(l.name)) {
      throw new InvalidArgumentError(`field '${where}.name' must be a container name`);
    }
    if (l.alias === undefined || l.alias === null) return { name: l.name };
    if (typeof l.alias !== 'string') throw new InvalidArgumentError(`field '${where}.alias' must be a string`);
    return { name: l.name, alias: checkAlias(l.alias, 'link alias') };
  });
}
