// Test-side DNS helpers, written independently of control/dns so the tests do not check
// the code against itself: a query builder, a full response decoder (compression pointers
// followed with a jump cap), a fake upstream on 127.0.0.1 (UDP and TCP on one port).

import dgram from 'node:dgram';
import net from 'node:net';

export interface QueryOpts {
  id?: number;
  rd?: boolean;
  cls?: number;
  opcode?: number;
  /** EDNS UDP size; undefined/null = no OPT. */
  edns?: number | null;
  ednsVersion?: number;
  ednsDo?: boolean;
  /** Raw EDNS option bytes (RDATA of the OPT). */
  ednsData?: number[];
}

export function nameWire(name: string): number[] {
  const out: number[] = [];
  for (const label of name === '' ? [] : name.split('.')) {
    out.push(label.length, ...Buffer.from(label, 'latin1'));
  }
  out.push(0);
  return out;
}

export function makeQuery(name: string, type = 1, o: QueryOpts = {}): Uint8Array {
  const id = o.id ?? 0x1234;
  const flags = ((o.opcode ?? 0) << 11) | (o.rd === false ? 0 : 0x0100);
  const hasOpt = o.edns !== undefined && o.edns !== null;
  const b: number[] = [id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, hasOpt ? 1 : 0];
  b.push(...nameWire(name), type >> 8, type & 0xff, 0, o.cls ?? 1);
  if (hasOpt) {
    const size = o.edns as number;
    const data = o.ednsData ?? [];
    b.push(0, 0, 41, size >> 8, size & 0xff, 0, o.ednsVersion ?? 0, o.ednsDo ? 0x80 : 0, 0, data.length >> 8, data.length & 0xff, ...data);
  }
  return Uint8Array.from(b);
}

export interface RR {
  name: string;
  type: number;
  cls: number;
  ttl: number;
  /** A: dotted quad; PTR/CNAME/NS: a name; otherwise hex. */
  data: string;
  rdlen: number;
}

export interface Decoded {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  cd: boolean;
  rcode: number;
  questions: { name: string; type: number; cls: number }[];
  answers: RR[];
  authority: RR[];
  additional: RR[];
  /** The OPT record, when present: its class (UDP size) and TTL fields. */
  opt: { udpSize: number; extRcode: number; version: number; do: boolean } | null;
}

/** Decode a whole message; throws on anything malformed (including trailing bytes). */
export function decode(msg: Uint8Array): Decoded {
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  if (msg.length < 12) throw new Error('short');
  const flags = v.getUint16(2);
  const counts = [v.getUint16(4), v.getUint16(6), v.getUint16(8), v.getUint16(10)];
  let off = 12;
  const need = (n: number): void => {
    if (off + n > msg.length) throw new Error(`truncated at ${off}+${n}`);
  };
  const readName = (): string => {
    const labels: string[] = [];
    let p = off, jumps = 0, end = -1, wire = 0;
    for (;;) {
      if (p >= msg.length) throw new Error('name out of bounds');
      const len = msg[p];
      if (len === 0) { p++; break; }
      if ((len & 0xc0) === 0xc0) {
        if (p + 1 >= msg.length) throw new Error('truncated pointer');
        if (++jumps > 32) throw new Error('pointer loop');
        if (end < 0) end = p + 2;
        p = ((len & 0x3f) << 8) | msg[p + 1];
        continue;
      }
      if (len > 63) throw new Error('bad label');
      wire += len + 1;
      if (wire > 254) throw new Error('name too long');
      if (p + 1 + len > msg.length) throw new Error('truncated label');
      labels.push(Buffer.from(msg.subarray(p + 1, p + 1 + len)).toString('latin1'));
      p += 1 + len;
    }
    off = end >= 0 ? end : p;
    return labels.join('.');
  };
  const questions: Decoded['questions'] = [];
  for (let i = 0; i < counts[0]; i++) {
    const name = readName();
    need(4);
    questions.push({ name, type: v.getUint16(off), cls: v.getUint16(off + 2) });
    off += 4;
  }
  let opt: Decoded['opt'] = null;
  const readRRs = (n: number): RR[] => {
    const out: RR[] = [];
    for (let i = 0; i < n; i++) {
      const name = readName();
      need(10);
      const type = v.getUint16(off), cls = v.getUint16(off + 2), ttl = v.getUint32(off + 4), rdlen = v.getUint16(off + 8);
      off += 10;
      need(rdlen);
      let data: string;
      if (type === 1 && rdlen === 4) data = Array.from(msg.subarray(off, off + 4)).join('.');
      else if (type === 12 || type === 5 || type === 2) {
        const save = off;
        data = readName();
        if (off !== save + rdlen) throw new Error('rdata name length mismatch');
        off = save;
      } else data = Buffer.from(msg.subarray(off, off + rdlen)).toString('hex');
      if (type === 41) {
        if (opt) throw new Error('two OPT records');
        opt = { udpSize: cls, extRcode: ttl >>> 24, version: (ttl >>> 16) & 0xff, do: (ttl & 0x8000) !== 0 };
      }
      off += rdlen;
      out.push({ name, type, cls, ttl, data, rdlen });
    }
    return out;
  };
  const answers = readRRs(counts[1]);
  const authority = readRRs(counts[2]);
  const additional = readRRs(counts[3]);
  if (off !== msg.length) throw new Error(`trailing bytes: ${msg.length - off}`);
  return {
    id: v.getUint16(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    questions,
    answers,
    authority,
    additional,
    opt,
  };
}

export interface FakeAnswerOpts {
  /** Addresses to answer (A records, owner = the question via a pointer). */
  addrs?: string[];
  tc?: boolean;
  rcode?: number;
  /** Use this ID instead of the query's. */
  id?: number;
  /** Replace the question name. */
  name?: string;
}

/** A response to `query` (as an upstream would send it). */
export function fakeAnswer(query: Uint8Array, o: FakeAnswerOpts = {}): Buffer {
  const q = decode(query);
  const id = o.id ?? q.id;
  const qn = o.name ?? q.questions[0].name;
  const addrs = o.addrs ?? ['192.0.2.1'];
  const flags = 0x8000 | 0x0100 | 0x0080 | (o.tc ? 0x0200 : 0) | (o.rcode ?? 0);
  const b: number[] = [id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, 1, addrs.length >> 8, addrs.length & 0xff, 0, 0, 0, 0];
  b.push(...nameWire(qn), 0, q.questions[0].type, 0, q.questions[0].cls);
  for (const a of addrs) {
    b.push(0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, ...a.split('.').map(Number));
  }
  return Buffer.from(b);
}

export type FakeHandler = (query: Buffer, via: 'udp' | 'tcp') => Buffer[] | null;

export interface FakeUpstream {
  port: number;
  udpQueries: Buffer[];
  tcpQueries: Buffer[];
  close(): Promise<void>;
}

/** A fake resolver on 127.0.0.1: UDP and TCP on the same ephemeral port. */
export async function fakeUpstream(handler: FakeHandler): Promise<FakeUpstream> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
    const port = udp.address().port;
    const udpQueries: Buffer[] = [];
    const tcpQueries: Buffer[] = [];
    const sockets = new Set<net.Socket>();
    const tcp = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const m = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + m.length);
          tcpQueries.push(Buffer.from(m));
          for (const r of handler(Buffer.from(m), 'tcp') ?? []) {
            const f = Buffer.alloc(2 + r.length);
            f.writeUInt16BE(r.length, 0);
            r.copy(f, 2);
            s.write(f);
          }
        }
      });
    });
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!ok) {
      udp.close();
      continue;
    }
    udp.on('message', (m, rinfo) => {
      udpQueries.push(m);
      for (const r of handler(m, 'udp') ?? []) udp.send(r, rinfo.port, rinfo.address);
    });
    return {
      port,
      udpQueries,
      tcpQueries,
      close: async () => {
        udp.close();
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => tcp.close(() => resolve()));
      },
    };
  }
  throw new Error('could not bind a fake upstream');
}

/** A port on 127.0.0.1 with nothing listening on UDP (bound, then released). */
export async function closedUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Deterministic PRNG (dataplane/rng.ts) for the fuzz tests: failures are reproducible. */
export { rng as prng } from '../../fixtures/frames';

/** Random mutations of a valid message: flipped bytes, cuts, insertions, count fiddling. */
export function mutate(base: Uint8Array, rnd: () => number): Uint8Array {
  let m = Array.from(base);
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const pos = Math.floor(rnd() * Math.max(1, m.length));
    if (r < 0.35) m[pos] = Math.floor(rnd() * 256);
    else if (r < 0.5) m = m.slice(0, pos);
    else if (r < 0.6) m.splice(pos, 0, ...Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 256)));
    else if (r < 0.75) {
      // a count field: 0, 1, 2 or 65535
      const f = 4 + 2 * Math.floor(rnd() * 4);
      const v = [0, 1, 2, 0xffff][Math.floor(rnd() * 4)];
      if (m.length >= f + 2) { m[f] = v >> 8; m[f + 1] = v & 0xff; }
    } else if (r < 0.9) {
      // a compression pointer somewhere in the name
      if (m.length > 14) { const p = 12 + Math.floor(rnd() * (m.length - 13)); m[p] = 0xc0 | Math.floor(rnd() * 4); m[p + 1] = Math.floor(rnd() * 256); }
    } else {
      m[2] = Math.floor(rnd() * 256); // flags: QR, opcode, ...
    }
  }
  return Uint8Array.from(m);
}
