import { describe, it, expect } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pcapHeader, pcapRecord } from '../../control/pcap';
import { readPcap } from '../../control/pcap-read';
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
