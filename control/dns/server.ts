// The embedded DNS server: answers the switch's own names, forwards the rest.
//
// Transport-neutral core: handle() takes one query's bytes and the asking container's
// networks and resolves to the answer's bytes. UDP queries reach it from the dataplane's
// punt ring (the caller wraps the answer in a frame); TCP queries through a kernel TCP
// socket this class can serve itself (listenTcp).
//
// The answering rules are dataplane/dns/answer.ts's (shared with the workers, which answer
// UDP queries for local names themselves); this class adds forwarding and TCP.
//
// TCP: who gets a connection, and for how long (slowloris; docs/STREAMS.md)
// - A listener holds at most tcpMaxConnections (64) connections, at most tcpMaxPerClient
//   (16) from one client address.
// - Deadline: a message (length prefix + body) must arrive whole within tcpQueryDeadlineMs
//   (5 s, capped by the idle time) of its first byte; the first message within that of the
//   accept. Bytes trickling in do not extend it. Past it: closed, counted `tcp-deadline`.
// - Idle: between messages a connection may stay tcpIdleMs (10 s) from its last message or
//   answer; then closed, counted `tcp-idle`.
// - Fair share when the table is full: a newcomer from a client holding n connections
//   evicts one connection of the client holding the most, if that client holds more than n
//   (`tcp-evicted`: its connection longest in its state that waits for no answer, else its
//   oldest); otherwise the newcomer is refused (`tcp-refused`, also past the per-client
//   cap). So attackers holding every slot still lose one to each new client, and a client
//   with few connections is never locked out by clients with many; between equals the
//   table is first come, first served.
// The counters are DnsServer.counters' `tcp-*` keys (vsw_dns_queries_total{result="tcp-..."}).

import net from 'node:net';
import { buildResponse, RCODE, type ParsedQuery } from '../../dataplane/dns/message';
import { DnsAnswerer, DNS_RESULTS, DEFAULT_TTL, type DnsResult } from '../../dataplane/dns/answer';
import type { DnsRegistry } from '../../dataplane/dns/registry';
import { Forwarder, LengthPrefixedReader, type Upstream } from './upstream';

export { DNS_RESULTS, DEFAULT_TTL, type DnsResult };
export const TCP_IDLE_MS = 10_000;
/** A whole message (its 2-byte length and body) must arrive within this from its first byte. */
export const TCP_QUERY_DEADLINE_MS = 5_000;
export const TCP_MAX_CONNECTIONS = 64;
/** Connections from one client address at once: one container cannot take every slot. */
export const TCP_MAX_PER_CLIENT = 16;
/** Queries of one TCP connection answered at once; past this the socket stops reading. */
const TCP_MAX_PENDING = 16;
/** Answers queued for a TCP client that does not read them, before it is cut off. */
const TCP_MAX_UNSENT = 256 * 1024;

export interface DnsServerOptions {
  registry: DnsRegistry;
  upstreams: Upstream[];
  /** Per upstream try. Default 2000 ms. */
  timeoutMs?: number;
  /** Queries forwarded at once. Default 1024. */
  maxInFlight?: number;
  /** TTL of local answers. Default 600 s. */
  ttl?: number;
  /** Largest UDP answer whatever the client's EDNS size (default 4096, at least 512). A
   *  UDP answer is one frame the switch builds itself: MTU - 28 avoids IP fragments. */
  maxUdpSize?: number;
  /** TCP: idle time (no message under way) before a connection is closed. Default 10 s. */
  tcpIdleMs?: number;
  /** TCP: time for one whole message from its first byte (the first message: from accept).
   *  Default 5 s; never more than tcpIdleMs. */
  tcpQueryDeadlineMs?: number;
  /** TCP: connections per listener; past this a newcomer evicts or is refused (header). Default 64. */
  tcpMaxConnections?: number;
  /** TCP: connections per listener from one client address. Default 16. */
  tcpMaxPerClient?: number;
}

/** What the TCP side cut, counted beside the query results (DnsServer.counters). */
export const TCP_CUTS = ['tcp-deadline', 'tcp-idle', 'tcp-evicted', 'tcp-refused'] as const;
export type TcpCut = (typeof TCP_CUTS)[number];

/** One TCP connection: where it is (a message under way, or between messages) since when. */
interface TcpConn {
  sock: net.Socket;
  client: string;
  /** Queries read and not yet answered. */
  pending: number;
  state: 'message' | 'idle';
  /** When the state began: accept or a message's first byte ('message'), the last message or answer ('idle'). */
  since: number;
  timer?: NodeJS.Timeout;
}

/** The connections of one TCP listener. */
interface TcpConnections {
  all: Set<TcpConn>;
  /** Open connections by client address. */
  perClient: Map<string, Set<TcpConn>>;
}


export class DnsServer {
  private readonly answerer: DnsAnswerer;
  private readonly forwarder: Forwarder;
  private readonly tcpIdleMs: number;
  private readonly tcpDeadlineMs: number;
  private readonly tcpCounters: Record<TcpCut, number> = { 'tcp-deadline': 0, 'tcp-idle': 0, 'tcp-evicted': 0, 'tcp-refused': 0 };
  private readonly tcpMaxConnections: number;
  private readonly tcpMaxPerClient: number;
  private readonly servers = new Set<net.Server>();
  private readonly sockets = new Set<net.Socket>();
  private closed = false;

  constructor(opts: DnsServerOptions) {
    this.answerer = new DnsAnswerer(opts.registry, { ttl: opts.ttl, maxUdpSize: opts.maxUdpSize });
    this.forwarder = new Forwarder({
      upstreams: opts.upstreams,
      timeoutMs: opts.timeoutMs,
      maxInFlight: opts.maxInFlight,
    });
    this.tcpIdleMs = opts.tcpIdleMs ?? TCP_IDLE_MS;
    this.tcpDeadlineMs = Math.min(opts.tcpQueryDeadlineMs ?? TCP_QUERY_DEADLINE_MS, this.tcpIdleMs);
    this.tcpMaxConnections = opts.tcpMaxConnections ?? TCP_MAX_CONNECTIONS;
    this.tcpMaxPerClient = opts.tcpMaxPerClient ?? TCP_MAX_PER_CLIENT;
  }

  /** Queries by result, and what TCP cut (TCP_CUTS), for Prometheus (monotonic). */
  get counters(): Record<DnsResult | TcpCut, number> {
    return { ...this.answerer.counters, ...this.tcpCounters };
  }

  /** Replace the upstream resolvers (e.g. after --dns changed). */
  setUpstreams(upstreams: Upstream[]): void {
    this.forwarder.setUpstreams(upstreams);
  }

  /** Queries being forwarded now (a gauge). */
  inFlight(): number {
    return this.forwarder.inFlight();
  }

  /**
   * Answer one query. Resolves to the response bytes, or null when the query is dropped
   * (too short to answer, or itself a response). Never rejects. The query's bytes are not
   * kept past the synchronous part of the call (the forwarder copies them), so the caller
   * may reuse its buffer as soon as this returns its promise.
   */
  async handle(query: Uint8Array, clientNets: string[], transport: 'udp' | 'tcp'): Promise<Uint8Array | null> {
    const out = this.answerer.answer(query, clientNets, transport);
    if (out.kind === 'reply') return out.bytes;
    if (out.kind === 'drop') return null;
    return this.forward(query, out.query, out.maxSize, transport);
  }

  /** Forward a name that is not ours; SERVFAIL when every upstream fails. Never rejects. */
  async forward(query: Uint8Array, q: ParsedQuery, maxSize: number, transport: 'udp' | 'tcp'): Promise<Uint8Array | null> {
    const counters = this.answerer.counters;
    const opts = { udpSize: this.answerer.maxUdpSize };
    try {
      const answer = await this.forwarder.forward(query, q, { retryTcp: transport === 'tcp' });
      if (answer === null) {
        counters.servfail++;
        return buildResponse(q, RCODE.SERVFAIL, [], maxSize, opts);
      }
      counters.forwarded++;
      // Bigger than this client can take (its EDNS size above our maxUdpSize, or a TCP
      // retry's answer): an empty TC answer sends it to TCP.
      if (answer.length > maxSize) return buildResponse(q, answer[3] & 0xf, [], maxSize, { ...opts, tc: true });
      return answer;
    } catch {
      counters.servfail++;
      return buildResponse(q, RCODE.SERVFAIL, [], maxSize, opts);
    }
  }

  /**
   * Serve DNS over TCP on host:port (RFC 7766: 2-byte length prefix, several queries per
   * connection, answered as they complete). `netsOf(remoteIp)` gives the client's
   * networks (IPv4 text; [] -> REFUSED). Rejects if the address cannot be bound. The limits
   * and timers are the file header's ("TCP: who gets a connection, and for how long").
   */
  listenTcp(host: string, port: number, netsOf: (remoteIp: string) => string[]): Promise<net.Server> {
    const conns: TcpConnections = { all: new Set(), perClient: new Map() };
    const server = net.createServer((sock) => this.serveTcp(sock, conns, netsOf));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', () => undefined); // after listening: per-connection errors only
        this.servers.add(server);
        server.once('close', () => this.servers.delete(server));
        resolve(server);
      });
    });
  }

  private serveTcp(sock: net.Socket, conns: TcpConnections, netsOf: (remoteIp: string) => string[]): void {
    sock.on('error', () => undefined); // 'close' follows and cleans up
    const remote = (sock.remoteAddress ?? '').replace(/^::ffff:/, '');
    if (this.closed) {
      sock.destroy();
      return;
    }
    const mine = conns.perClient.get(remote)?.size ?? 0;
    if (mine >= this.tcpMaxPerClient) {
      this.tcpCounters['tcp-refused']++;
      sock.destroy();
      return;
    }
    if (conns.all.size >= this.tcpMaxConnections) {
      const victim = evictionVictim(conns, mine);
      if (!victim) {
        this.tcpCounters['tcp-refused']++;
        sock.destroy();
        return;
      }
      this.cut(conns, victim, 'tcp-evicted');
    }
    const c: TcpConn = { sock, client: remote, pending: 0, state: 'message', since: Date.now() };
    conns.all.add(c);
    let group = conns.perClient.get(remote);
    if (!group) conns.perClient.set(remote, (group = new Set()));
    group.add(c);
    this.sockets.add(sock);
    sock.once('close', () => this.forget(conns, c));
    sock.setNoDelay(true);
    // The first message must be whole within the deadline from accept.
    this.arm(conns, c, this.tcpDeadlineMs, 'tcp-deadline');

    const reader = new LengthPrefixedReader();
    sock.on('data', (chunk: Buffer) => {
      const msgs = reader.push(chunk);
      if (reader.buffered > 0) {
        // A message under way: its deadline runs from its first byte (this chunk, unless the
        // message began in an earlier one). Bytes trickling in never restart it.
        if (c.state !== 'message' || msgs.length > 0) {
          c.state = 'message';
          c.since = Date.now();
          this.arm(conns, c, this.tcpDeadlineMs, 'tcp-deadline');
        }
      } else if (msgs.length > 0) {
        this.idle(conns, c);
      }
      for (const msg of msgs) {
        if (++c.pending >= TCP_MAX_PENDING) sock.pause();
        let nets: string[];
        try {
          nets = netsOf(remote);
        } catch {
          nets = [];
        }
        void this.handle(msg, nets, 'tcp').then((answer) => {
          if (--c.pending < TCP_MAX_PENDING && sock.isPaused()) sock.resume();
          if (sock.destroyed) return;
          // Dropped (garbage, or a response): the stream is not DNS; end it.
          if (answer === null) {
            sock.destroy();
            return;
          }
          const frame = Buffer.allocUnsafe(2 + answer.length);
          frame.writeUInt16BE(answer.length, 0);
          frame.set(answer, 2);
          sock.write(frame);
          if (sock.writableLength > TCP_MAX_UNSENT) sock.destroy();
          else if (c.state === 'idle') this.idle(conns, c); // an answer is activity: idle from now
        });
      }
    });
  }

  /** Between messages: the idle timer runs from now. */
  private idle(conns: TcpConnections, c: TcpConn): void {
    c.state = 'idle';
    c.since = Date.now();
    this.arm(conns, c, this.tcpIdleMs, 'tcp-idle');
  }

  private arm(conns: TcpConnections, c: TcpConn, ms: number, why: TcpCut): void {
    if (c.timer) clearTimeout(c.timer);
    c.timer = setTimeout(() => this.cut(conns, c, why), ms);
  }

  /** Close a connection for a counted reason; its slot is free at once. */
  private cut(conns: TcpConnections, c: TcpConn, why: TcpCut): void {
    if (!conns.all.has(c)) return;
    this.tcpCounters[why]++;
    this.forget(conns, c);
    c.sock.destroy();
  }

  private forget(conns: TcpConnections, c: TcpConn): void {
    if (c.timer) clearTimeout(c.timer);
    c.timer = undefined;
    if (!conns.all.delete(c)) return;
    const group = conns.perClient.get(c.client);
    group?.delete(c);
    if (group && group.size === 0) conns.perClient.delete(c.client);
    this.sockets.delete(c.sock);
  }

  /** Stop the TCP listeners, close their connections, end every forward under way. */
  async close(): Promise<void> {
    this.closed = true;
    this.forwarder.close();
    for (const s of this.sockets) s.destroy();
    await Promise.all([...this.servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/**
 * The connection to close so that a client holding `mine` connections gets one when the
 * table is full: one of the client holding the most, if it holds more than `mine` (after
 * the swap the newcomer holds at most as many as it). Of that client's connections the one
 * longest in its state, not waiting for an answer (idle, or trickling a message) if any.
 * null: nobody holds more than the newcomer; it is refused.
 */
function evictionVictim(conns: TcpConnections, mine: number): TcpConn | null {
  let top: Set<TcpConn> | undefined;
  for (const group of conns.perClient.values()) if (!top || group.size > top.size) top = group;
  if (!top || top.size <= mine) return null;
  // Rank: waiting for no answer first, then the longest in its state.
  const rank = (c: TcpConn): number => (c.pending === 0 ? 0 : 1e15) + c.since;
  let best: TcpConn | null = null;
  for (const c of top) if (!best || rank(c) < rank(best)) best = c;
  return best;
}
