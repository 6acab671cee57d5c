import { describe, it, expect } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pcapHeader, pcapRecord } from '../../control/pcap';
import { memorySource, PcapReader, readPcap, scanPcap, uncarriable } from '../../control/pcap-read';
import { icmpEcho } from '../fixtures/frames';

const f1 = icmpEcho({ srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03', srcIp: '10.0.0.2', dstIp: '10.0.0.3', id: 1, seq: 1 });
const f2 = icmpEcho({ srcMac: '02:42:0a:00:00:03', dstMac: '02:42:0a:00:00:02', srcIp: '10.0.0.3', dstIp: '10.0.0.2', id: 1, seq: 1, reply: true });
const file = Buffer.concat([pcapHeader(), pcapRecord(f1, 1_700_000_000_123), pcapRecord(f2, 1_700_000_000_456)]);

describe('pcap', () => {
  it('round trips frames and timestamps', () => {
    const frames = readPcap(file);
    expect(frames.map((f) => Buffer.from(f.data).toString('hex'))).toEqual([Buffer.from(f1).toString('hex'), Buffer.from(f2).toString('hex')]);
    expect(frames[0].time).toBeCloseTo(1_700_000_000.123, 6);
    expect(frames[1].origLen).toBe(f2.length);
  });

  it('reads big-endian and nanosecond files', () => {
    const be = Buffer.alloc(24 + 16 + f1.length);
    be.writeUInt32BE(0xa1b23c4d, 0); be.writeUInt16BE(2, 4); be.writeUInt16BE(4, 6); be.writeUInt32BE(65535, 16); be.writeUInt32BE(1, 20);
    be.writeUInt32BE(5, 24); be.writeUInt32BE(500_000_000, 28); be.writeUInt32BE(f1.length, 32); be.writeUInt32BE(f1.length, 36);
    be.set(f1, 40);
    const [fr] = readPcap(be);
    expect(fr.time).toBeCloseTo(5.5, 9);
    expect(Buffer.from(fr.data).equals(Buffer.from(f1))).toBe(true);
  });

  it('says what is wrong with a bad file', () => {
    expect(() => readPcap(Buffer.alloc(10), 'x.pcap')).toThrow(/x\.pcap: not a pcap file/);
    expect(() => readPcap(Buffer.from('0a0d0d0a' + '00'.repeat(40), 'hex'))).toThrow(/pcapng section at byte 0 has no byte-order magic/);
    const raw = Buffer.from(pcapHeader()); raw.writeUInt32LE(113, 20);
    expect(() => readPcap(raw)).toThrow(/link type 113/);
    expect(() => readPcap(file.subarray(0, file.length - 3))).toThrow(/truncated frame at byte/);
    expect(() => readPcap(file.subarray(0, 24 + 10))).toThrow(/truncated record header/);
  });

  it('streams a big file through its bounded buffer (records across chunk edges), little-endian nanoseconds', () => {
    // 3 MiB of frames of odd sizes, so records straddle the reader's 1 MiB chunks.
    const recs: Buffer[] = [];
    const head = Buffer.alloc(24);
    head.writeUInt32LE(0xa1b23c4d, 0); head.writeUInt16LE(2, 4); head.writeUInt16LE(4, 6); head.writeUInt32LE(262144, 16); head.writeUInt32LE(1, 20);
    let total = 0;
    for (let i = 0; total < 3 << 20; i++) {
      const len = 60 + ((i * 7919) % 9000);
      const r = Buffer.alloc(16 + len, i & 0xff);
      r.writeUInt32LE(1000 + i, 0); r.writeUInt32LE(i * 3, 4); r.writeUInt32LE(len, 8); r.writeUInt32LE(len, 12);
      recs.push(r);
      total += r.length;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-pcap-'));
    const p = path.join(dir, 'big.pcap');
    fs.writeFileSync(p, Buffer.concat([head, ...recs]));
    const rd = PcapReader.open(p);
    let n = 0;
    for (let f = rd.next(); f !== null; f = rd.next(), n++) {
      const want = recs[n];
      if (f.sec !== 1000 + n || f.nsec !== n * 3 || f.data.length !== want.length - 16 || f.data[f.data.length - 1] !== (n & 0xff)) {
        throw new Error(`record ${n} read wrong`);
      }
    }
    rd.close();
    expect(n).toBe(recs.length);
    expect(scanPcap(p)).toEqual({ records: recs.length, firstMs: 1_000_000, lastMs: (1000 + recs.length - 1) * 1000 + ((recs.length - 1) * 3) / 1e6 });
    fs.rmSync(dir, { recursive: true });
  });

  it('reads big-endian microseconds exactly', () => {
    const be = Buffer.alloc(24 + 16 + f1.length);
    be.writeUInt32BE(0xa1b2c3d4, 0); be.writeUInt16BE(2, 4); be.writeUInt16BE(4, 6); be.writeUInt32BE(65535, 16); be.writeUInt32BE(1, 20);
    be.writeUInt32BE(7, 24); be.writeUInt32BE(250_001, 28); be.writeUInt32BE(f1.length, 32); be.writeUInt32BE(f1.length + 4, 36);
    be.set(f1, 40);
    const frames = readPcap(be);
    expect(frames[0].origLen).toBe(f1.length + 4);
    // A source that gives 5 bytes at a time (a pipe): the reader waits for whole headers and frames.
    let o = 0;
    const r = new PcapReader((b, at, len) => { const n = Math.min(len, 5, be.length - o); be.copy(b, at, o, o + n); o += n; return n; }, 'slow');
    const rec = r.next()!;
    expect([rec.sec, rec.nsec, rec.origLen]).toEqual([7, 250_001_000, f1.length + 4]);
    expect(uncarriable(rec, 65536)).toBe('snap-cut');
    expect(r.next()).toBeNull();
  });

  /** A pcapng file: blocks written in one byte order. */
  function pcapng(le: boolean, blocks: [number, Buffer][]): Buffer {
    const out: Buffer[] = [];
    for (const [type, body] of blocks) {
      const pad = Buffer.alloc((4 - (body.length % 4)) % 4);
      const len = 12 + body.length + pad.length;
      const h = Buffer.alloc(8); const t = Buffer.alloc(4);
      if (le) { h.writeUInt32LE(type, 0); h.writeUInt32LE(len, 4); t.writeUInt32LE(len, 0); } else { h.writeUInt32BE(type, 0); h.writeUInt32BE(len, 4); t.writeUInt32BE(len, 0); }
      out.push(h, body, pad, t);
    }
    return Buffer.concat(out);
  }
  const u32 = (le: boolean, ...v: number[]): Buffer => { const b = Buffer.alloc(4 * v.length); v.forEach((x, i) => (le ? b.writeUInt32LE(x >>> 0, 4 * i) : b.writeUInt32BE(x >>> 0, 4 * i))); return b; };
  const u16 = (le: boolean, ...v: number[]): Buffer => { const b = Buffer.alloc(2 * v.length); v.forEach((x, i) => (le ? b.writeUInt16LE(x, 2 * i) : b.writeUInt16BE(x, 2 * i))); return b; };
  function ngFile(le: boolean): Buffer {
    const shb = Buffer.concat([u32(le, 0x1a2b3c4d), u16(le, 1, 0), Buffer.alloc(8, 0xff)]);
    // Interface 0: Ethernet, nanoseconds (if_tsresol 9); interface 1: link type 113, default microseconds.
    const idb0 = Buffer.concat([u16(le, 1, 0), u32(le, 0), u16(le, 9, 1), Buffer.from([9, 0, 0, 0]), u16(le, 0, 0)]);
    const idb1 = Buffer.concat([u16(le, 113, 0), u32(le, 0)]);
    const ns = 1_700_000_000_123_456_789n;
    const epb = (ifc: number, hi: number, lo: number, f: Uint8Array, orig = f.length): Buffer => Buffer.concat([u32(le, ifc, hi, lo, f.length, orig), Buffer.from(f)]);
    return pcapng(le, [
      [0x0a0d0d0a, shb], [1, idb0], [1, idb1],
      [6, epb(0, Number(ns >> 32n), Number(ns & 0xffffffffn), f1)],
      [0xbad, Buffer.from('a custom block, skipped')],
      [6, epb(1, 0, 5_000_001, f2)],
      [3, Buffer.concat([u32(le, f2.length), Buffer.from(f2)])],
    ]);
  }

  it('reads pcapng in both byte orders: interfaces, resolutions, packet blocks; a non-Ethernet frame is named, not sent', () => {
    for (const le of [true, false]) {
      const r = new PcapReader(memorySource(ngFile(le)), 'ng');
      expect(r.header.kind).toBe('pcapng');
      const a = r.next()!;
      expect([a.sec, a.nsec, a.linkType, Buffer.from(a.data).equals(Buffer.from(f1))]).toEqual([1_700_000_000, 123_456_789, 1, true]);
      const b = r.next()!;
      expect([b.sec, b.nsec, b.linkType]).toEqual([5, 1000, 113]);
      expect(uncarriable(b, 65536)).toBe('not-ethernet');
      const c = r.next()!;
      expect([c.len, c.linkType, uncarriable(c, 65536)]).toEqual([f2.length, 1, undefined]);
      expect(r.next()).toBeNull();
    }
    const cut = ngFile(true).subarray(0, 120);
    expect(() => readPcap(cut, 'cut.pcapng')).toThrow(/cut\.pcapng: truncated block at byte/);
  });

  it('names a damaged record and a fraction out of range', () => {
    const big = Buffer.from(file); big.writeUInt32LE(300_000, 24 + 8);
    expect(() => readPcap(big, 'd.pcap')).toThrow(/d\.pcap: record at byte 24 claims 300000 bytes/);
    const frac = Buffer.from(file); frac.writeUInt32LE(1_000_000, 24 + 4);
    expect(() => readPcap(frac, 'f.pcap')).toThrow(/f\.pcap: record at byte 24 has a fraction of a second out of range/);
    expect(() => PcapReader.open('/nonexistent/x.pcap')).toThrow(/cannot read \/nonexistent\/x\.pcap/);
    expect(uncarriable({ len: 10, origLen: 10, linkType: 1 }, 100)).toBe('runt');
    expect(uncarriable({ len: 200, origLen: 200, linkType: 1 }, 100)).toBe('oversize');
    expect(uncarriable({ len: 60, origLen: 60, linkType: 1 }, 100)).toBeUndefined();
  });

  const tcpdump = spawnSync('tcpdump', ['--version']).status === 0;
  it.skipIf(!tcpdump)('writes files tcpdump reads', () => {
    const p = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-pcap-')), 'f.pcap');
    fs.writeFileSync(p, file);
    const out = execFileSync('tcpdump', ['-n', '-r', p], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    expect(out).toMatch(/10\.0\.0\.2 > 10\.0\.0\.3: ICMP echo request, id 1, seq 1/);
    expect(out).toMatch(/10\.0\.0\.3 > 10\.0\.0\.2: ICMP echo reply, id 1, seq 1/);
    fs.rmSync(path.dirname(p), { recursive: true });
  });
});
