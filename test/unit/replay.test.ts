import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pcapHeader, pcapRecord } from '../../control/pcap';
import { readPcap } from '../../control/pcap-read';
import { runReplay, type ReplaySummary } from '../../control/replay';
import { arpReply, arpRequest, icmpEcho, udpFrame } from '../fixtures/frames';
import { DB, dnsQuery, HOST_PORT, NET, UP, WEB, writeTestSnapshot } from '../fixtures/snapshot';

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

function inputs(): { port: string; file: string }[] {
  return [
    { port: 'web', file: pcapFile('web.in.pcap', [[T0, arpReq], [T0 + 0.002, ping], [T0 + 0.01, dnsLocal], [T0 + 0.02, dnsOther], [T0 + 0.03, out1], [T0 + 1, out2], [T0 + 400, late]]) },
    { port: 'db', file: pcapFile('db.in.pcap', [[T0 + 0.001, arpRep], [T0 + 0.003, pong]]) },
    { port: UP.name, file: pcapFile('up.in.pcap', [[T0 + 0.5, upGwArp]]) },
  ];
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-replay-'));
  writeTestSnapshot(at('snap.json'), T0);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('vsw replay', () => {
  let s: ReplaySummary;
  it('runs a session through the snapshot\'s switch', () => {
    s = runReplay({ snapshot: at('snap.json'), inputs: inputs(), out: at('a'), trace: true });
    console.log(JSON.stringify(s, null, 1));
    for (const f of ['vsw0.pcap', `${WEB.name}.pcap`, `${DB.name}.pcap`, `${UP.name}.pcap`, 'punted.pcap']) console.log(f, framesOf(at(`a/${f}`)).length);
    console.log(fs.readFileSync(at('a/trace.txt'), 'utf8').slice(0, 3000));
    void HOST_PORT;
  });
});
