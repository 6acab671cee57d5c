import { describe, expect, it } from 'vitest';
import {
  buildError,
  buildResponse,
  encodeName,
  parseQuery,
  parseResponseHead,
  ptrNameToIp,
  QTYPE,
  RCODE,
  readName,
  type ParsedQuery,
  type ParseResult,
} from '../../../dataplane/dns/message';
import { decode, fakeAnswer, makeQuery, mutate, nameWire, prng } from './helpers';

function ok(r: ParseResult): ParsedQuery {
  if (!r.ok) throw new Error(`parse failed: ${r.reason}`);
  return r.query;
}

function failure(r: ParseResult): Extract<ParseResult, { ok: false }> {
  if (r.ok) throw new Error('parse unexpectedly succeeded');
  return r;
}

/** A header (id 0xbeef, RD) with the given counts, followed by `rest`. */
function raw(counts: [number, number, number, number], rest: number[], flags = 0x0100): Uint8Array {
  const b = [0xbe, 0xef, flags >> 8, flags & 0xff];
  for (const c of counts) b.push(c >> 8, c & 0xff);
  return Uint8Array.from([...b, ...rest]);
}

describe('parseQuery: well-formed queries', () => {
  it('reads id, flags, question, no EDNS', () => {
    const q = ok(parseQuery(makeQuery('web.mynet', QTYPE.A, { id: 0xabcd })));
    expect(q.id).toBe(0xabcd);
    expect(q.opcode).toBe(0);
    expect(q.rd).toBe(true);
    expect(q.question).toEqual({ name: 'web.mynet', type: 1, cls: 1 });
    expect(q.edns).toBeNull();
    expect(q.size).toBe(12 + 11 + 4);
    expect(Array.from(q.questionWire)).toEqual([...nameWire('web.mynet'), 0, 1, 0, 1]);
  });

  it('lower-cases the name but keeps the wire case for the echo', () => {
    const msg = makeQuery('WeB.MyNet', QTYPE.AAAA, { rd: false });
    const q = ok(parseQuery(msg));
    expect(q.question.name).toBe('web.mynet');
    expect(q.rd).toBe(false);
    const r = decode(buildResponse(q, RCODE.NOERROR, [], 512));
    expect(r.questions[0].name).toBe('WeB.MyNet');
  });

  it('reads the root name as the empty string', () => {
    expect(ok(parseQuery(makeQuery('', QTYPE.NS))).question.name).toBe('');
  });

  it('reads EDNS: UDP size (at least 512), DO bit, version', () => {
    const q = ok(parseQuery(makeQuery('a', 1, { edns: 1232, ednsDo: true })));
    expect(q.edns).toEqual({ udpSize: 1232, version: 0, do: true });
    expect(ok(parseQuery(makeQuery('a', 1, { edns: 100 }))).edns?.udpSize).toBe(512);
    // a well-formed option (cookie, 8 bytes) is accepted
    const cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
    expect(ok(parseQuery(makeQuery('a', 1, { edns: 4096, ednsData: cookie }))).edns?.udpSize).toBe(4096);
  });

  it('accepts UDP queries over 512 bytes only with EDNS, TCP ones up to 65535', () => {
    const pad = [0, 12, 0x03, 0xe8, ...new Array(1000).fill(0)]; // EDNS padding option, 1000 bytes
    const big = makeQuery('a', 1, { edns: 4096, ednsData: pad });
    expect(big.length).toBeGreaterThan(512);
    expect(parseQuery(big).ok).toBe(true);
    expect(parseQuery(big, { transport: 'tcp' }).ok).toBe(true);
  });
});

describe('parseQuery: hostile input', () => {
  it.each([0, 1, 5, 11])('drops %d-byte messages (short)', (n) => {
    const r = failure(parseQuery(makeQuery('web').subarray(0, n)));
    expect(r).toMatchObject({ reason: 'short', id: null });
  });

  it('drops responses (QR set)', () => {
    const msg = makeQuery('web');
    msg[2] |= 0x80;
    expect(failure(parseQuery(msg))).toMatchObject({ reason: 'response', id: null });
  });

  it.each([
    ['qdcount 0', [0, 0, 0, 0] as const],
    ['qdcount 2', [2, 0, 0, 0] as const],
    ['ancount 1', [1, 1, 0, 0] as const],
    ['nscount 1', [1, 0, 1, 0] as const],
    ['arcount 2', [1, 0, 0, 2] as const],
  ])('FORMERR for %s', (_label, counts) => {
    const msg = raw([...counts], [...nameWire('web'), 0, 1, 0, 1]);
    const r = failure(parseQuery(msg));
    expect(r.id).toBe(0xbeef);
    expect(r.rcode).toBe(RCODE.FORMERR);
  });

  it('FORMERR for absurd counts without reading (or allocating) that many records', () => {
    for (const counts of [[0xffff, 0, 0, 0], [1, 0xffff, 0, 0], [1, 0, 0xffff, 0], [1, 0, 0, 0xffff], [0xffff, 0xffff, 0xffff, 0xffff]] as const) {
      const r = failure(parseQuery(raw([...counts], [...nameWire('web'), 0, 1, 0, 1])));
      expect(r).toMatchObject({ id: 0xbeef, rcode: RCODE.FORMERR });
    }
  });

  it('FORMERR for every truncation of a valid query (never a throw)', () => {
    const full = makeQuery('www.example.com', QTYPE.A, { edns: 1232, ednsData: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8] });
    expect(parseQuery(full).ok).toBe(true);
    for (let n = 12; n < full.length; n++) {
      const r = failure(parseQuery(full.subarray(0, n)));
      expect(r.id).toBe(0x1234);
      expect(r.rcode).toBe(RCODE.FORMERR);
    }
  });

  it('FORMERR for trailing bytes after the question', () => {
    const msg = Uint8Array.from([...makeQuery('web'), 0, 0, 0]);
    expect(failure(parseQuery(msg))).toMatchObject({ rcode: RCODE.FORMERR, reason: 'trailing bytes' });
  });

  it.each([
    ['pointer to itself', [0xc0, 12, 0, 1, 0, 1]],
    ['forward pointer', [0xc0, 14, 3, 0x61, 0x62, 0x63, 0, 0, 1, 0, 1]],
    ['two pointers in a loop', [1, 0x61, 0xc0, 16, 0xc0, 14, 0, 1, 0, 1]],
    ['pointer into the header', [3, 0x77, 0x77, 0x77, 0xc0, 0, 0, 1, 0, 1]],
    ['truncated pointer', [0xc0]],
  ])('FORMERR for a compression pointer in the question (%s), without following it', (_label, body) => {
    const r = failure(parseQuery(raw([1, 0, 0, 0], body)));
    expect(r.rcode).toBe(RCODE.FORMERR);
    expect(r.id).toBe(0xbeef);
  });

  it('FORMERR for labels over 63 bytes (extended label types) and names over 255 bytes', () => {
    const long = [0x40, ...new Array(64).fill(0x61), 0, 0, 1, 0, 1];
    expect(failure(parseQuery(raw([1, 0, 0, 0], long))).rcode).toBe(RCODE.FORMERR);
    const ext = [0x41, 0x61, 0, 0, 1, 0, 1];
    expect(failure(parseQuery(raw([1, 0, 0, 0], ext))).rcode).toBe(RCODE.FORMERR);
    // 4 labels of 63 = 256 wire bytes with the root: one too many
    const label = [63, ...new Array(63).fill(0x61)];
    const tooLong = [...label, ...label, ...label, ...label, 0, 0, 1, 0, 1];
    expect(failure(parseQuery(raw([1, 0, 0, 0], tooLong, 0), { transport: 'tcp' }))).toMatchObject({ reason: 'name too long' });
    // 3 x 63 + 61 = 255 exactly: accepted
    const max = [...label, ...label, ...label, 61, ...new Array(61).fill(0x62), 0, 0, 1, 0, 1];
    expect(ok(parseQuery(raw([1, 0, 0, 0], max))).question.name.length).toBe(253);
  });

  it('FORMERR for oversized messages: > 512 bytes over UDP without EDNS, > 65535 on any transport', () => {
    const big = raw([1, 0, 0, 0], [...nameWire('web'), 0, 1, 0, 1, ...new Array(600).fill(0)]);
    expect(failure(parseQuery(big))).toMatchObject({ id: 0xbeef, rcode: RCODE.FORMERR, reason: 'oversized' });
    // over TCP the same bytes are just trailing garbage
    expect(failure(parseQuery(big, { transport: 'tcp' }))).toMatchObject({ reason: 'trailing bytes' });
    const huge = new Uint8Array(70000);
    huge.set(makeQuery('web', 1, { edns: 4096 }));
    expect(failure(parseQuery(huge, { transport: 'tcp' }))).toMatchObject({ id: 0x1234, rcode: RCODE.FORMERR, reason: 'oversized' });
  });

  it.each([1, 2, 4, 5, 15])('NOTIMP for opcode %d', (opcode) => {
    const r = failure(parseQuery(makeQuery('web', 1, { opcode, id: 7 })));
    expect(r).toMatchObject({ id: 7, rcode: RCODE.NOTIMP });
    const e = decode(buildError(r.id as number, r.rcode, r.query, r.flags));
    expect(e).toMatchObject({ id: 7, qr: true, opcode, rcode: RCODE.NOTIMP, rd: true });
    expect(e.questions).toEqual([]);
  });

  it.each([[3, 'CH'], [4, 'HS'], [255, 'ANY'], [254, 'NONE']])('NOTIMP for class %d (%s), question echoed', (cls) => {
    const r = failure(parseQuery(makeQuery('version.bind', QTYPE.TXT, { cls, edns: 1232 })));
    expect(r).toMatchObject({ id: 0x1234, rcode: RCODE.NOTIMP, reason: 'class' });
    const e = decode(buildError(r.id as number, r.rcode, r.query, r.flags));
    expect(e.rcode).toBe(RCODE.NOTIMP);
    expect(e.questions).toEqual([{ name: 'version.bind', type: QTYPE.TXT, cls }]);
    expect(e.opt).not.toBeNull();
  });

  it('BADVERS for EDNS version 1: header RCODE 0, extended RCODE 1 in the OPT', () => {
    const r = failure(parseQuery(makeQuery('web', 1, { edns: 1232, ednsVersion: 1 })));
    expect(r.rcode).toBe(RCODE.BADVERS);
    const e = decode(buildError(r.id as number, r.rcode, r.query, r.flags));
    expect(e.rcode).toBe(0);
    expect(e.opt).toMatchObject({ extRcode: 1, version: 0 });
  });

  it('FORMERR for an additional record that is not a well-formed OPT', () => {
    const q = Array.from(makeQuery('web'));
    q[11] = 1; // ARCOUNT 1
    const tail = (rr: number[]): Uint8Array => Uint8Array.from([...q, ...rr]);
    // an A record in the additional section
    expect(failure(parseQuery(tail([0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]))).reason).toMatch(/not an OPT/);
    // OPT with a non-root owner
    expect(failure(parseQuery(tail([1, 0x61, 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0]))).reason).toMatch(/not an OPT/);
    // OPT whose option overruns its RDATA
    expect(failure(parseQuery(tail([0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 8]))).rcode).toBe(RCODE.FORMERR);
    // OPT with a dangling 2-byte option
    expect(failure(parseQuery(tail([0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 2, 0, 10]))).rcode).toBe(RCODE.FORMERR);
    // OPT whose RDLENGTH runs past the message
    expect(failure(parseQuery(tail([0, 0, 41, 2, 0, 0, 0, 0, 0, 0xff, 0xff]))).rcode).toBe(RCODE.FORMERR);
  });

  it('escapes bytes outside printable ASCII, dots and backslashes inside labels', () => {
    const body = [5, 0x00, 0x20, 0xff, 0x2e, 0x5c, 5, 0x57, 0x65, 0x62, 0x7f, 0x21, 0, 0, 1, 0, 1];
    const q = ok(parseQuery(raw([1, 0, 0, 0], body)));
    expect(q.question.name).toBe('\\000\\032\\255\\.\\\\.web\\127!');
    // a single label 'web.mynet' is not the two labels web + mynet
    const one = ok(parseQuery(raw([1, 0, 0, 0], [9, ...Buffer.from('web.mynet'), 0, 0, 1, 0, 1])));
    expect(one.question.name).toBe('web\\.mynet');
    // and the escapes round-trip
    expect(Array.from(encodeName(q.question.name) as Uint8Array)).toEqual([5, 0x00, 0x20, 0xff, 0x2e, 0x5c, 5, 0x77, 0x65, 0x62, 0x7f, 0x21, 0]);
  });
});

describe('readName / encodeName', () => {
  it('encodes names, with or without the trailing dot', () => {
    expect(Array.from(encodeName('a.bc') as Uint8Array)).toEqual([1, 0x61, 2, 0x62, 0x63, 0]);
    expect(Array.from(encodeName('a.bc.') as Uint8Array)).toEqual([1, 0x61, 2, 0x62, 0x63, 0]);
    expect(Array.from(encodeName('') as Uint8Array)).toEqual([0]);
    expect(Array.from(encodeName('.') as Uint8Array)).toEqual([0]);
    expect(Array.from(encodeName('a\\.') as Uint8Array)).toEqual([2, 0x61, 0x2e, 0]);
  });

  it.each(['a..b', '.a', 'x'.repeat(64), `${'a'.repeat(63)}.`.repeat(4), 'a\\256', 'a\\', 'é'])('refuses %j', (n) => {
    expect(encodeName(n)).toBeNull();
  });

  it('readName reports, never throws', () => {
    expect(readName(Uint8Array.of(3, 0x61), 0)).toBe('truncated name');
    expect(readName(Uint8Array.of(), 0)).toBe('truncated name');
    expect(readName(Uint8Array.of(0xc0, 0), 0)).toMatch(/pointer/);
    expect(readName(Uint8Array.of(0), 0)).toEqual({ name: '', end: 1 });
  });
});

describe('buildResponse / buildError', () => {
  const q = ok(parseQuery(makeQuery('Web.MyNet', QTYPE.A, { id: 0x4242 })));

  it('sets QR and RA, copies RD, echoes the question, answers A records', () => {
    const r = decode(buildResponse(q, RCODE.NOERROR, [
      { type: 'A', name: 'web.mynet', addr: '10.89.0.2', ttl: 600 },
      { type: 'A', name: 'web.mynet', addr: '10.89.0.3', ttl: 600 },
    ], 512));
    expect(r).toMatchObject({ id: 0x4242, qr: true, ra: true, rd: true, aa: false, tc: false, rcode: 0, opcode: 0 });
    expect(r.questions).toEqual([{ name: 'Web.MyNet', type: 1, cls: 1 }]);
    expect(r.answers.map((a) => [a.name, a.type, a.cls, a.ttl, a.data])).toEqual([
      ['Web.MyNet', 1, 1, 600, '10.89.0.2'],
      ['Web.MyNet', 1, 1, 600, '10.89.0.3'],
    ]);
    expect(r.opt).toBeNull();
    expect(r.additional).toEqual([]);
  });

  it('sets AA on request, and writes PTR records', () => {
    const pq = ok(parseQuery(makeQuery('2.0.89.10.in-addr.arpa', QTYPE.PTR)));
    const r = decode(buildResponse(pq, 0, [{ type: 'PTR', name: '2.0.89.10.in-addr.arpa', target: 'web.mynet', ttl: 60 }], 512, { aa: true }));
    expect(r.aa).toBe(true);
    expect(r.answers).toMatchObject([{ name: '2.0.89.10.in-addr.arpa', type: 12, ttl: 60, data: 'web.mynet' }]);
  });

  it('writes owners that are not the question in full', () => {
    const r = decode(buildResponse(q, 0, [{ type: 'A', name: 'other.name', addr: '1.2.3.4', ttl: 1 }], 512));
    expect(r.answers[0].name).toBe('other.name');
  });

  it('leaves out answers it cannot encode instead of failing', () => {
    const r = decode(buildResponse(q, 0, [
      { type: 'A', name: 'web.mynet', addr: 'not-an-ip', ttl: 1 },
      { type: 'A', name: 'a..b', addr: '1.2.3.4', ttl: 1 },
      { type: 'A', name: 'web.mynet', addr: '1.2.3.4', ttl: 1 },
    ], 512));
    expect(r.answers.map((a) => a.data)).toEqual(['1.2.3.4']);
  });

  it('sets TC and keeps only the answers that fit maxSize', () => {
    const answers = Array.from({ length: 40 }, (_, i) => ({ type: 'A' as const, name: 'web.mynet', addr: `10.0.0.${i + 1}`, ttl: 600 }));
    const bytes = buildResponse(q, 0, answers, 512);
    expect(bytes.length).toBeLessThanOrEqual(512);
    const r = decode(bytes);
    expect(r.tc).toBe(true);
    // 12 + 15 (question) + 16 per answer <= 512 -> 30 answers
    expect(r.answers.length).toBe(30);
    expect(r.answers[29].data).toBe('10.0.0.30');
    const all = decode(buildResponse(q, 0, answers, 65535));
    expect(all.tc).toBe(false);
    expect(all.answers.length).toBe(40);
  });

  it('adds an OPT when the query had one (DO copied) and counts it against maxSize', () => {
    const eq = ok(parseQuery(makeQuery('web.mynet', 1, { edns: 4096, ednsDo: true })));
    const answers = Array.from({ length: 40 }, (_, i) => ({ type: 'A' as const, name: 'web.mynet', addr: `10.0.0.${i + 1}`, ttl: 600 }));
    const bytes = buildResponse(eq, 0, answers, 512, { udpSize: 1232 });
    expect(bytes.length).toBeLessThanOrEqual(512);
    const r = decode(bytes);
    expect(r.opt).toEqual({ udpSize: 1232, extRcode: 0, version: 0, do: true });
    expect(r.tc).toBe(true);
    expect(r.answers.length).toBe(29);
  });

  it('forces TC on request (no answers)', () => {
    const r = decode(buildResponse(q, RCODE.NXDOMAIN, [{ type: 'A', name: 'web.mynet', addr: '1.2.3.4', ttl: 1 }], 512, { tc: true }));
    expect(r).toMatchObject({ tc: true, rcode: RCODE.NXDOMAIN, answers: [] });
  });

  it('buildError without a question: header only, opcode and RD copied', () => {
    const bytes = buildError(0x1111, RCODE.FORMERR, undefined, (2 << 11) | 0x0100);
    expect(bytes.length).toBe(12);
    expect(decode(bytes)).toMatchObject({ id: 0x1111, qr: true, opcode: 2, rd: true, rcode: RCODE.FORMERR, questions: [] });
  });

  it('buildError with a question echoes it under the given ID', () => {
    const r = decode(buildError(9, RCODE.SERVFAIL, q));
    expect(r).toMatchObject({ id: 9, rcode: RCODE.SERVFAIL, questions: [{ name: 'Web.MyNet', type: 1, cls: 1 }], answers: [] });
  });
});

describe('parseResponseHead / ptrNameToIp', () => {
  it('reads an upstream answer and refuses queries and garbage', () => {
    const query = makeQuery('Example.COM', 1, { id: 77 });
    const head = parseResponseHead(fakeAnswer(query, { tc: true, rcode: 3 }));
    expect(head).toMatchObject({ id: 77, tc: true, rcode: 3, opcode: 0, question: { name: 'example.com', type: 1, cls: 1 } });
    expect(parseResponseHead(query)).toBeNull(); // QR clear
    expect(parseResponseHead(Uint8Array.of(1, 2, 0x80))).toBeNull();
  });

  it.each([
    ['4.3.2.1.in-addr.arpa', '1.2.3.4'],
    ['255.0.89.10.in-addr.arpa', '10.89.0.255'],
    ['3.2.1.in-addr.arpa', null],
    ['256.0.0.10.in-addr.arpa', null],
    ['01.0.0.10.in-addr.arpa', null],
    ['4.3.2.1.in-addr.arpa.example', null],
    ['x.4.3.2.1.in-addr.arpa', null],
  ])('%s -> %s', (name, ip) => {
    expect(ptrNameToIp(name)).toBe(ip);
  });
});

describe('fuzz', () => {
  const seeds = [
    makeQuery('web.mynet'),
    makeQuery('www.example.com', QTYPE.AAAA, { edns: 1232, ednsDo: true, ednsData: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8] }),
    makeQuery('', QTYPE.NS, { edns: 512 }),
    makeQuery('2.0.89.10.in-addr.arpa', QTYPE.PTR),
  ];

  it('random bytes: parseQuery never throws; a failure with an ID builds a readable error', () => {
    const rnd = prng(1);
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(rnd() * 80);
      const msg = Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
      if (len > 2 && rnd() < 0.5) msg[2] &= 0x07; // mostly a plain query, so parsing goes deeper
      const r = parseQuery(msg, { transport: rnd() < 0.5 ? 'udp' : 'tcp' });
      checkResult(msg, r);
    }
  });

  it('mutated queries: parseQuery never throws; every success builds a decodable response', () => {
    const rnd = prng(2);
    let parsed = 0;
    for (let i = 0; i < 10000; i++) {
      const msg = mutate(seeds[i % seeds.length], rnd);
      const r = parseQuery(msg);
      checkResult(msg, r);
      if (r.ok) parsed++;
    }
    expect(parsed).toBeGreaterThan(100); // the mutations leave some valid queries to exercise
  });

  function checkResult(msg: Uint8Array, r: ParseResult): void {
    if (r.ok) {
      const d = decode(buildResponse(r.query, 0, [{ type: 'A', name: r.query.question.name, addr: '1.2.3.4', ttl: 5 }], 512));
      expect(d.id).toBe((msg[0] << 8) | msg[1]);
      expect(d.qr).toBe(true);
    } else if (r.id !== null) {
      expect(r.id).toBe((msg[0] << 8) | msg[1]);
      const d = decode(buildError(r.id, r.rcode, r.query, r.flags));
      expect(d.id).toBe(r.id);
      expect([RCODE.FORMERR, RCODE.NOTIMP, 0]).toContain(d.rcode);
    } else {
      expect(['short', 'response']).toContain(r.reason);
    }
  }
});
