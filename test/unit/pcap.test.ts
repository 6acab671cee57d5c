import { describe, it, expect } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pcapHeader, pcapRecord } from '../../control/pcap';
import { PcapReader, readPcap, scanPcap, uncarriable } from '../../control/pcap-read';
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
    expect(() => readPcap(Buffer.from('0a0d0d0a' + '00'.repeat(40), 'hex'))).toThrow(/pcapng/);
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

  it('names a damaged record and a fraction out of range', () => {
    const big = Buffer.from(file); big.writeUInt32LE(300_000, 24 + 8);
    expect(() => readPcap(big, 'd.pcap')).toThrow(/d\.pcap: record at byte 24 claims 300000 bytes/);
    const frac = Buffer.from(file); frac.writeUInt32LE(1_000_000, 24 + 4);
    expect(() => readPcap(frac, 'f.pcap')).toThrow(/f\.pcap: record at byte 24 has a fraction of a second out of range/);
    expect(() => PcapReader.open('/nonexistent/x.pcap')).toThrow(/cannot read \/nonexistent\/x\.pcap/);
    expect(uncarriable({ len: 10, origLen: 10 }, 100)).toBe('runt');
    expect(uncarriable({ len: 200, origLen: 200 }, 100)).toBe('oversize');
    expect(uncarriable({ len: 60, origLen: 60 }, 100)).toBeUndefined();
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
