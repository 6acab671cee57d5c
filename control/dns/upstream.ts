// Forwarding to the upstream resolvers: names that are not the switch's own.
//
// How a UDP try reaches an upstream is its transport (Upstream.transport, a UdpTransport):
// - the host's own stack (HostUdpTransport, the default): a socket of the daemon, so the
//   daemon's routes and resolv.conf apply, loopback resolvers (127.0.0.53) included;
// - the switch's uplink (control/dns/uplink.ts): frames the main thread builds from the
//   uplink address, out of the uplink port, as a container's query would leave through
//   masquerade. control/router.ts gives an upstream that transport when the switch has an
//   uplink, unless it is loopback (127/8) or inside a vsw network.
// A TCP retry (a TC answer, for a TCP client) always uses the host's stack.
//
// Anti-spoofing: every try has a fresh random source port (a fresh socket, or a free port of
// the uplink forwarder's range), only datagrams from the upstream's address and port to that
// port reach it (the connected socket, or the uplink transport's match), and a fresh random
// 16-bit ID; an answer is accepted only if its ID and its question match what was sent.
// Anything else is counted (unmatched) and ignored, and the try keeps waiting until its
// timeout. The client's original ID is put back into the accepted answer.

import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { InvalidArgumentError } from '../errors';
import { parseIp } from '../ipam';
import { parseResponseHead, type ParsedQuery } from '../../dataplane/dns/message';

export interface Upstream {
  host: string;
  port: number;
  /** How UDP tries reach it; absent: the host's own stack (a HostUdpTransport of the forwarder). */
  transport?: UdpTransport;
}

/** Counters of one transport (monotonic). */
export interface TransportCounters {
  /** UDP queries sent (one per try). */
  sent: number;
  /** Answers accepted (ID and question matched the try's). */
  matched: number;
  /** Datagrams that reached no try or did not match its ID/question: dropped. */
  unmatched: number;
  /** Tries that could not be sent (no free port, no neighbour, a send error). */
  failed: number;
  /** Tries ended at once by an ICMP port (or protocol) unreachable from upstream. */
  refused: number;
}

/**
 * One UDP try's path to an upstream. open() sends `msg` to `up` from a fresh random source
 * port and calls accept(m) with every datagram that comes back from up's address and port to
 * that source port, until the returned close function is called; accept() says whether m was
 * the answer (else it is counted as unmatched). fail() ends the try early (an ICMP error, no
 * route, no free port). open() may throw; the try then fails.
 */
export interface UdpTransport {
  readonly name: string;
  readonly counters: TransportCounters;
  open(up: Upstream, msg: Uint8Array, accept: (m: Uint8Array) => boolean, fail: () => void): () => void;
}

export function newTransportCounters(): TransportCounters {
  return { sent: 0, matched: 0, unmatched: 0, failed: 0, refused: 0 };
}

/** Through the host's own stack: a fresh UDP socket per try, connected to the upstream. */
export class HostUdpTransport implements UdpTransport {
  readonly name = 'host';
  readonly counters = newTransportCounters();

  open(up: Upstream, msg: Uint8Array, accept: (m: Uint8Array) => boolean, fail: () => void): () => void {
    const c = this.counters;
    const sock = dgram.createSocket('udp4');
    // ECONNREFUSED (ICMP port unreachable on a connected socket) lands here: fail fast
    // and move on to the next upstream instead of waiting for the timeout.
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') c.refused++;
      else c.failed++;
      fail();
    });
    sock.on('message', (m: Buffer) => {
      if (accept(m)) c.matched++;
      else c.unmatched++;
    });
    sock.on('connect', () => {
      try {
        sock.send(msg, (err) => { if (err) { c.failed++; fail(); } });
        c.sent++;
      } catch {
        fail(); // closed (cancelled) while connecting
      }
    });
    sock.connect(up.port, up.host);
    return () => sock.close();
  }
}

export const DNS_PORT = 53;
export const DEFAULT_TIMEOUT_MS = 2000;
export const DEFAULT_MAX_IN_FLIGHT = 1024;

/** 'IP' or 'IP:PORT' (IPv4) -> Upstream. Throws InvalidArgumentError on anything else. */
export function parseUpstream(text: string): Upstream {
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`invalid DNS server '${text}': ${why} (expected IPv4 or IPv4:PORT)`);
  };
  if (typeof text !== 'string') return bad('not a string');
  const t = text.trim();
  const colon = t.indexOf(':');
  const host = colon < 0 ? t : t.slice(0, colon);
  const portText = colon < 0 ? null : t.slice(colon + 1);
  try {
    parseIp(host);
  } catch {
    return bad('not an IPv4 address');
  }
  let port = DNS_PORT;
  if (portText !== null) {
    if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65535) return bad('bad port');
    port = Number(portText);
  }
  return { host, port };
}

/**
 * The IPv4 'nameserver' lines of a resolv.conf (default /etc/resolv.conf), port 53, in
 * file order, without duplicates. [] when the file cannot be read. IPv6 servers are
 * skipped: the forwarder speaks IPv4.
 */
export function readResolvConf(path = '/etc/resolv.conf'): Upstream[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const out: Upstream[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, value] = line.split(/\s+/);
    if (key !== 'nameserver' || value === undefined) continue;
    try {
      parseIp(value);
    } catch {
      continue;
    }
    if (!out.some((u) => u.host === value)) out.push({ host: value, port: DNS_PORT });
  }
  return out;
}

export interface ForwarderOptions {
  upstreams: Upstream[];
  /** Per upstream try (UDP, and the TCP retry separately). Default 2000. */
  timeoutMs?: number;
  /** Queries being forwarded at once; more are refused (forward() gives null). Default 1024. */
  maxInFlight?: number;
}

export interface ForwardOptions {
  /**
   * A UDP answer with TC set is retried over TCP (default true). A server answering a UDP
   * client can pass false: the TC answer then goes back as is and the client retries over
   * TCP itself, instead of us fetching a full answer the client's UDP could not carry.
   */
  retryTcp?: boolean;
}

/** Outcome of one try: an accepted answer (TC or not), or nothing. */
type TryResult = { bytes: Uint8Array; tc: boolean } | null;

export class Forwarder {
  private upstreams: Upstream[];
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private pending = 0;
  private closed = false;
  /** Upstreams without a transport of their own are reached through this one. */
  readonly host = new HostUdpTransport();
  /** Cancel functions of the tries under way (close() ends them). */
  private readonly tries = new Set<() => void>();

  constructor(opts: ForwarderOptions) {
    this.upstreams = opts.upstreams.slice();
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  }

  /** Replace the upstream list (queries under way finish with the old one). */
  setUpstreams(upstreams: Upstream[]): void {
    this.upstreams = upstreams.slice();
  }

  getUpstreams(): Upstream[] {
    return this.upstreams.slice();
  }

  /**
   * Forward a raw query to each upstream in turn until one answers. Resolves to that
   * answer with the client's ID restored, or null when every upstream failed or timed out,
   * there is none, too many queries are in flight, or the forwarder is closed. A UDP answer
   * with TC set is retried over TCP (see ForwardOptions); if that fails too, the TC answer
   * is the fallback. Never rejects. The query is copied before this returns, so the
   * caller may reuse its buffer.
   */
  async forward(query: Uint8Array, q: ParsedQuery, opts: ForwardOptions = {}): Promise<Uint8Array | null> {
    if (this.closed || this.pending >= this.maxInFlight || this.upstreams.length === 0) return null;
    const copy = Uint8Array.from(query);
    const upstreams = this.upstreams.slice();
    this.pending++;
    try {
      let truncated: Uint8Array | null = null;
      for (const up of upstreams) {
        if (this.closed) return null;
        const udp = await this.udpTry(up, copy, q);
        if (udp === null) continue;
        if (!udp.tc || opts.retryTcp === false) return withId(udp.bytes, q.id);
        truncated ??= udp.bytes;
        const tcp = await this.tcpTry(up, copy, q);
        if (tcp !== null) return withId(tcp.bytes, q.id);
      }
      return truncated && !this.closed ? withId(truncated, q.id) : null;
    } catch {
      return null; // a socket API throwing synchronously: count it as a failed forward
    } finally {
      this.pending--;
    }
  }

  /** Queries being forwarded now. */
  inFlight(): number {
    return this.pending;
  }

  /** End every try under way (their forward() resolves null) and refuse new ones. */
  close(): void {
    this.closed = true;
    for (const cancel of [...this.tries]) cancel();
  }

  // ---- one try ------------------------------------------------------------------------

  /** Run `start` as a cancellable try with this forwarder's timeout. */
  private attempt(start: (finish: (r: TryResult) => void) => () => void): Promise<TryResult> {
    return new Promise((resolve) => {
      let done = false;
      let cleanup: () => void = () => undefined;
      const finish = (r: TryResult): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.tries.delete(cancel);
        try {
          cleanup();
        } catch {
          // closing an already closed socket: nothing left to release
        }
        resolve(r);
      };
      const cancel = (): void => finish(null);
      const timer = setTimeout(cancel, this.timeoutMs);
      this.tries.add(cancel);
      try {
        cleanup = start(finish);
        // Finished (failed) inside start(): release what it opened now.
        if (done) cleanup();
      } catch {
        finish(null);
      }
    });
  }

  private udpTry(up: Upstream, query: Uint8Array, q: ParsedQuery): Promise<TryResult> {
    const transport = up.transport ?? this.host;
    return this.attempt((finish) => {
      const id = randomInt(0, 0x10000);
      const msg = withId(query, id);
      return transport.open(up, msg, (m) => {
        const tc = matches(m, id, q);
        if (tc === null) return false;
        finish({ bytes: Uint8Array.from(m), tc });
        return true;
      }, () => finish(null));
    });
  }

  private tcpTry(up: Upstream, query: Uint8Array, q: ParsedQuery): Promise<TryResult> {
    return this.attempt((finish) => {
      const id = randomInt(0, 0x10000);
      const frame = new Uint8Array(2 + query.length);
      frame[0] = query.length >> 8;
      frame[1] = query.length & 0xff;
      frame.set(withId(query, id), 2);
      const sock = net.createConnection({ host: up.host, port: up.port });
      const reader = new LengthPrefixedReader();
      sock.on('error', () => finish(null));
      sock.on('close', () => finish(null));
      sock.on('connect', () => void sock.write(frame));
      sock.on('data', (chunk: Buffer) => {
        const m = reader.push(chunk)[0];
        if (m === undefined) return;
        // Our own connection: the first answer is the answer; a mismatch means a broken
        // (or hostile) upstream, so the try fails rather than waiting for more.
        finish(matches(m, id, q) !== null ? { bytes: m, tc: false } : null);
      });
      return () => sock.destroy();
    });
  }
}

/**
 * Splits a TCP byte stream into DNS messages (2-byte big-endian length prefix). Chunks are
 * kept as a list and joined once per message, so a peer trickling one byte at a time costs
 * linear, not quadratic, copying. Holds at most one incomplete message (< 64 KiB) plus the
 * chunk being added.
 */
export class LengthPrefixedReader {
  private chunks: Buffer[] = [];
  private total = 0;

  /** Add bytes; returns the messages completed by them (possibly none). */
  push(chunk: Uint8Array): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.total += chunk.length;
    }
    const out: Buffer[] = [];
    while (this.total >= 2) {
      const len = (this.byteAt(0) << 8) | this.byteAt(1);
      if (this.total < 2 + len) break;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.total);
      out.push(Buffer.from(all.subarray(2, 2 + len)));
      const rest = all.subarray(2 + len);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.total = rest.length;
    }
    return out;
  }

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.total;
  }

  private byteAt(i: number): number {
    for (const c of this.chunks) {
      if (i < c.length) return c[i];
      i -= c.length;
    }
    return 0;
  }
}

/** null: not the answer to what we sent; else whether it is truncated. */
function matches(m: Uint8Array, id: number, q: ParsedQuery): boolean | null {
  const head = parseResponseHead(m);
  if (head === null || head.id !== id || head.opcode !== 0) return null;
  const a = head.question, b = q.question;
  if (a.name !== b.name || a.type !== b.type || a.cls !== b.cls) return null;
  return head.tc;
}

/** A copy of `msg` with its ID set. */
function withId(msg: Uint8Array, id: number): Uint8Array {
  const out = Uint8Array.from(msg);
  out[0] = id >> 8;
  out[1] = id & 0xff;
  return out;
}
