// The embedded DNS server: answers the switch's own names, forwards the rest.
//
// Transport-neutral core: handle() takes one query's bytes and the asking container's
// networks and resolves to the answer's bytes. UDP queries reach it from the dataplane's
// punt ring (the caller wraps the answer in a frame); TCP queries through a kernel TCP
// socket this class can serve itself (listenTcp).
//
// The answering rules are dataplane/dns/answer.ts's (shared with the workers, which answer
// UDP queries for local names themselves); this class adds forwarding and TCP.

import net from 'node:net';
import { buildResponse, RCODE, type ParsedQuery } from '../../dataplane/dns/message';
import { DnsAnswerer, DNS_RESULTS, DEFAULT_TTL, type DnsResult } from '../../dataplane/dns/answer';
import type { DnsRegistry } from '../../dataplane/dns/registry';
import { Forwarder, LengthPrefixedReader, type Upstream } from './upstream';

export { DNS_RESULTS, DEFAULT_TTL, type DnsResult };
export const TCP_IDLE_MS = 10_000;
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
  /** TCP: idle time before a connection is closed. Default 10 s. */
  tcpIdleMs?: number;
  /** TCP: connections per listener; more are closed at once. Default 64. */
  tcpMaxConnections?: number;
  /** TCP: connections per listener from one client address. Default 16. */
  tcpMaxPerClient?: number;
}

/** The connections of one TCP listener. */
interface TcpConnections {
  all: Set<net.Socket>;
  /** Open connections by client address. */
  perClient: Map<string, number>;
}


export class DnsServer {
  private readonly answerer: DnsAnswerer;
  private readonly forwarder: Forwarder;
  private readonly tcpIdleMs: number;
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
    this.tcpMaxConnections = opts.tcpMaxConnections ?? TCP_MAX_CONNECTIONS;
    this.tcpMaxPerClient = opts.tcpMaxPerClient ?? TCP_MAX_PER_CLIENT;
  }

  /** Queries by result, for Prometheus (monotonic). */
  get counters(): Record<DnsResult, number> {
    return this.answerer.counters;
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
   * networks (IPv4 text; [] -> REFUSED). Rejects if the address cannot be bound.
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
    const fromClient = conns.perClient.get(remote) ?? 0;
    if (this.closed || conns.all.size >= this.tcpMaxConnections || fromClient >= this.tcpMaxPerClient) {
      sock.destroy();
      return;
    }
    conns.all.add(sock);
    conns.perClient.set(remote, fromClient + 1);
    this.sockets.add(sock);
    sock.once('close', () => {
      conns.all.delete(sock);
      const n = (conns.perClient.get(remote) ?? 1) - 1;
      if (n > 0) conns.perClient.set(remote, n);
      else conns.perClient.delete(remote);
      this.sockets.delete(sock);
    });
    sock.setNoDelay(true);
    sock.setTimeout(this.tcpIdleMs, () => sock.destroy());

    const reader = new LengthPrefixedReader();
    let pending = 0;
    sock.on('data', (chunk: Buffer) => {
      for (const msg of reader.push(chunk)) {
        if (++pending >= TCP_MAX_PENDING) sock.pause();
        let nets: string[];
        try {
          nets = netsOf(remote);
        } catch {
          nets = [];
        }
        void this.handle(msg, nets, 'tcp').then((answer) => {
          if (--pending < TCP_MAX_PENDING && sock.isPaused()) sock.resume();
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
        });
      }
    });
  }

  /** Stop the TCP listeners, close their connections, end every forward under way. */
  async close(): Promise<void> {
    this.closed = true;
    this.forwarder.close();
    for (const s of this.sockets) s.destroy();
    await Promise.all([...this.servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
