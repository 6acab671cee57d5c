// Reading a request: the path, the query, the body (bounded) and its JSON fields, checked
// with messages that name the field. The engine sees exactly what the client sent.

import * as http from 'http';
import { InvalidArgumentError } from '../errors';
import { checkAliasesJson, checkLinksJson, checkPublishJson } from '../publish';
import { DNS_ORDERS, type ContainerCreate, type DnsOrder, type NetworkCreate, type TrunkCreate, type VxlanCreate } from '../types';
import { HttpError, notFound } from './answer';
import { IMPAIR_DIRECTIONS, IMPAIR_FIELDS, type ImpairDirection, type ImpairRequest } from '../impair';

/** Largest request body accepted (413 beyond). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** ?count=N: a whole number (0 or absent = no limit). */
export function countParam(url: URL): number {
  const text = url.searchParams.get('count') ?? '0';
  if (!/^\d{1,9}$/.test(text)) throw new InvalidArgumentError("query parameter 'count' must be a whole number");
  return Number(text);
}

/** '/networks/my%20net/connect' -> ['networks', 'my net', 'connect'] (one trailing '/' allowed). */
export function splitPath(pathname: string): string[] {
  let p = pathname;
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p === '/' || p === '') return [];
  const segs = p.slice(1).split('/');
  return segs.map((s) => {
    if (s === '') throw notFound(pathname);
    try {
      return decodeURIComponent(s);
    } catch {
      throw new InvalidArgumentError(`malformed URL encoding in ${pathname}`);
    }
  });
}

/** The whole body as a string (max MAX_BODY_BYTES; beyond: drain it, then 413). */
export function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      if (!tooLarge) chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) {
        reject(new HttpError(`request body too large (max ${MAX_BODY_BYTES} bytes)`, 'E_INVALID_ARGUMENT', 413));
      } else {
        resolve(Buffer.concat(chunks).toString('utf8'));
      }
    });
    req.on('error', reject);
  });
}

export function parseJsonObject(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InvalidArgumentError('request body must be a JSON object');
  }
  return v as Record<string, unknown>;
}

export function checkFields(b: Record<string, unknown>, known: string[]): void {
  for (const k of Object.keys(b)) {
    if (!known.includes(k)) throw new InvalidArgumentError(`unknown field '${k}' (expected: ${known.join(', ')})`);
  }
}

export function reqString(b: Record<string, unknown>, field: string): string {
  const v = b[field];
  if (v === undefined || v === null) throw new InvalidArgumentError(`field '${field}' is required`);
  if (typeof v !== 'string') throw new InvalidArgumentError(`field '${field}' must be a string`);
  if (v === '') throw new InvalidArgumentError(`field '${field}' must not be empty`);
  return v;
}

export function optString(b: Record<string, unknown>, field: string): string | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new InvalidArgumentError(`field '${field}' must be a string`);
  return v;
}

export function optBool(b: Record<string, unknown>, field: string): boolean | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`field '${field}' must be a boolean`);
  return v;
}

export function optInt(b: Record<string, unknown>, field: string): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new InvalidArgumentError(`field '${field}' must be an integer`);
  return v;
}

export function optStringArray(b: Record<string, unknown>, field: string): string[] | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new InvalidArgumentError(`field '${field}' must be an array of strings`);
  }
  return v as string[];
}

/** Drop absent optional fields so the engine sees exactly what the client sent. */
export function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}

export function networkCreate(b: Record<string, unknown>): NetworkCreate {
  checkFields(b, ['name', 'subnet', 'gateway', 'ipRange', 'mtu', 'internal', 'icc', 'dnsOrder', 'vlan',
    'portSecurity', 'vxlan']);
  const dnsOrder = optString(b, 'dnsOrder');
  if (dnsOrder !== undefined && !DNS_ORDERS.includes(dnsOrder as DnsOrder)) {
    throw new InvalidArgumentError(`field 'dnsOrder' must be one of ${DNS_ORDERS.join(', ')}`);
  }
  return compact<NetworkCreate>({
    name: reqString(b, 'name'),
    subnet: optString(b, 'subnet'),
    gateway: optString(b, 'gateway'),
    ipRange: optString(b, 'ipRange'),
    mtu: optInt(b, 'mtu'),
    internal: optBool(b, 'internal'),
    icc: optBool(b, 'icc'),
    dnsOrder: dnsOrder as DnsOrder | undefined,
    vlan: optInt(b, 'vlan'),
    portSecurity: optBool(b, 'portSecurity'),
    vxlan: b.vxlan === undefined || b.vxlan === null ? undefined : vxlanCreate(b.vxlan),
  });
}

/** The `vxlan` field of a network create (docs/VXLAN.md). */
function vxlanCreate(v: unknown): VxlanCreate {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError("field 'vxlan' must be an object");
  const b = v as Record<string, unknown>;
  checkFields(b, ['vni', 'port', 'underlayIp', 'peers', 'arpProxy']);
  const vni = optInt(b, 'vni');
  if (vni === undefined) throw new InvalidArgumentError("field 'vxlan.vni' is required");
  return compact<VxlanCreate>({ vni, port: optInt(b, 'port'), underlayIp: optString(b, 'underlayIp'), peers: optStringArray(b, 'peers'), arpProxy: optBool(b, 'arpProxy') });
}

export function trunkCreate(b: Record<string, unknown>): TrunkCreate {
  checkFields(b, ['device', 'vlans', 'native', 'tap']);
  return compact<TrunkCreate>({
    device: reqString(b, 'device'),
    vlans: optString(b, 'vlans'),
    native: optInt(b, 'native'),
    tap: optBool(b, 'tap'),
  });
}

/** POST /impair: the fields as text (the engine parses their units: control/impair.ts). */
export function impairRequest(b: Record<string, unknown>): ImpairRequest {
  checkFields(b, [...IMPAIR_FIELDS]);
  const direction = optString(b, 'direction');
  if (direction !== undefined && !IMPAIR_DIRECTIONS.includes(direction as ImpairDirection)) {
    throw new InvalidArgumentError(`field 'direction' must be one of ${IMPAIR_DIRECTIONS.join(', ')}`);
  }
  return compact<ImpairRequest>({
    port: reqString(b, 'port'),
    direction: direction as ImpairDirection | undefined,
    delay: optString(b, 'delay'), jitter: optString(b, 'jitter'), distribution: optString(b, 'distribution'),
    loss: optString(b, 'loss'), lossModel: optString(b, 'lossModel'), duplicate: optString(b, 'duplicate'),
    corrupt: optString(b, 'corrupt'), reorder: optString(b, 'reorder'), gap: optInt(b, 'gap'),
    rate: optString(b, 'rate'), burst: optString(b, 'burst'), limit: optInt(b, 'limit'), seed: optInt(b, 'seed'),
  });
}

/** publish/aliases/links are checked here (shapes, port ranges, DNS names): the engine gets
 *  PortMappings with hostIp and proto filled in. */
export function containerCreate(b: Record<string, unknown>): ContainerCreate {
  checkFields(b, ['name', 'network', 'ip', 'cmd', 'detach', 'rm', 'publish', 'aliases', 'links']);
  const opt = <T>(field: string, check: (v: unknown) => T): T | undefined =>
    (b[field] === undefined || b[field] === null ? undefined : check(b[field]));
  return compact<ContainerCreate>({
    name: reqString(b, 'name'),
    network: optString(b, 'network'),
    ip: optString(b, 'ip'),
    cmd: optStringArray(b, 'cmd'),
    detach: optBool(b, 'detach'),
    rm: optBool(b, 'rm'),
    publish: opt('publish', checkPublishJson),
    aliases: opt('aliases', checkAliasesJson),
    links: opt('links', checkLinksJson),
  });
}

/** Query flag: absent/''/0/false/no -> false; 1/true/yes -> true. */
export function flag(v: string | null, name: string): boolean {
  if (v === null) return false;
  const s = v.toLowerCase();
  if (s === '' || s === '0' || s === 'false' || s === 'no') return false;
  if (s === '1' || s === 'true' || s === 'yes') return true;
  throw new InvalidArgumentError(`query parameter '${name}' must be 1 or 0`);
}
