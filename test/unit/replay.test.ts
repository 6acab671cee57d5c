import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pcapHeader, pcapRecord } from '../../control/pcap';
import { readPcap } from '../../control/pcap-read';
import { runReplay, type ReplaySummary } from '../../control/replay';
import { emptySpec } from '../../dataplane/impair/spec';
import { arpReply, arpRequest, icmpEcho, udpFrame } from '../fixtures/frames';
import { DB, dnsQuery, NET, UP, WEB, writeTestSnapshot } from '../fixtures/snapshot';

const T0 = 1_700_000_000;
const OUTSIDE = '203.0.113.9';

let dir: string;
const at = (name: string): string => path.join(dir, name);

function pcapFile(name: string, frames: [number, Uint8Array][]): string {
  const file = at(name);
  fs.writeFileSync(file, Buffer.concat([pcapHeader(), ...frames.map(([t, f]) => pcapRecord(f, t * 1000))]));
  return file;
}
const hexOf = (f: Uint8Array): string => Buffer.from(f).toString('hex');
const framesOf = (file: string): string[] => readPcap(fs.readFileSync(file)).map((f) => hexOf(f.data));

// A session on the test switch: ARP and ping between two containers, DNS for a local and a
// non-local name, a ping to the outside (first a neighbour miss, then NAT), and a frame
// after the MAC table has aged.
const arpReq = arpRequest({ srcMac: WEB.mac, srcIp: WEB.ip, targetIp: DB.ip });
const arpRep = arpReply({ srcMac: DB.mac, srcIp: DB.ip, dstMac: WEB.mac, dstIp: WEB.ip });
const ping = icmpEcho({ srcMac: WEB.mac, dstMac: DB.mac, srcIp: WEB.ip, dstIp: DB.ip, id: 7, seq: 1 });
const pong = icmpEcho({ srcMac: DB.mac, dstMac: WEB.mac, srcIp: DB.ip, dstIp: WEB.ip, id: 7, seq: 1, reply: true });
const dnsLocal = udpFrame({ srcMac: WEB.mac, dstMac: NET.gwMac, srcIp: WEB.ip, dstIp: NET.gw, srcPort: 40000, dstPort: 53, payload: dnsQuery(1, 'db') });
const dnsOther = udpFrame({ srcMac: WEB.mac, dstMac: NET.gwMac, srcIp: WEB.ip, dstIp: NET.gw, srcPort: 40001, dstPort: 53, payload: dnsQuery(2, 'example.com') });
const out1 = icmpEcho({ srcMac: WEB.mac, dstMac: NET.gwMac, srcIp: WEB.ip, dstIp: OUTSIDE, id: 9, seq: 1 });
const out2 = icmpEcho({ srcMac: WEB.mac, dstMac: NET.gwMac, srcIp: WEB.ip, dstIp: OUTSIDE, id: 9, seq: 2 });
const upGwArp = arpReply({ srcMac: UP.gwMac, srcIp: UP.gw, dstMac: UP.mac, dstIp: UP.ip });
const late = icmpEcho({ srcMac: WEB.mac, dstMac: DB.mac, srcIp: WEB.ip, dstIp: DB.ip, id: 7, seq: 2 });

function inputs(natId?: number): { port: string; file: string }[] {
  // The answer from the outside, to the id NAT gave the second ping (learnt from a first run).
  const back = natId === undefined ? [] : [[T0 + 1.001, icmpEcho({ srcMac: UP.gwMac, dstMac: UP.mac, srcIp: OUTSIDE, dstIp: UP.ip, id: natId, seq: 2, reply: true })] as [number, Uint8Array]];
  return [
    { port: 'web', file: pcapFile('web.in.pcap', [[T0, arpReq], [T0 + 0.002, ping], [T0 + 0.01, dnsLocal], [T0 + 0.02, dnsOther], [T0 + 0.03, out1], [T0 + 1, out2], [T0 + 400, late]]) },
    { port: 'db', file: pcapFile('db.in.pcap', [[T0 + 0.001, arpRep], [T0 + 0.003, pong]]) },
    { port: UP.name, file: pcapFile('up.in.pcap', [[T0 + 0.5, upGwArp], ...back]) },
  ];
}

/** Every file of a directory, by name. */
function filesOf(d: string): Map<string, Buffer> {
  return new Map(fs.readdirSync(d).sort().map((f) => [f, fs.readFileSync(path.join(d, f))]));
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-replay-'));
  writeTestSnapshot(at('snap.json'), T0);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('vsw replay', () => {
  let natId = -1;
  let s: ReplaySummary;
  beforeAll(() => {
    runReplay({ snapshot: at('snap.json'), inputs: inputs(), out: at('probe'), trace: false });
    const nat = readPcap(fs.readFileSync(at(`probe/${UP.name}.pcap`)))[1].data;
    natId = (nat[38] << 8) | nat[39]; // ICMP echo id: Ethernet 14 + IPv4 20 + 4
    s = runReplay({ snapshot: at('snap.json'), inputs: inputs(natId), out: at('a'), trace: true });
  });

  it('forwards, answers, routes and NATs as the switch does', () => {
    const out = (port: string): string[] => framesOf(at(`a/${port}.pcap`));
    // db: the flooded ARP request, the ping; 400 s later the MAC table has forgotten db (aging
    // 300 s), so the late ping is flooded: to db and to the host port.
    expect(out(DB.name)).toEqual([arpReq, ping, late].map(hexOf));
    expect(out('vsw0')).toEqual([arpReq, late].map(hexOf));
    const web = out(WEB.name);
    expect(web.slice(0, 2)).toEqual([arpRep, pong].map(hexOf));
    expect(web).toHaveLength(4); // + the DNS answer for 'db' (by the worker), the outside's echo reply (NAT undone)
    const answer = Buffer.from(web[2], 'hex');
    expect(answer.subarray(26, 34).equals(Buffer.from([10, 89, 0, 1, 10, 89, 0, 2]))).toBe(true);
    expect(answer.subarray(answer.length - 4).equals(Buffer.from([10, 89, 0, 3]))).toBe(true);
    const back = Buffer.from(web[3], 'hex');
    expect([...back.subarray(26, 34)]).toEqual([203, 0, 113, 9, 10, 89, 0, 2]);
    expect((back[38] << 8) | back[39]).toBe(9);
    // The uplink: ARP for its next hop (the first ping's neighbour miss), then the second ping, masqueraded.
    const up = out(UP.name).map((h) => Buffer.from(h, 'hex'));
    expect(up[0].readUInt16BE(12)).toBe(0x0806);
    expect([...up[1].subarray(26, 34)]).toEqual([198, 51, 100, 2, 203, 0, 113, 9]);
    expect(framesOf(at('a/punted.pcap'))).toEqual([hexOf(dnsOther)]);
    expect(s.dropped).toEqual({ 'neigh-miss': 1 });
    expect(s.punted).toBe(1);
    expect(s.frames).toBe(11);
    const drops = JSON.parse(fs.readFileSync(at('a/drops.json'), 'utf8')) as ReplaySummary;
    expect(drops.ports.find((p) => p.port === WEB.name)?.drops).toEqual({ 'neigh-miss': 1 });
  });

  it('stamps each frame it sends with the virtual time of the frame that caused it', () => {
    const times = readPcap(fs.readFileSync(at(`a/${DB.name}.pcap`))).map((f) => f.time - T0);
    expect(times.map((t) => Math.round(t * 1000))).toEqual([0, 2, 400_000]);
  });

  it('traces every frame in vsw trace\'s words, at virtual times', () => {
    const trace = fs.readFileSync(at('a/trace.txt'), 'utf8');
    expect(trace.match(/^2023-11-14T22:\d\d:\d\d\.\d{3}Z port /gm)).toHaveLength(11);
    expect(trace).toContain('2023-11-14T22:13:20.000Z port vswaaaa0001 (web)\nframe   02:42:0a:59:00:02 > ff:ff:ff:ff:ff:ff, ARP request who-has 10.89.0.3 tell 10.89.0.2');
    expect(trace).toContain('dns-punt: 10.89.0.2:40001 > 10.89.0.1:53');
  });

  it('gives byte-identical outputs on every run', () => {
    runReplay({ snapshot: at('snap.json'), inputs: inputs(natId), out: at('b'), trace: true });
    const a = filesOf(at('a'));
    const b = filesOf(at('b'));
    expect([...b.keys()]).toEqual([...a.keys()]);
    expect([...a.keys()]).toEqual(['drops.json', 'punted.pcap', 'trace.txt', 'up0.pcap', 'vsw0.pcap', 'vswaaaa0001.pcap', 'vswbbbb0001.pcap']);
    for (const [name, bytes] of a) expect(b.get(name)!.equals(bytes), name).toBe(true);
  });

  it('draws the DNS \'random\' order from a seeded generator: the same answers every run', () => {
    writeTestSnapshot(at('random.json'), T0, 'random');
    const queries = Array.from({ length: 12 }, (_, i): [number, Uint8Array] => [T0 + i,
      udpFrame({ srcMac: WEB.mac, dstMac: NET.gwMac, srcIp: WEB.ip, dstIp: NET.gw, srcPort: 41000 + i, dstPort: 53, payload: dnsQuery(100 + i, 'svc') })]);
    const file = pcapFile('svc.pcap', queries);
    const answers = (out: string): string[] => {
      runReplay({ snapshot: at('random.json'), inputs: [{ port: 'web', file }], out: at(out), trace: false });
      // The answer ends with the two A records (16 bytes each): their addresses, in the order given.
      return framesOf(at(`${out}/${WEB.name}.pcap`)).map((h) => `${h.slice(-40, -32)}|${h.slice(-8)}`);
    };
    const a = answers('rand1');
    expect(a).toHaveLength(12);
    expect(new Set(a).size).toBe(2); // both orders are drawn...
    expect(answers('rand2')).toEqual(a); // ...the same way every run
  });

  it('applies the snapshot\'s link impairment on the virtual clock: delayed frames leave at their time, losses repeat', () => {
    // db's port impaired out: 150 ms delay, 30 % loss, seed 7.
    writeTestSnapshot(at('impair.json'), T0, 'rotate', { ...emptySpec(7), delay: 150, loss: 0.3 });
    const pings = Array.from({ length: 40 }, (_, i): [number, Uint8Array] => [T0 + i * 0.01, icmpEcho({ srcMac: WEB.mac, dstMac: DB.mac, srcIp: WEB.ip, dstIp: DB.ip, id: 3, seq: i })]);
    const ins = [{ port: 'db', file: pcapFile('imp-db.pcap', [[T0, arpRep]]) }, { port: 'web', file: pcapFile('imp-web.pcap', pings) }];
    const run = (out: string): { times: number[]; seqs: number[]; s: ReplaySummary } => {
      const s = runReplay({ snapshot: at('impair.json'), inputs: ins, out: at(out), trace: true });
      const got = readPcap(fs.readFileSync(at(`${out}/${DB.name}.pcap`)));
      return { times: got.map((f) => Math.round((f.time - T0) * 1000)), seqs: got.map((f) => (f.data[40] << 8) | f.data[41]), s };
    };
    const a = run('imp1');
    const lost = a.s.ports.find((p) => p.port === DB.name)!.drops['impair-loss'];
    expect(lost).toBeGreaterThan(4);
    expect(lost).toBeLessThan(22);
    expect(a.seqs.length).toBe(40 - lost);
    // Each ping that got through left 150 ms after it arrived (10 ms apart: seq * 10 + 150), the last ones after the last input.
    expect(a.times).toEqual(a.seqs.map((q) => q * 10 + 150));
    expect(fs.readFileSync(at('imp1/trace.txt'), 'utf8')).toMatch(/impair/);
    const b = run('imp2');
    expect(b.times).toEqual(a.times);
    for (const f of fs.readdirSync(at('imp1'))) expect(fs.readFileSync(at(`imp2/${f}`)).equals(fs.readFileSync(at(`imp1/${f}`))), f).toBe(true);
  });

  it('merges inputs by time, ties by port id then --in order', () => {
    // Two broadcasts at the same instant, db's file given first: web (port 1) goes first.
    const bw = arpRequest({ srcMac: WEB.mac, srcIp: WEB.ip, targetIp: '10.89.0.77' });
    const bd = arpRequest({ srcMac: DB.mac, srcIp: DB.ip, targetIp: '10.89.0.78' });
    const bd2 = arpRequest({ srcMac: DB.mac, srcIp: DB.ip, targetIp: '10.89.0.79' });
    const ins = [
      { port: 'db', file: pcapFile('tie-db.pcap', [[T0 + 5, bd]]) },
      { port: WEB.name, file: pcapFile('tie-web.pcap', [[T0 + 5, bw]]) },
      { port: 'db:bridge', file: pcapFile('tie-db2.pcap', [[T0 + 5, bd2], [T0 + 1, bd2]]) },
    ];
    const r = runReplay({ snapshot: at('snap.json'), inputs: ins, out: at('tie'), trace: false });
    expect(framesOf(at('tie/vsw0.pcap'))).toEqual([bw, bd, bd2, bd2].map(hexOf));
    // A record that goes back in time is taken at the time already reached.
    expect(readPcap(fs.readFileSync(at('tie/vsw0.pcap'))).map((f) => f.time - T0)).toEqual([5, 5, 5, 5]);
    expect(r.frames).toBe(4);
  });

  it('counts frames a capture cannot carry, and refuses bad input before writing anything', () => {
    const cut = Buffer.concat([pcapHeader(), pcapRecord(ping, T0 * 1000)]);
    cut.writeUInt32LE(ping.length + 10, 24 + 12); // on the wire longer than captured
    fs.writeFileSync(at('cut.pcap'), cut);
    const r = runReplay({ snapshot: at('snap.json'), inputs: [{ port: 'web', file: at('cut.pcap') }], out: at('cut'), trace: false });
    expect(r.notSent['snap-cut']).toBe(1);
    expect(r.injected).toBe(0);
    fs.writeFileSync(at('trunc.pcap'), cut.subarray(0, cut.length - 5));
    expect(() => runReplay({ snapshot: at('snap.json'), inputs: [{ port: 'web', file: at('trunc.pcap') }], out: at('never'), trace: false }))
      .toThrow(/trunc\.pcap: truncated frame at byte 24/);
    expect(() => runReplay({ snapshot: at('snap.json'), inputs: [{ port: 'nope', file: at('cut.pcap') }], out: at('never'), trace: false }))
      .toThrow(/no port or container named 'nope'/);
    fs.writeFileSync(at('bad.json'), '{"format":"vsw-snapshot","version":99}');
    expect(() => runReplay({ snapshot: at('bad.json'), inputs: [{ port: 'web', file: at('cut.pcap') }], out: at('never'), trace: false }))
      .toThrow(/snapshot version 99; this vsw reads version 1/);
    expect(fs.existsSync(at('never'))).toBe(false);
  });
});
