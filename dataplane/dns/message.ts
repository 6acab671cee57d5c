// DNS wire format: the few pieces the embedded server needs, written for hostile input.
//
// Every query reaching us comes from a container, i.e. from code we do not control, so
// parseQuery is a security boundary: it never throws, never loops on the input (queries
// carry no compression pointers at all: there is no earlier name for one to point to, so
// any pointer is refused rather than followed), never allocates in proportion to a count
// field (the counts are checked against what a query may hold before anything is read),
// and bounds every name (label <= 63 bytes, name <= 255 bytes on the wire).
//
// Names are handed out in presentation form: labels joined by '.', ASCII upper case folded
// to lower case, no trailing dot ('' is the root). Bytes that are not printable ASCII, and
// '.' or '\' inside a label, are escaped (\DDD, \., \\) as in zone files, so a label that
// contains a dot can never be mistaken for two labels, and nothing non-printable ever
// reaches a log line or a registry lookup.
//
// One file of about 500 lines: parsing and building share the header layout and flags, the
// name rules (label and name bounds, escaping) and the EDNS fields; cut in two, each half
// would need the other's private constants.

import { readU16, writeU16 } from '../wire/bytes';

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended RCODE (RFC 6891): the query's EDNS version is not 0. Needs an OPT RR. */
  BADVERS: 16,
} as const;

export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, ANY: 255 } as const;

/** RR type of the EDNS pseudo-record. */
export const TYPE_OPT = 41;
/** The only class we serve. */
export const CLASS_IN = 1;
/** Largest DNS message: TCP's 2-byte length prefix. */
export const MAX_MESSAGE = 65535;
/** Largest UDP message without EDNS (RFC 1035 4.2.1). */
export const MAX_UDP_PLAIN = 512;
/** Largest UDP size we ever advertise or fill (EDNS), whatever the client offers. */
export const MAX_UDP_EDNS = 4096;

const HEADER = 12;
const MAX_NAME_WIRE = 255;
const MAX_LABEL = 63;

// Header flag bits (second 16-bit word).
const F_QR = 0x8000;
const F_AA = 0x0400;
const F_TC = 0x0200;
const F_RD = 0x0100;
const F_RA = 0x0080;
const F_CD = 0x0010;
const OPCODE_SHIFT = 11;
const OPCODE_MASK = 0xf;
/** DO bit in the OPT RR's TTL field (RFC 3225). */
const EDNS_DO = 0x8000;

export interface DnsQuestion {
  /** Lower-cased presentation form, no trailing dot; '' for the root. */
  name: string;
  type: number;
  cls: number;
}

export interface EdnsInfo {
  /** Requester's UDP payload size (values below 512 are read as 512). */
  udpSize: number;
  version: number;
  /** DNSSEC OK: copied into the answer's OPT (RFC 3225). */
  do: boolean;
}

export interface ParsedQuery {
  id: number;
  /** The query's raw header flags. */
  flags: number;
  opcode: number;
  rd: boolean;
  question: DnsQuestion;
  edns: EdnsInfo | null;
  /** Length of the whole message. */
  size: number;
  /** The question section exactly as sent (name + type + class), copied: answers echo it
   *  byte for byte, so a client that randomises letter case (0x20) sees its own case. */
  questionWire: Uint8Array;
}

export type ParseResult =
  | { ok: true; query: ParsedQuery }
  | {
      ok: false;
      reason: string;
      /** Header readable -> answer `rcode` with this ID; null -> drop silently. */
      id: number | null;
      /** FORMERR, NOTIMP or BADVERS (meaningless when id is null). */
      rcode: number;
      /** The query's header flags (0 when id is null): the error copies its opcode and RD. */
      flags: number;
      /** Present when the question itself was read (class not IN, EDNS version): the error
       *  then echoes the question and the OPT record. */
      query?: ParsedQuery;
    };

export type DnsAnswer =
  | { type: 'A'; name: string; addr: string; ttl: number }
  | { type: 'PTR'; name: string; target: string; ttl: number };

export interface ParseOptions {
  /** Size limits differ: UDP without EDNS is limited to 512 bytes. Default 'udp'. */
  transport?: 'udp' | 'tcp';
}

/** Parse one query. Never throws; see ParseResult for what a failure means. */
export function parseQuery(msg: Uint8Array, opts: ParseOptions = {}): ParseResult {
  try {
    return parseQueryUnsafe(msg, opts.transport ?? 'udp');
  } catch {
    // Unreachable by construction (every read is bounds-checked); kept so that a bug here
    // costs one dropped query and not the daemon.
    return { ok: false, reason: 'internal parse error', id: null, rcode: RCODE.FORMERR, flags: 0 };
  }
}

function parseQueryUnsafe(msg: Uint8Array, transport: 'udp' | 'tcp'): ParseResult {
  if (!(msg instanceof Uint8Array) || msg.length < HEADER) {
    return { ok: false, reason: 'short', id: null, rcode: RCODE.FORMERR, flags: 0 };
  }
  const id = readU16(msg, 0);
  const flags = readU16(msg, 2);
  // A response sent to a server is either a reflection attempt or a confused peer:
  // answering it could start a loop between two servers. Drop.
  if (flags & F_QR) return { ok: false, reason: 'response', id: null, rcode: RCODE.FORMERR, flags };

  const fail = (reason: string, rcode: number = RCODE.FORMERR, query?: ParsedQuery): ParseResult =>
    ({ ok: false, reason, id, rcode, flags, query });

  if (msg.length > MAX_MESSAGE) return fail('oversized');
  const opcode = (flags >> OPCODE_SHIFT) & OPCODE_MASK;
  // Other opcodes (IQUERY, STATUS, NOTIFY, UPDATE) lay out their sections differently:
  // answer before reading any further.
  if (opcode !== 0) return fail('opcode', RCODE.NOTIMP);

  const qd = readU16(msg, 4), an = readU16(msg, 6), ns = readU16(msg, 8), ar = readU16(msg, 10);
  // Checked before reading: a query holds exactly one question, no answer or authority
  // records, and at most the one OPT record. Nothing below depends on these counts beyond
  // that, so a count of 65535 costs nothing.
  if (qd !== 1) return fail('qdcount');
  if (an !== 0 || ns !== 0) return fail('ancount/nscount');
  if (ar > 1) return fail('arcount');
  // Over UDP only EDNS allows more than 512 bytes (and ARCOUNT 1 must be the OPT, below).
  if (transport === 'udp' && ar === 0 && msg.length > MAX_UDP_PLAIN) return fail('oversized');

  const qn = readName(msg, HEADER);
  if (typeof qn === 'string') return fail(qn);
  let off = qn.end;
  if (off + 4 > msg.length) return fail('truncated question');
  const type = readU16(msg, off), cls = readU16(msg, off + 2);
  off += 4;
  const questionWire = msg.slice(HEADER, off);

  let edns: EdnsInfo | null = null;
  if (ar === 1) {
    const opt = readOpt(msg, off);
    if (typeof opt === 'string') return fail(opt);
    edns = opt.edns;
    off = opt.end;
  }
  if (off !== msg.length) return fail('trailing bytes');

  const query: ParsedQuery = {
    id,
    flags,
    opcode,
    rd: (flags & F_RD) !== 0,
    question: { name: qn.name, type, cls },
    edns,
    size: msg.length,
    questionWire,
  };
  // Class CH (version.bind and friends), HS, ANY, NONE: not served.
  if (cls !== CLASS_IN) return fail('class', RCODE.NOTIMP, query);
  if (edns !== null && edns.version !== 0) return fail('edns version', RCODE.BADVERS, query);
  return { ok: true, query };
}

/** The OPT pseudo-RR: root name, type 41, CLASS = UDP size, TTL = ext-rcode|version|flags. */
function readOpt(msg: Uint8Array, off: number): { edns: EdnsInfo; end: number } | string {
  if (off >= msg.length) return 'truncated additional record';
  // The owner of an OPT is the root: a single zero byte (no pointer, no label).
  if (msg[off] !== 0) return 'additional record is not an OPT';
  off += 1;
  if (off + 10 > msg.length) return 'truncated additional record';
  if (readU16(msg, off) !== TYPE_OPT) return 'additional record is not an OPT';
  const udpSize = Math.max(MAX_UDP_PLAIN, readU16(msg, off + 2));
  const version = msg[off + 5];
  const ednsFlags = readU16(msg, off + 6);
  const rdlen = readU16(msg, off + 8);
  off += 10;
  const end = off + rdlen;
  if (end > msg.length) return 'truncated OPT data';
  // Options are {code, length, data}; check they tile the RDATA exactly. Each step moves
  // at least 4 bytes forward, so this ends within rdlen/4 steps.
  while (off < end) {
    if (off + 4 > end) return 'truncated EDNS option';
    off += 4 + readU16(msg, off + 2);
  }
  if (off !== end) return 'truncated EDNS option';
  return { edns: { udpSize, version, do: (ednsFlags & EDNS_DO) !== 0 }, end };
}

/**
 * Read an uncompressed name at `off`. Returns the presentation form and the offset after
 * it, or a failure reason. At most 255 wire bytes are consumed, so at most 128 labels.
 */
export function readName(msg: Uint8Array, off: number): { name: string; end: number } | string {
  const labels: string[] = [];
  let wire = 0;
  for (;;) {
    if (off >= msg.length) return 'truncated name';
    const len = msg[off];
    if (len === 0) {
      off += 1;
      break;
    }
    // 0b11: a compression pointer; 0b01/0b10: extended label types (RFC 6891 deprecated
    // them). Neither belongs in a question: refuse instead of following.
    if ((len & 0xc0) === 0xc0) return 'compression pointer in a question';
    if (len > MAX_LABEL) return 'bad label type';
    wire += 1 + len;
    if (wire + 1 > MAX_NAME_WIRE) return 'name too long';
    if (off + 1 + len > msg.length) return 'truncated name';
    labels.push(labelText(msg, off + 1, len));
    off += 1 + len;
  }
  return { name: labels.join('.'), end: off };
}

/** One label in presentation form: lower-cased, with \., \\ and \DDD escapes. */
function labelText(msg: Uint8Array, start: number, len: number): string {
  let s = '';
  for (let i = start; i < start + len; i++) {
    const b = msg[i];
    if (b >= 0x41 && b <= 0x5a) s += String.fromCharCode(b + 0x20);
    else if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\' + String(b).padStart(3, '0');
  }
  return s;
}

/**
 * Presentation form -> uncompressed wire form (the inverse of readName, escapes included).
 * A trailing dot is allowed; '' and '.' are the root. Returns null for a name that cannot
 * be encoded (empty label, label > 63, name > 255, bad escape).
 */
export function encodeName(name: string): Uint8Array | null {
  if (name === '.') name = '';
  else if (hasTrailingDot(name)) name = name.slice(0, -1);
  const out: number[] = [];
  if (name !== '') {
    let label: number[] = [];
    const endLabel = (): boolean => {
      if (label.length === 0 || label.length > MAX_LABEL) return false;
      out.push(label.length, ...label);
      label = [];
      return true;
    };
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c === 0x2e) {
        if (!endLabel()) return null;
      } else if (c === 0x5c) {
        const d = name.slice(i + 1, i + 4);
        if (/^[0-9]{3}$/.test(d)) {
          const v = Number(d);
          if (v > 255) return null;
          label.push(v);
          i += 3;
        } else if (i + 1 < name.length && name.charCodeAt(i + 1) < 0x80) {
          label.push(name.charCodeAt(i + 1));
          i += 1;
        } else {
          return null;
        }
      } else if (c < 0x80) {
        label.push(c);
      } else {
        return null; // not ASCII: must be escaped (or punycode) to be a DNS name
      }
      if (out.length + label.length > MAX_NAME_WIRE) return null;
    }
    if (!endLabel()) return null;
  }
  out.push(0);
  return out.length > MAX_NAME_WIRE ? null : Uint8Array.from(out);
}

/** True when the last '.' of `name` ends it and is not escaped ('a.' yes, 'a\.' no). */
function hasTrailingDot(name: string): boolean {
  if (!name.endsWith('.')) return false;
  let slashes = 0;
  for (let i = name.length - 2; i >= 0 && name[i] === '\\'; i--) slashes++;
  return slashes % 2 === 0;
}

export interface BuildOptions {
  /** Authoritative Answer: set for names the switch itself owns. */
  aa?: boolean;
  /** Force TC (e.g. an upstream answer too big for the client: it should retry over TCP). */
  tc?: boolean;
  /** UDP size advertised in our OPT record (default MAX_UDP_EDNS). */
  udpSize?: number;
}

/**
 * A response to `q`: QR and RA set, opcode, RD and CD copied, the question echoed as sent,
 * an OPT RR when the query had one. Answers are added in order while the message stays
 * within `maxSize`; the first that does not fit sets TC and ends the answer section (the
 * client retries over TCP). Header, question and OPT are always written.
 */
export function buildResponse(
  q: ParsedQuery,
  rcode: number,
  answers: DnsAnswer[],
  maxSize: number,
  opts: BuildOptions = {},
): Uint8Array {
  const w = new Writer();
  maxSize = Math.min(maxSize, MAX_MESSAGE);
  const optLen = q.edns ? 11 : 0;
  w.u16(q.id);
  w.u16(0); // flags, below
  w.u16(1);
  w.u16(0); // ancount, below
  w.u16(0);
  w.u16(q.edns ? 1 : 0);
  w.bytes(q.questionWire);

  let tc = opts.tc === true;
  let count = 0;
  if (!tc) {
    for (const a of answers) {
      const rr = encodeAnswer(a, q);
      if (rr === null) continue; // a name we cannot encode: leave it out rather than fail
      if (w.length + rr.length + optLen > maxSize) {
        tc = true;
        break;
      }
      w.bytes(rr);
      count++;
    }
  }
  if (q.edns) writeOpt(w, rcode, q.edns.do, opts.udpSize ?? MAX_UDP_EDNS);

  const out = w.finish();
  let flags = F_QR | (q.flags & ((OPCODE_MASK << OPCODE_SHIFT) | F_RD | F_CD)) | F_RA | (rcode & 0xf);
  if (opts.aa) flags |= F_AA;
  if (tc) flags |= F_TC;
  writeU16(out, 2, flags);
  writeU16(out, 6, count);
  return out;
}

/**
 * An error response. With `q`, the question (and OPT) is echoed; without, only the header
 * (QDCOUNT 0): used when the question could not be read. `reqFlags` (the query's header
 * flags) supplies the opcode and RD to copy when there is no `q`.
 */
export function buildError(id: number, rcode: number, q?: ParsedQuery, reqFlags = 0): Uint8Array {
  if (q) return buildResponse({ ...q, id }, rcode, [], MAX_MESSAGE);
  const out = new Uint8Array(HEADER);
  writeU16(out, 0, id);
  writeU16(out, 2, F_QR | (reqFlags & ((OPCODE_MASK << OPCODE_SHIFT) | F_RD)) | F_RA | (rcode & 0xf));
  return out;
}

/** Fields of a response's header and question; null when there is no readable question. */
export interface ResponseHead {
  id: number;
  flags: number;
  rcode: number;
  tc: boolean;
  opcode: number;
  question: DnsQuestion;
}

/** Read the header and (single) question of a response, e.g. an upstream's. Never throws. */
export function parseResponseHead(msg: Uint8Array): ResponseHead | null {
  if (!(msg instanceof Uint8Array) || msg.length < HEADER) return null;
  const flags = readU16(msg, 2);
  if (!(flags & F_QR) || readU16(msg, 4) !== 1) return null;
  const qn = readName(msg, HEADER);
  if (typeof qn === 'string' || qn.end + 4 > msg.length) return null;
  return {
    id: readU16(msg, 0),
    flags,
    rcode: flags & 0xf,
    tc: (flags & F_TC) !== 0,
    opcode: (flags >> OPCODE_SHIFT) & OPCODE_MASK,
    question: { name: qn.name, type: readU16(msg, qn.end), cls: readU16(msg, qn.end + 2) },
  };
}

/** 'd.c.b.a.in-addr.arpa' -> 'a.b.c.d'; null when the name is not a full IPv4 PTR name. */
export function ptrNameToIp(name: string): string | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (!m) return null;
  const parts = [m[4], m[3], m[2], m[1]];
  for (const p of parts) {
    if ((p.length > 1 && p[0] === '0') || Number(p) > 255) return null;
  }
  return parts.join('.');
}

// ---- internals ------------------------------------------------------------------------

function encodeAnswer(a: DnsAnswer, q: ParsedQuery): Uint8Array | null {
  // The owner is almost always the question's name: point at it (offset 12) instead of
  // repeating it; that also keeps the client's letter case.
  let owner: Uint8Array | null;
  if (normalizeName(a.name) === q.question.name) owner = Uint8Array.of(0xc0, HEADER);
  else owner = encodeName(a.name);
  if (owner === null) return null;

  let type: number, rdata: Uint8Array | null;
  if (a.type === 'A') {
    type = QTYPE.A;
    rdata = ipv4Bytes(a.addr);
  } else {
    type = QTYPE.PTR;
    rdata = encodeName(a.target);
  }
  if (rdata === null) return null;
  const rr = new Uint8Array(owner.length + 10 + rdata.length);
  rr.set(owner, 0);
  let o = owner.length;
  writeU16(rr, o, type);
  writeU16(rr, o + 2, CLASS_IN);
  const ttl = Math.max(0, Math.min(0x7fffffff, Math.floor(a.ttl))) >>> 0;
  writeU16(rr, o + 4, ttl >>> 16);
  writeU16(rr, o + 6, ttl & 0xffff);
  writeU16(rr, o + 8, rdata.length);
  o += 10;
  rr.set(rdata, o);
  return rr;
}

function writeOpt(w: Writer, rcode: number, dnssecOk: boolean, udpSize: number): void {
  w.u8(0); // root owner
  w.u16(TYPE_OPT);
  w.u16(udpSize);
  w.u8((rcode >> 4) & 0xff); // extended RCODE: the bits above the header's four
  w.u8(0); // version
  w.u16(dnssecOk ? EDNS_DO : 0);
  w.u16(0); // no options
}

/** Lower-case, drop one trailing dot: the form names are compared in. */
export function normalizeName(name: string): string {
  const n = name.toLowerCase();
  if (n === '.') return '';
  return hasTrailingDot(n) ? n.slice(0, -1) : n;
}

function ipv4Bytes(addr: string): Uint8Array | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
  if (!m) return null;
  const b = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  return b.every((x) => x <= 255) ? Uint8Array.from(b) : null;
}

/** Append-only byte writer; starts at 512 bytes (most answers) and doubles as needed. */
class Writer {
  private buf = new Uint8Array(512);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v & 0xff;
  }
  u16(v: number): void {
    this.ensure(2);
    writeU16(this.buf, this.length, v);
    this.length += 2;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
