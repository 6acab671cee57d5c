// Frame filters for `vsw trace --filter EXPR` and `vsw capture --filter EXPR` (issue #5): a
// small tcpdump-like language, compiled once (on the main thread to validate it, again in
// each worker) into a predicate that runs per frame on the hot path without allocating.
//
// Grammar (keywords are case-insensitive; `and` binds tighter than `or`; `not` tighter
// than both; two primitives side by side are an error, not an implicit `and`):
//
//   expr      := and-expr { ('or' | '||') and-expr }
//   and-expr  := unary { ('and' | '&&') unary }
//   unary     := ('not' | '!') unary | '(' expr ')' | primitive
//
//   primitive                          matches when
//   ---------------------------------  ---------------------------------------------------
//   ether host|src|dst MAC             the source and/or destination MAC is MAC
//   ether src host MAC, ...            (same; `host` may follow src/dst)
//   mac MAC                            = ether host MAC
//   host|src|dst MAC                   = ether host|src|dst MAC (a MAC argument means ether)
//   broadcast, ether broadcast         destination ff:ff:ff:ff:ff:ff
//   multicast, ether multicast         destination I/G bit set (broadcast included)
//   ether proto N                      EtherType N (after any tags), 0..65535
//   host|src|dst IP                    IPv4 source/destination address, or for ARP the
//   src host IP, dst host IP             sender (src) / target (dst) protocol address
//   net|src net|dst net CIDR           same, masked; a.b.c.d/len, or a bare a.b.c.d (= /32)
//   ip|arp host|src|dst|net ...        the same, restricted to IPv4 or to ARP
//   ip, arp, ip6                       EtherType 0x0800, 0x0806, 0x86dd (after any tags)
//   tcp, udp, icmp                     IPv4 protocol 6, 17, 1
//   proto N, ip proto N                IPv4 protocol N (0..255, or tcp/udp/icmp)
//   port N, src port N, dst port N     TCP or UDP source and/or destination port (0..65535)
//   portrange A-B (also src/dst)       a port in [A, B]
//   tcp|udp [src|dst] port N           the port, of that protocol only (also portrange)
//   vlan                               the frame carries an 802.1Q/802.1ad tag
//   vlan N                             the OUTERMOST tag's VID is N (0..4095)
//   pcp N                              the outermost tag's priority is N (0..7)
//   len < <= > >= = == != N            frame length (Ethernet header to the last byte,
//   less N, greater N                    tags included) compares; less = <=, greater = >=
//   icmp-type N                        IPv4 ICMP with type N (0..255)
//
// Numbers are decimal (no leading zeros: tcpdump would read them as octal) or 0x-hex.
// MACs: aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff. IPv4: strict dotted quad. CIDR: host bits
// must be zero (`net 10.0.0.1/24` is an error naming 10.0.0.0/24), as in tcpdump.
//
// What "matches" means on a real frame:
// - Up to two VLAN tags (TPID 0x8100 or 0x88a8, in any order) are looked through for every
//   primitive; `vlan N` and `pcp N` read the outermost tag (tcpdump's first `vlan` does the
//   same). Unlike tcpdump, `vlan` does not shift later primitives: they always see through.
// - Only `len` looks at a frame shorter than its Ethernet header (14 bytes, plus 4 per tag,
//   complete with the inner EtherType); every other primitive is false on such a frame.
// - `ip`/`arp`/`ip6`/`ether proto` read only the EtherType. Every primitive that reads IPv4
//   fields needs a valid header: version 4, IHL >= 5, header inside the frame,
//   IHL*4 <= total length <= bytes present. ARP address primitives need a complete
//   Ethernet/IPv4 ARP packet (htype 1, ptype 0x0800, hlen 6, plen 4, 28 bytes).
// - `port`/`portrange` and `icmp-type` need the first fragment (offset 0) and the bytes they
//   read inside the IPv4 total length. Non-first fragments never match a port.
// - IPv6 is recognised by `ip6` (and MAC/VLAN/len primitives) only: `tcp`, `port`, `host`
//   etc. are IPv4 (vsw's networks are IPv4).
// Primitives never read outside [off, off+len), and match() never throws and never allocates.
//
// Implementation: the expression compiles to a tree of small closures over one per-filter
// scratch object. match() first decodes the frame once, only as deep as the filter needs
// (nothing / L2 / L3 / L4), into that object's integer fields; the leaves then compare
// fields. `and`/`or` short-circuit.

import { readU16 } from './wire/bytes';
import { parseIp } from './wire/ip';
import { macHi, macLo, parseMac } from './wire/mac';

export class FilterError extends Error {
  /** 1-based column of the offending token (0 when the error is about the whole source). */
  readonly column: number;
  constructor(message: string, column = 0) {
    super(message);
    this.name = 'FilterError';
    this.column = column;
  }
}

export interface CompiledFilter {
  readonly source: string;
  /** off/len: the Ethernet frame (no virtio-net header). Never throws, never allocates. */
  match(buf: Uint8Array, off: number, len: number): boolean;
}

export const FILTER_MAX_SOURCE = 1024;
export const FILTER_MAX_DEPTH = 32;

// ---------------------------------------------------------------------------------------
// Per-frame decode

const TPID_8021Q = 0x8100;
const TPID_8021AD = 0x88a8;
const ET_IPV4 = 0x0800;
const ET_ARP = 0x0806;
const ET_IPV6 = 0x86dd;

/** How deep match() decodes before evaluating: the deepest level any leaf needs. */
const LVL_NONE = 0; // len only
const LVL_L2 = 1;   // MACs, tags, EtherType
const LVL_L3 = 2;   // IPv4 / ARP addresses, IPv4 protocol
const LVL_L4 = 3;   // ports, ICMP type

/** What the decoder found. One per compiled filter; integers only, reset per frame. */
class Decoded {
  off = 0;
  len = 0;
  /** Ethernet header (and tags) complete. */
  l2 = false;
  /** EtherType after the tags; -1 when !l2. */
  et = -1;
  /** Tags looked through (0..2); VID and PCP of the outermost tag, -1 when untagged. */
  tags = 0;
  vid = -1;
  pcp = -1;
  /** Valid IPv4 header: protocol (-1 otherwise), addresses as signed int32. */
  proto = -1;
  ipSrc = 0;
  ipDst = 0;
  ip = false;
  /** Complete Ethernet/IPv4 ARP packet: sender / target protocol addresses (int32). */
  arp = false;
  spa = 0;
  tpa = 0;
  /** TCP/UDP ports of a first fragment (-1 otherwise); ICMP type (-1 otherwise). */
  sport = -1;
  dport = -1;
  icmpType = -1;
}

function decode(d: Decoded, buf: Uint8Array, off: number, len: number, level: number): void {
  d.off = off;
  d.len = len;
  d.l2 = false;
  d.et = -1;
  d.tags = 0;
  d.vid = -1;
  d.pcp = -1;
  d.ip = false;
  d.proto = -1;
  d.arp = false;
  d.sport = -1;
  d.dport = -1;
  d.icmpType = -1;
  if (level === LVL_NONE || len < 14) return;
  let p = off + 12;
  let et = (buf[p] << 8) | buf[p + 1];
  let tags = 0;
  let tci = -1;
  if (et === TPID_8021Q || et === TPID_8021AD) {
    if (len < 18) return;
    tci = (buf[p + 2] << 8) | buf[p + 3];
    p += 4;
    tags = 1;
    et = (buf[p] << 8) | buf[p + 1];
    if (et === TPID_8021Q || et === TPID_8021AD) {
      if (len < 22) return;
      p += 4;
      tags = 2;
      et = (buf[p] << 8) | buf[p + 1];
    }
  }
  d.l2 = true;
  d.et = et;
  d.tags = tags;
  if (tags !== 0) {
    d.vid = tci & 0xfff;
    d.pcp = tci >>> 13;
  }
  if (level === LVL_L2) return;
  const l3 = p + 2;
  const avail = off + len - l3;
  if (et === ET_IPV4) {
    if (avail < 20) return;
    const b0 = buf[l3];
    if (b0 >>> 4 !== 4) return;
    const hl = (b0 & 0xf) << 2;
    if (hl < 20 || hl > avail) return;
    const tl = (buf[l3 + 2] << 8) | buf[l3 + 3];
    if (tl < hl || tl > avail) return;
    const proto = buf[l3 + 9];
    d.ip = true;
    d.proto = proto;
    d.ipSrc = (buf[l3 + 12] << 24) | (buf[l3 + 13] << 16) | (buf[l3 + 14] << 8) | buf[l3 + 15];
    d.ipDst = (buf[l3 + 16] << 24) | (buf[l3 + 17] << 16) | (buf[l3 + 18] << 8) | buf[l3 + 19];
    if (level === LVL_L3) return;
    if ((((buf[l3 + 6] << 8) | buf[l3 + 7]) & 0x1fff) !== 0) return;
    const l4 = l3 + hl;
    const l4len = tl - hl;
    if (proto === 6 || proto === 17) {
      if (l4len >= 4) {
        d.sport = (buf[l4] << 8) | buf[l4 + 1];
        d.dport = (buf[l4 + 2] << 8) | buf[l4 + 3];
      }
    } else if (proto === 1) {
      if (l4len >= 1) d.icmpType = buf[l4];
    }
  } else if (et === ET_ARP) {
    if (avail < 28) return;
    // htype 1, ptype 0x0800, hlen 6, plen 4
    if (readU16(buf, l3) !== 1 || readU16(buf, l3 + 2) !== ET_IPV4 || buf[l3 + 4] !== 6 || buf[l3 + 5] !== 4) return;
    d.arp = true;
    d.spa = (buf[l3 + 14] << 24) | (buf[l3 + 15] << 16) | (buf[l3 + 16] << 8) | buf[l3 + 17];
    d.tpa = (buf[l3 + 24] << 24) | (buf[l3 + 25] << 16) | (buf[l3 + 26] << 8) | buf[l3 + 27];
  }
}

// ---------------------------------------------------------------------------------------
// The tree: leaves and combinators, all (d, buf) => boolean

type Pred = (d: Decoded, buf: Uint8Array) => boolean;

const DIR_EITHER = 0;
const DIR_SRC = 1;
const DIR_DST = 2;

const WHICH_BOTH = 0; // IPv4 or ARP
const WHICH_IP = 1;
const WHICH_ARP = 2;

function macLeaf(dir: number, hi: number, lo: number): Pred {
  if (dir === DIR_SRC) {
    return (d, buf) => d.l2 && macHi(buf, d.off + 6) === hi && macLo(buf, d.off + 6) === lo;
  }
  if (dir === DIR_DST) {
    return (d, buf) => d.l2 && macHi(buf, d.off) === hi && macLo(buf, d.off) === lo;
  }
  return (d, buf) => d.l2 && ((macHi(buf, d.off) === hi && macLo(buf, d.off) === lo) ||
    (macHi(buf, d.off + 6) === hi && macLo(buf, d.off + 6) === lo));
}

/** net and mask as int32 (net already masked). */
function ipLeaf(dir: number, which: number, net: number, mask: number): Pred {
  const ip = which !== WHICH_ARP;
  const arp = which !== WHICH_IP;
  if (dir === DIR_SRC) {
    return (d) => (ip && d.ip && (d.ipSrc & mask) === net) || (arp && d.arp && (d.spa & mask) === net);
  }
  if (dir === DIR_DST) {
    return (d) => (ip && d.ip && (d.ipDst & mask) === net) || (arp && d.arp && (d.tpa & mask) === net);
  }
  return (d) => (ip && d.ip && ((d.ipSrc & mask) === net || (d.ipDst & mask) === net)) ||
    (arp && d.arp && ((d.spa & mask) === net || (d.tpa & mask) === net));
}

/** proto: 6, 17, or -1 for either. */
function portLeaf(dir: number, proto: number, lo: number, hi: number): Pred {
  if (dir === DIR_SRC) {
    return (d) => (proto < 0 || d.proto === proto) && d.sport >= lo && d.sport <= hi;
  }
  if (dir === DIR_DST) {
    return (d) => (proto < 0 || d.proto === proto) && d.dport >= lo && d.dport <= hi;
  }
  return (d) => (proto < 0 || d.proto === proto) &&
    ((d.sport >= lo && d.sport <= hi) || (d.dport >= lo && d.dport <= hi));
}

const CMP_LT = 0;
const CMP_LE = 1;
const CMP_GT = 2;
const CMP_GE = 3;
const CMP_EQ = 4;
const CMP_NE = 5;

function lenLeaf(op: number, n: number): Pred {
  switch (op) {
    case CMP_LT: return (d) => d.len < n;
    case CMP_LE: return (d) => d.len <= n;
    case CMP_GT: return (d) => d.len > n;
    case CMP_GE: return (d) => d.len >= n;
    case CMP_EQ: return (d) => d.len === n;
    default: return (d) => d.len !== n;
  }
}

const isBroadcast: Pred = (d, buf) => {
  const o = d.off;
  return d.l2 && (buf[o] & buf[o + 1] & buf[o + 2] & buf[o + 3] & buf[o + 4] & buf[o + 5]) === 0xff;
};
const isMulticast: Pred = (d, buf) => d.l2 && (buf[d.off] & 1) !== 0;
const isTagged: Pred = (d) => d.tags !== 0;
const always: Pred = () => true;

function etherTypeLeaf(et: number): Pred { return (d) => d.et === et; }
function protoLeaf(p: number): Pred { return (d) => d.proto === p; }
function vidLeaf(v: number): Pred { return (d) => d.vid === v; }
function pcpLeaf(v: number): Pred { return (d) => d.pcp === v; }
function icmpTypeLeaf(v: number): Pred { return (d) => d.icmpType === v; }

function notNode(a: Pred): Pred { return (d, buf) => !a(d, buf); }

function andNode(list: Pred[]): Pred {
  if (list.length === 1) return list[0];
  if (list.length === 2) { const [a, b] = list; return (d, buf) => a(d, buf) && b(d, buf); }
  if (list.length === 3) { const [a, b, c] = list; return (d, buf) => a(d, buf) && b(d, buf) && c(d, buf); }
  const fs = list.slice();
  const n = fs.length;
  return (d, buf) => {
    for (let i = 0; i < n; i++) if (!fs[i](d, buf)) return false;
    return true;
  };
}

function orNode(list: Pred[]): Pred {
  if (list.length === 1) return list[0];
  if (list.length === 2) { const [a, b] = list; return (d, buf) => a(d, buf) || b(d, buf); }
  if (list.length === 3) { const [a, b, c] = list; return (d, buf) => a(d, buf) || b(d, buf) || c(d, buf); }
  const fs = list.slice();
  const n = fs.length;
  return (d, buf) => {
    for (let i = 0; i < n; i++) if (fs[i](d, buf)) return true;
    return false;
  };
}

// ---------------------------------------------------------------------------------------
// Lexer

const T_WORD = 0;
const T_LPAREN = 1;
const T_RPAREN = 2;
const T_NOT = 3;
const T_AND = 4;
const T_OR = 5;
const T_CMP = 6;
const T_EOF = 7;

interface Token {
  type: number;
  /** The source text (original case). */
  text: string;
  /** Lower-cased text (keywords compare against this). */
  lower: string;
  /** 1-based. */
  col: number;
}

const WORD_CHAR = /[A-Za-z0-9_.:\/-]/;

function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = src.length;
  const push = (type: number, text: string, col: number): void => {
    out.push({ type, text, lower: text.toLowerCase(), col });
  };
  while (i < n) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') { i++; continue; }
    const col = i + 1;
    const two = src.slice(i, i + 2);
    if (two === '&&') { push(T_AND, two, col); i += 2; continue; }
    if (two === '||') { push(T_OR, two, col); i += 2; continue; }
    if (two === '<=' || two === '>=' || two === '==' || two === '!=') { push(T_CMP, two, col); i += 2; continue; }
    if (c === '<' || c === '>' || c === '=') { push(T_CMP, c, col); i++; continue; }
    if (c === '!') { push(T_NOT, c, col); i++; continue; }
    if (c === '(') { push(T_LPAREN, c, col); i++; continue; }
    if (c === ')') { push(T_RPAREN, c, col); i++; continue; }
    if (WORD_CHAR.test(c)) {
      let j = i + 1;
      while (j < n && WORD_CHAR.test(src[j])) j++;
      const text = src.slice(i, j);
      const lower = text.toLowerCase();
      const type = lower === 'and' ? T_AND : lower === 'or' ? T_OR : lower === 'not' ? T_NOT : T_WORD;
      push(type, text, col);
      i = j;
      continue;
    }
    const shown = c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f
      ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c;
    throw new FilterError(`filter: unexpected character '${shown}' at column ${col}`, col);
  }
  out.push({ type: T_EOF, text: '', lower: '', col: n + 1 });
  return out;
}

// ---------------------------------------------------------------------------------------
// Parser: recursive descent straight to the closure tree, tracking the decode level.

const DEC_RE = /^(0|[1-9][0-9]*)$/;
const HEX_RE = /^0x[0-9a-f]+$/i;
const IPV4ISH_RE = /^[0-9.]+$/;

class Parser {
  private pos = 0;
  private depth = 0;
  level = LVL_NONE;

  constructor(private readonly toks: Token[]) {}

  private peek(): Token { return this.toks[this.pos]; }
  private next(): Token { return this.toks[this.pos++]; }
  private need(lvl: number): void { if (lvl > this.level) this.level = lvl; }

  private fail(msg: string, tok: Token): never {
    throw new FilterError(`filter: ${msg} at column ${tok.col}`, tok.col);
  }

  private static describe(t: Token): string {
    return t.type === T_EOF ? 'the end' : `'${t.text}'`;
  }

  parse(): Pred {
    if (this.peek().type === T_EOF) return always;
    const p = this.parseOr();
    const t = this.peek();
    if (t.type === T_RPAREN) this.fail(`unexpected ')'`, t);
    if (t.type !== T_EOF) this.fail(`expected 'and' or 'or' before '${t.text}'`, t);
    return p;
  }

  private parseOr(): Pred {
    const list = [this.parseAnd()];
    while (this.peek().type === T_OR) {
      this.next();
      list.push(this.parseAnd());
    }
    return orNode(list);
  }

  private parseAnd(): Pred {
    const list = [this.parseUnary()];
    while (this.peek().type === T_AND) {
      this.next();
      list.push(this.parseUnary());
    }
    return andNode(list);
  }

  private enter(t: Token): void {
    if (++this.depth > FILTER_MAX_DEPTH) {
      this.fail(`expression nests too deeply (more than ${FILTER_MAX_DEPTH} levels of '(' and 'not')`, t);
    }
  }

  private parseUnary(): Pred {
    const t = this.next();
    switch (t.type) {
      case T_NOT: {
        this.enter(t);
        const a = this.parseUnary();
        this.depth--;
        return notNode(a);
      }
      case T_LPAREN: {
        this.enter(t);
        const inner = this.parseOr();
        const close = this.next();
        if (close.type !== T_RPAREN) {
          if (close.type === T_EOF) this.fail(`expected ')' to close the '(' of column ${t.col}`, close);
          this.fail(`expected 'and', 'or' or ')' before '${close.text}'`, close);
        }
        this.depth--;
        return inner;
      }
      case T_WORD:
        return this.parsePrimitive(t);
      case T_EOF: {
        const prev = this.toks[this.pos - 2];
        this.fail(prev === undefined ? 'expected an expression' : `expected an expression after '${prev.text}'`, t);
        break;
      }
      default: {
        const prev = this.toks[this.pos - 2];
        this.fail(prev === undefined
          ? `expected an expression, got '${t.text}'`
          : `expected an expression after '${prev.text}', got '${t.text}'`, t);
      }
    }
    return always; // unreachable
  }

  // -- values ----------------------------------------------------------------------------

  /** The next token as a word, or fail with "expected WHAT after 'AFTER'". */
  private word(what: string, after: string): Token {
    const t = this.peek();
    if (t.type !== T_WORD) this.fail(`expected ${what} after '${after}'${t.type === T_EOF ? '' : `, got '${t.text}'`}`, t);
    this.pos++;
    return t;
  }

  private static parseNumber(text: string): number {
    if (DEC_RE.test(text)) return Number(text);
    if (HEX_RE.test(text)) return parseInt(text.slice(2), 16);
    return NaN;
  }

  private number(what: string, after: string, max: number, rangeName = what): number {
    const t = this.word(what, after);
    const v = Parser.parseNumber(t.text);
    if (Number.isNaN(v)) {
      if (/^0[0-9]+$/.test(t.text)) this.fail(`invalid number '${t.text}' (no leading zeros; 0x for hex)`, t);
      this.fail(`expected ${what} after '${after}', got '${t.text}'`, t);
    }
    if (v > max) this.fail(`${rangeName} ${t.text} is out of range (0-${max})`, t);
    return v;
  }

  private mac(after: string): [number, number] {
    const t = this.word('a MAC address', after);
    let b: Uint8Array;
    try {
      b = parseMac(t.text);
    } catch {
      this.fail(`expected a MAC address (aa:bb:cc:dd:ee:ff) after '${after}', got '${t.text}'`, t);
    }
    return [macHi(b, 0), macLo(b, 0)];
  }

  private static isMacLike(text: string): boolean {
    return text.includes(':') || text.includes('-');
  }

  private ipv4(t: Token, text: string): number {
    try {
      return parseIp(text) | 0;
    } catch {
      this.fail(`invalid IPv4 address '${text}'`, t);
    }
  }

  /** a.b.c.d/len or a.b.c.d; returns [net, mask] as int32. Host bits must be zero. */
  private cidr(after: string): [number, number] {
    const t = this.word('a network (a.b.c.d/len)', after);
    const slash = t.text.indexOf('/');
    const addrText = slash < 0 ? t.text : t.text.slice(0, slash);
    if (!IPV4ISH_RE.test(addrText)) {
      this.fail(`expected a network (a.b.c.d/len) after '${after}', got '${t.text}'`, t);
    }
    const addr = this.ipv4(t, addrText);
    let bits = 32;
    if (slash >= 0) {
      const lenText = t.text.slice(slash + 1);
      bits = DEC_RE.test(lenText) ? Number(lenText) : NaN;
      if (!(bits >= 0 && bits <= 32)) this.fail(`invalid prefix length '${lenText}' in '${t.text}' (0-32)`, t);
    }
    const mask = bits === 0 ? 0 : (-1 << (32 - bits)) | 0;
    if ((addr & mask) !== addr) {
      const net = (addr & mask) >>> 0;
      const netText = `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${bits}`;
      this.fail(`'${t.text}' has host bits set (the network is ${netText})`, t);
    }
    return [addr, mask];
  }

  // -- primitives ------------------------------------------------------------------------

  private atWord(...words: string[]): string | undefined {
    const t = this.peek();
    return t.type === T_WORD && words.includes(t.lower) ? t.lower : undefined;
  }

  /** `host X` (either), after the optional direction: MAC -> ether, else IPv4/ARP. */
  private hostArg(dir: number, which: number, after: string, allowMac: boolean): Pred {
    const t = this.word(allowMac ? 'an IPv4 or MAC address' : 'an IPv4 address', after);
    if (Parser.isMacLike(t.text)) {
      if (!allowMac) this.fail(`expected an IPv4 address after '${after}', got '${t.text}'`, t);
      this.pos--;
      const [hi, lo] = this.mac(after);
      this.need(LVL_L2);
      return macLeaf(dir, hi, lo);
    }
    if (!IPV4ISH_RE.test(t.text)) {
      this.fail(`expected ${allowMac ? 'an IPv4 or MAC address' : 'an IPv4 address'} after '${after}', got '${t.text}'`, t);
    }
    const a = this.ipv4(t, t.text);
    this.need(LVL_L3);
    return ipLeaf(dir, which, a, -1);
  }

  private netArg(dir: number, which: number, after: string): Pred {
    const [net, mask] = this.cidr(after);
    this.need(LVL_L3);
    return ipLeaf(dir, which, net, mask);
  }

  private portArg(dir: number, proto: number, after: string): Pred {
    const p = this.number('a port number', after, 65535, 'port');
    this.need(LVL_L4);
    return portLeaf(dir, proto, p, p);
  }

  private portRangeArg(dir: number, proto: number, after: string): Pred {
    const t = this.word('a port range (A-B)', after);
    const m = /^([^-]+)-([^-]+)$/.exec(t.text);
    const a = m === null ? NaN : Parser.parseNumber(m[1]);
    const b = m === null ? NaN : Parser.parseNumber(m[2]);
    if (Number.isNaN(a) || Number.isNaN(b)) this.fail(`expected a port range (A-B) after '${after}', got '${t.text}'`, t);
    if (a > 65535 || b > 65535) this.fail(`port range ${t.text} is out of range (0-65535)`, t);
    if (a > b) this.fail(`port range ${t.text} is empty (${a} > ${b})`, t);
    this.need(LVL_L4);
    return portLeaf(dir, proto, a, b);
  }

  /** After `src`/`dst` (dir set), or after `ip`/`arp` + `src`/`dst`. */
  private directed(dir: number, which: number, kw: string, proto: boolean): Pred {
    const q = this.atWord('host', 'net', 'port', 'portrange');
    if (q === 'host') { this.pos++; return this.hostArg(dir, which, `${kw} host`, which === WHICH_BOTH); }
    if (q === 'net') { this.pos++; return this.netArg(dir, which, `${kw} net`); }
    if (q !== undefined && proto) {
      this.pos++;
      return q === 'port' ? this.portArg(dir, -1, `${kw} port`) : this.portRangeArg(dir, -1, `${kw} portrange`);
    }
    return this.hostArg(dir, which, kw, which === WHICH_BOTH);
  }

  private parsePrimitive(t: Token): Pred {
    const kw = t.lower;
    switch (kw) {
      case 'ether': {
        const q = this.word(`'host', 'src', 'dst', 'broadcast', 'multicast' or 'proto'`, 'ether');
        switch (q.lower) {
          case 'host': { const [hi, lo] = this.mac('ether host'); this.need(LVL_L2); return macLeaf(DIR_EITHER, hi, lo); }
          case 'src':
          case 'dst': {
            const dir = q.lower === 'src' ? DIR_SRC : DIR_DST;
            let after = `ether ${q.lower}`;
            if (this.atWord('host') !== undefined) { this.pos++; after += ' host'; }
            const [hi, lo] = this.mac(after);
            this.need(LVL_L2);
            return macLeaf(dir, hi, lo);
          }
          case 'broadcast': this.need(LVL_L2); return isBroadcast;
          case 'multicast': this.need(LVL_L2); return isMulticast;
          case 'proto': {
            const v = this.number('an EtherType', 'ether proto', 0xffff, 'EtherType');
            this.need(LVL_L2);
            return etherTypeLeaf(v);
          }
          default:
            this.fail(`expected 'host', 'src', 'dst', 'broadcast', 'multicast' or 'proto' after 'ether', got '${q.text}'`, q);
        }
        break;
      }
      case 'mac': {
        const [hi, lo] = this.mac('mac');
        this.need(LVL_L2);
        return macLeaf(DIR_EITHER, hi, lo);
      }
      case 'broadcast': this.need(LVL_L2); return isBroadcast;
      case 'multicast': this.need(LVL_L2); return isMulticast;
      case 'host': return this.hostArg(DIR_EITHER, WHICH_BOTH, 'host', true);
      case 'src': return this.directed(DIR_SRC, WHICH_BOTH, 'src', true);
      case 'dst': return this.directed(DIR_DST, WHICH_BOTH, 'dst', true);
      case 'net': return this.netArg(DIR_EITHER, WHICH_BOTH, 'net');
      case 'ip':
      case 'arp': {
        const which = kw === 'ip' ? WHICH_IP : WHICH_ARP;
        const q = this.atWord('host', 'src', 'dst', 'net', 'proto');
        if (q === undefined) { this.need(LVL_L2); return etherTypeLeaf(kw === 'ip' ? ET_IPV4 : ET_ARP); }
        this.pos++;
        if (q === 'host') return this.hostArg(DIR_EITHER, which, `${kw} host`, false);
        if (q === 'net') return this.netArg(DIR_EITHER, which, `${kw} net`);
        if (q === 'proto') {
          if (kw === 'arp') this.fail(`'proto' does not apply to 'arp'`, this.toks[this.pos - 1]);
          return this.protoArg('ip proto');
        }
        return this.directed(q === 'src' ? DIR_SRC : DIR_DST, which, `${kw} ${q}`, false);
      }
      case 'ip6': this.need(LVL_L2); return etherTypeLeaf(ET_IPV6);
      case 'tcp':
      case 'udp': {
        const proto = kw === 'tcp' ? 6 : 17;
        let dir = DIR_EITHER;
        let after = kw;
        const d = this.atWord('src', 'dst');
        if (d !== undefined) {
          this.pos++;
          dir = d === 'src' ? DIR_SRC : DIR_DST;
          after += ` ${d}`;
          if (this.atWord('port', 'portrange') === undefined) {
            const n = this.peek();
            this.fail(`expected 'port' or 'portrange' after '${after}'${n.type === T_EOF ? '' : `, got '${n.text}'`}`, n);
          }
        }
        const q = this.atWord('port', 'portrange');
        if (q === undefined) { this.need(LVL_L3); return protoLeaf(proto); }
        this.pos++;
        return q === 'port' ? this.portArg(dir, proto, `${after} port`) : this.portRangeArg(dir, proto, `${after} portrange`);
      }
      case 'icmp': this.need(LVL_L3); return protoLeaf(1);
      case 'proto': return this.protoArg('proto');
      case 'port': return this.portArg(DIR_EITHER, -1, 'port');
      case 'portrange': return this.portRangeArg(DIR_EITHER, -1, 'portrange');
      case 'vlan': {
        this.need(LVL_L2);
        const n = this.peek();
        if (n.type === T_WORD && /^[0-9]/.test(n.text)) return vidLeaf(this.number('a VLAN ID', 'vlan', 4095, 'VLAN ID'));
        return isTagged;
      }
      case 'pcp': this.need(LVL_L2); return pcpLeaf(this.number('a priority (0-7)', 'pcp', 7, 'priority'));
      case 'len': {
        const op = this.peek();
        if (op.type !== T_CMP) {
          this.fail(`expected '<', '<=', '>', '>=', '=' or '!=' after 'len'${op.type === T_EOF ? '' : `, got '${op.text}'`}`, op);
        }
        this.pos++;
        const c = op.text === '<' ? CMP_LT : op.text === '<=' ? CMP_LE : op.text === '>' ? CMP_GT
          : op.text === '>=' ? CMP_GE : op.text === '!=' ? CMP_NE : CMP_EQ;
        return lenLeaf(c, this.number('a length', `len ${op.text}`, 0x7fffffff, 'length'));
      }
      case 'less': return lenLeaf(CMP_LE, this.number('a length', 'less', 0x7fffffff, 'length'));
      case 'greater': return lenLeaf(CMP_GE, this.number('a length', 'greater', 0x7fffffff, 'length'));
      case 'icmp-type': {
        const v = this.number('an ICMP type', 'icmp-type', 255, 'ICMP type');
        this.need(LVL_L4);
        return icmpTypeLeaf(v);
      }
      default:
        break;
    }
    // A bare value: say which keyword it needs (tcpdump's 'port 80 or 443' shorthand is not supported).
    if (Parser.isMacLike(t.text) && /^[0-9a-f]{2}[:-]/i.test(t.text)) {
      this.fail(`'${t.text}' needs a keyword before it, e.g. 'ether host ${t.text}'`, t);
    }
    if (/^[0-9]+(\.[0-9]+){3}(\/[0-9]+)?$/.test(t.text)) {
      this.fail(`'${t.text}' needs a keyword before it, e.g. '${t.text.includes('/') ? 'net' : 'host'} ${t.text}'`, t);
    }
    if (/^[0-9]/.test(t.text)) this.fail(`'${t.text}' needs a keyword before it, e.g. 'port ${t.text}'`, t);
    this.fail(`unknown keyword '${t.text}'`, t);
  }

  private protoArg(after: string): Pred {
    const n = this.peek();
    this.need(LVL_L3);
    if (n.type === T_WORD && (n.lower === 'tcp' || n.lower === 'udp' || n.lower === 'icmp')) {
      this.pos++;
      return protoLeaf(n.lower === 'tcp' ? 6 : n.lower === 'udp' ? 17 : 1);
    }
    return protoLeaf(this.number('a protocol number', after, 255, 'protocol'));
  }
}

// ---------------------------------------------------------------------------------------

class Filter implements CompiledFilter {
  private readonly d = new Decoded();
  constructor(readonly source: string, private readonly pred: Pred, private readonly level: number) {}

  match(buf: Uint8Array, off: number, len: number): boolean {
    if (off < 0 || len < 0) return false;
    if (off + len > buf.length) len = buf.length > off ? buf.length - off : 0;
    const d = this.d;
    decode(d, buf, off, len, this.level);
    return this.pred(d, buf);
  }
}

/**
 * Compile a filter expression (see the header of this file). '' or only whitespace matches
 * every frame. Throws a FilterError saying what is wrong and at which column.
 */
export function compileFilter(source: string): CompiledFilter {
  if (typeof source !== 'string') throw new FilterError('filter: the expression must be a string');
  if (source.length > FILTER_MAX_SOURCE) {
    throw new FilterError(`filter: expression is too long (${source.length} characters; at most ${FILTER_MAX_SOURCE})`);
  }
  const p = new Parser(lex(source));
  const pred = p.parse();
  return new Filter(source, pred, p.level);
}
