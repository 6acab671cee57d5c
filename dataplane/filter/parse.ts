// Recursive descent over the tokens (lex.ts) straight to the closure tree (tree.ts),
// tracking the decode level the tree needs (decode.ts). The grammar and what each primitive
// means are in the header of ../filter.ts; every error names its column.

import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../wire/ethernet';
import { parseIp } from '../wire/ip';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4';
import { macHi, macLo, parseMac } from '../wire/mac';
import { VID_MAX } from '../wire/vlan';
import { LVL_L2, LVL_L3, LVL_L4, LVL_NONE } from './decode';
import { FilterError } from './error';
import { T_CMP, T_EOF, T_LPAREN, T_NOT, T_OR, T_AND, T_RPAREN, T_WORD, type Token } from './lex';
import {
  always, andNode, CMP_EQ, CMP_GE, CMP_GT, CMP_LE, CMP_LT, CMP_NE, DIR_DST, DIR_EITHER, DIR_SRC,
  etherTypeLeaf, icmpTypeLeaf, ipLeaf, isBroadcast, isMulticast, isTagged, lenLeaf, macLeaf, notNode,
  orNode, pcpLeaf, portLeaf, type Pred, protoLeaf, vidLeaf, WHICH_ARP, WHICH_BOTH, WHICH_IP,
} from './tree';

export const FILTER_MAX_DEPTH = 32;

const DEC_RE = /^(0|[1-9][0-9]*)$/;
const HEX_RE = /^0x[0-9a-f]+$/i;
const IPV4ISH_RE = /^[0-9.]+$/;

export class Parser {
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
        if (q === undefined) { this.need(LVL_L2); return etherTypeLeaf(kw === 'ip' ? ETHERTYPE_IPV4 : ETHERTYPE_ARP); }
        this.pos++;
        if (q === 'host') return this.hostArg(DIR_EITHER, which, `${kw} host`, false);
        if (q === 'net') return this.netArg(DIR_EITHER, which, `${kw} net`);
        if (q === 'proto') {
          if (kw === 'arp') this.fail(`'proto' does not apply to 'arp'`, this.toks[this.pos - 1]);
          return this.protoArg('ip proto');
        }
        return this.directed(q === 'src' ? DIR_SRC : DIR_DST, which, `${kw} ${q}`, false);
      }
      case 'ip6': this.need(LVL_L2); return etherTypeLeaf(ETHERTYPE_IPV6);
      case 'tcp':
      case 'udp': {
        const proto = kw === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
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
      case 'icmp': this.need(LVL_L3); return protoLeaf(IPPROTO_ICMP);
      case 'proto': return this.protoArg('proto');
      case 'port': return this.portArg(DIR_EITHER, -1, 'port');
      case 'portrange': return this.portRangeArg(DIR_EITHER, -1, 'portrange');
      case 'vlan': {
        this.need(LVL_L2);
        const n = this.peek();
        if (n.type === T_WORD && /^[0-9]/.test(n.text)) return vidLeaf(this.number('a VLAN ID', 'vlan', VID_MAX, 'VLAN ID'));
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
      return protoLeaf(n.lower === 'tcp' ? IPPROTO_TCP : n.lower === 'udp' ? IPPROTO_UDP : IPPROTO_ICMP);
    }
    return protoLeaf(this.number('a protocol number', after, 255, 'protocol'));
  }
}
