// The embedded DNS's answering rules, with no I/O: one query's bytes and the asking
// container's networks in, the answer's bytes out — or "forward this" for a name that is
// not ours. Used by the dataplane workers (UDP queries to a gateway are answered in place,
// control/dns is never involved for local names) and by the main thread's DnsServer (TCP,
// and queries the workers hand over for forwarding).
//
// Rules, for a client attached to `clientNets`:
//   - no networks at all: REFUSED (never an open resolver for whoever reaches the socket);
//   - PTR d.c.b.a.in-addr.arpa of a container address in those networks: container.network;
//   - A (or ANY) for a local name: all its addresses, in the network's order policy;
//   - any other type for a local name: empty NOERROR (the name exists, not that type);
//   - an unknown name under one of the networks' domains (x.NET): NXDOMAIN, not forwarded;
//   - everything else: to be forwarded upstream (the caller's business).
// Local answers are authoritative (AA). UDP answers are cut to 512 bytes, or to the
// client's EDNS size up to maxUdpSize, with TC set; TCP answers may use 65535.

import {
  buildError, buildResponse, MAX_MESSAGE, MAX_UDP_EDNS, MAX_UDP_PLAIN, parseQuery, ptrNameToIp, QTYPE, RCODE,
  type DnsAnswer, type ParsedQuery,
} from './message';
import type { DnsRegistry } from './registry';
import { readU16 } from '../wire/bytes';

export type DnsResult = 'local' | 'nxdomain' | 'forwarded' | 'servfail' | 'formerr' | 'notimp' | 'dropped' | 'refused';

/** Every DnsResult, in a fixed order (their counter slots in the workers' stats). */
export const DNS_RESULTS: readonly DnsResult[] = [
  'local', 'nxdomain', 'forwarded', 'servfail', 'formerr', 'notimp', 'dropped', 'refused',
];

export const DEFAULT_TTL = 600;

/** What answer() decided: the bytes to send back, nothing (dropped), or forward upstream. */
export type AnswerOutcome =
  | { kind: 'reply'; bytes: Uint8Array }
  | { kind: 'drop' }
  | { kind: 'forward'; query: ParsedQuery; maxSize: number };

export interface AnswererOptions {
  /** TTL of local answers. Default 600 s. */
  ttl?: number;
  /** Largest UDP answer whatever the client's EDNS size (default 4096, at least 512). */
  maxUdpSize?: number;
}

interface LocalAnswer {
  rcode: number;
  answers: DnsAnswer[];
}

export class DnsAnswerer {
  /** Queries by result (monotonic); the caller counts 'forwarded' and 'servfail'. */
  readonly counters: Record<DnsResult, number> = {
    local: 0, nxdomain: 0, forwarded: 0, servfail: 0, formerr: 0, notimp: 0, dropped: 0, refused: 0,
  };
  /** Replaceable: the workers load a new registry with each configuration snapshot. */
  registry: DnsRegistry;
  readonly ttl: number;
  readonly maxUdpSize: number;

  constructor(registry: DnsRegistry, opts: AnswererOptions = {}) {
    this.registry = registry;
    this.ttl = opts.ttl ?? DEFAULT_TTL;
    this.maxUdpSize = Math.min(MAX_UDP_EDNS, Math.max(MAX_UDP_PLAIN, opts.maxUdpSize ?? MAX_UDP_EDNS));
  }

  /** Decide one query. Never throws: a bug on our side answers SERVFAIL when it can. */
  answer(query: Uint8Array, clientNets: string[], transport: 'udp' | 'tcp'): AnswerOutcome {
    try {
      return this.decide(query, clientNets, transport);
    } catch {
      if (query instanceof Uint8Array && query.length >= 12 && !(query[2] & 0x80)) {
        this.counters.servfail++;
        return { kind: 'reply', bytes: buildError(readU16(query, 0), RCODE.SERVFAIL, undefined, readU16(query, 2)) };
      }
      this.counters.dropped++;
      return { kind: 'drop' };
    }
  }

  private decide(query: Uint8Array, clientNets: string[], transport: 'udp' | 'tcp'): AnswerOutcome {
    const parsed = parseQuery(query, { transport });
    if (!parsed.ok) {
      if (parsed.id === null) {
        this.counters.dropped++;
        return { kind: 'drop' };
      }
      this.counters[parsed.rcode === RCODE.NOTIMP ? 'notimp' : 'formerr']++;
      return { kind: 'reply', bytes: buildError(parsed.id, parsed.rcode, parsed.query, parsed.flags) };
    }
    const q = parsed.query;
    const maxSize = this.maxAnswerSize(q, transport);
    const opts = { udpSize: this.maxUdpSize };
    if (clientNets.length === 0) {
      this.counters.refused++;
      return { kind: 'reply', bytes: buildResponse(q, RCODE.REFUSED, [], maxSize, opts) };
    }
    const local = this.answerLocal(q, clientNets);
    if (local === null) return { kind: 'forward', query: q, maxSize };
    this.counters[local.rcode === RCODE.NXDOMAIN ? 'nxdomain' : 'local']++;
    return { kind: 'reply', bytes: buildResponse(q, local.rcode, local.answers, maxSize, { ...opts, aa: true }) };
  }

  /** The answer from the registry, or null when the name is not ours (forward it). */
  private answerLocal(q: ParsedQuery, nets: string[]): LocalAnswer | null {
    const { name, type } = q.question;
    if (type === QTYPE.PTR) {
      const ip = ptrNameToIp(name);
      const target = ip === null ? null : this.registry.resolvePtr(ip, nets);
      if (target !== null) return { rcode: RCODE.NOERROR, answers: [{ type: 'PTR', name, target, ttl: this.ttl }] };
    }
    const kind = this.registry.isLocal(name, nets);
    if (kind === false) return null;
    if (kind === 'net-domain') return { rcode: RCODE.NXDOMAIN, answers: [] };
    if (type !== QTYPE.A && type !== QTYPE.ANY) return { rcode: RCODE.NOERROR, answers: [] };
    const addrs = this.registry.resolveA(name, nets) ?? [];
    return {
      rcode: RCODE.NOERROR,
      answers: addrs.map((addr) => ({ type: 'A' as const, name, addr, ttl: this.ttl })),
    };
  }

  maxAnswerSize(q: ParsedQuery, transport: 'udp' | 'tcp'): number {
    if (transport === 'tcp') return MAX_MESSAGE;
    if (q.edns === null) return MAX_UDP_PLAIN;
    return Math.max(MAX_UDP_PLAIN, Math.min(q.edns.udpSize, this.maxUdpSize));
  }
}
