// Frame filters for `vsw trace --filter EXPR` and `vsw capture --filter EXPR`: a small
// tcpdump-like language, compiled once (on the main thread to validate it, again in each
// worker) into a predicate that runs per frame on the hot path without allocating.
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
// Implementation, in filter/: lex.ts cuts the source into tokens; parse.ts compiles them
// straight to a tree of small closures (tree.ts) over one per-filter scratch object, and
// notes how deep the tree reads; per frame, decode.ts reads the frame once through wire/'s
// field offsets, only that deep (nothing / L2 / L3 / L4), into that object's integer fields, and
// the leaves compare fields. `and`/`or` short-circuit.

import { Decoded, decode } from './filter/decode';
import { FilterError } from './filter/error';
import { lex } from './filter/lex';
import { Parser } from './filter/parse';
import type { Pred } from './filter/tree';

export { FilterError } from './filter/error';
export { FILTER_MAX_DEPTH } from './filter/parse';

export interface CompiledFilter {
  readonly source: string;
  /** off/len: the Ethernet frame (no virtio-net header). Never throws, never allocates. */
  match(buf: Uint8Array, off: number, len: number): boolean;
}

export const FILTER_MAX_SOURCE = 1024;

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
