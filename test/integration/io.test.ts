// Integration test of the native packet I/O addon (native/vswio.cc via workers/io.ts).
//
// Needs root. Everything happens inside network namespaces created here with a per-run
// prefix (vswio-<pid>-) and deleted in afterAll; no interface of the root namespace is
// created, touched or sent to. The I/O runs in small Node child processes started with
// `ip netns exec NS node child.js ...` (the child script is written to a temp dir).
//
//   ns C1: eth0 10.77.0.1/24 ──veth── s1 ┐ ns SW: child "forward" moves frames s1 <-> s2
//   ns C2: eth0 10.77.0.2/24 ──veth── s2 ┘       with recv/send (vnet headers on)
//   ns T : a TAP made by child "tap"
//   ns B : child "burst" makes its own veth pair bq0 -> bq1 there
//
// AF_PACKET ports get the TPACKET_V2 receive ring by default (openPacket's third argument);
// the forwarding and burst tests also run without it (the recvmmsg fallback).
// VSWIO_ADDON=/path/vswio.node tests another build of the addon.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  findAddon, loadIo, KIND_PACKET, KIND_TAP, SLOT, MAX_BATCH, RX_HEADROOM, FLAG_TRUNCATED,
  FLAG_VLAN, VNET_HDR_LEN, POLLIN, POLLERR, RING_FRAME_SIZE, RING_FRAMES, type Io,
} from '../../workers/io';
import { claimPrefix, runPrefix } from '../fixtures/harness';

/** The addon under test: VSWIO_ADDON if set, else build/Release. */
const addonPath = (): string | undefined => process.env.VSWIO_ADDON || findAddon();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadAddon = (): Io => (process.env.VSWIO_ADDON ? (require(process.env.VSWIO_ADDON) as Io) : loadIo());

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const haveIp = (() => {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const canRun = isRoot && haveIp;
const skipReason = !isRoot ? 'needs root (network namespaces)' : 'needs iproute2 (ip)';

const P = runPrefix('i');
const PREFIX = `${P}-`;
const NS = { sw: `${PREFIX}sw`, c1: `${PREFIX}c1`, c2: `${PREFIX}c2`, t: `${PREFIX}t`, b: `${PREFIX}b` };
const IP1 = '10.77.0.1';
const IP2 = '10.77.0.2';
/** The burst test's bursts (child "burst"): BURSTS x BURST frames, then a flood. */
const BURST = 128;
const BURSTS = 48;

// ---------------------------------------------------------------------------------------
// The child script. Modes:
//   forward A B VNET SLOT STOPFILE RING
//                                    forward frames between A and B until STOPFILE exists;
//                                    print flagged frames (truncated / VLAN) as JSON lines
//   burst RING                       in-order delivery through (and overflow of) the ring
//                                    on a private veth pair, packetStats
//   tap                              TAP checks (openTap, setMac, ARP through send/recv)
const CHILD = String.raw`
'use strict';
const VNET = 10;
const fs = require('fs');
const { execFileSync } = require('child_process');
const io = require(process.env.VSWIO_ADDON);
const out = (o) => fs.writeSync(1, JSON.stringify(o) + '\n');
const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
const [mode, ...args] = process.argv.slice(2);
const deadline = Date.now() + 45000;

if (mode === 'forward') {
  const [a, b, vnetS, slotS, stopFile, ringS] = args;
  const vnet = vnetS === '1', slot = Number(slotS), MAX = 64, ring = ringS === '1';
  const pa = io.openPacket(a, vnet, ring), pb = io.openPacket(b, vnet, ring);
  const ports = [pa, pb];
  const buf = new Uint8Array(slot * MAX);
  const offs = new Int32Array(MAX), lens = new Int32Array(MAX), flags = new Uint8Array(MAX);
  const txOffs = new Int32Array(MAX), txLens = new Int32Array(MAX);
  const fds = Int32Array.of(pa.fd, pb.fd), rev = new Int32Array(2);
  const st = { fwd: [0, 0], drops: 0, truncated: 0, vlan: 0, batches: 0, maxLen: 0 };
  out({ ready: true, vnet: [pa.vnet, pb.vnet], ring: [pa.ring, pb.ring], ifindex: [pa.ifindex, pb.ifindex] });
  let iter = 0;
  for (;;) {
    const n = io.poll(fds, 2, 50, rev);
    if ((n === 0 || (++iter & 255) === 0) && (fs.existsSync(stopFile) || Date.now() > deadline)) break;
    for (let i = 0; i < 2; i++) {
      if (rev[i] === 0) continue;
      const c = io.recv(ports[i].fd, 0, vnet, buf, slot, MAX, offs, lens, flags);
      if (c === 0) continue;
      st.batches++;
      let k = 0;
      for (let j = 0; j < c; j++) {
        if (flags[j] !== 0) {
          out({ frame: true, port: i, flags: flags[j], slotOff: offs[j] - j * slot, len: lens[j],
                head: hex(buf.subarray(offs[j], offs[j] + Math.min(lens[j], 64))) });
        }
        if (flags[j] & 1) { st.truncated++; continue; }
        if (flags[j] & 2) st.vlan++;
        if (lens[j] > st.maxLen) st.maxLen = lens[j];
        txOffs[k] = offs[j]; txLens[k] = lens[j]; k++;
      }
      const s = io.send(ports[1 - i].fd, 0, buf, txOffs, txLens, k);
      st.fwd[i] += s;
      st.drops += k - s;
    }
  }
  st.kernel = [io.packetStats(pa.fd), io.packetStats(pb.fd)];
  io.close(pa.fd); io.close(pb.fd);
  out({ done: true, ...st });
} else if (mode === 'tap') {
  const res = {};
  const t = io.openTap('vswtap0', true);
  res.name = t.name; res.vnet = t.vnet;
  res.linkShow = execFileSync('ip', ['-o', 'link', 'show', t.name]).toString();
  const mac = Uint8Array.of(0x02, 0x00, 0x5e, 0x10, 0x20, 0x30);
  io.setMac(t.name, mac);
  res.linkAfterMac = execFileSync('ip', ['-o', 'link', 'show', t.name]).toString();
  execFileSync('ip', ['addr', 'add', '10.78.0.1/24', 'dev', t.name]);
  execFileSync('ip', ['link', 'set', t.name, 'up']);
  // An ARP request from a made-up peer 10.78.0.2 (02:00:5e:99:99:99) for 10.78.0.1.
  const peer = [0x02, 0x00, 0x5e, 0x99, 0x99, 0x99];
  const f = new Uint8Array(VNET + 60);
  const e = VNET;
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], e); f.set(peer, e + 6); f.set([0x08, 0x06], e + 12);
  f.set([0, 1, 8, 0, 6, 4, 0, 1], e + 14); f.set(peer, e + 22); f.set([10, 78, 0, 2], e + 28);
  f.set([10, 78, 0, 1], e + 38);
  res.sent = io.send(t.fd, 1, f, Int32Array.of(0), Int32Array.of(f.length), 1);
  const slot = 65536 + 64, MAX = 64;
  const buf = new Uint8Array(slot * MAX);
  const offs = new Int32Array(MAX), lens = new Int32Array(MAX), flags = new Uint8Array(MAX);
  const fds = Int32Array.of(t.fd), rev = new Int32Array(1);
  const until = Date.now() + 5000;
  while (!res.reply && Date.now() < until) {
    if (io.poll(fds, 1, 100, rev) === 0) continue;
    const c = io.recv(t.fd, 1, true, buf, slot, MAX, offs, lens, flags);
    for (let j = 0; j < c; j++) {
      const o = offs[j] + VNET, fr = buf.subarray(o, offs[j] + lens[j]);
      if (fr[12] === 0x08 && fr[13] === 0x06 && fr[20] === 0 && fr[21] === 2) {
        res.reply = { dst: hex(fr.subarray(0, 6)), src: hex(fr.subarray(6, 12)),
                      sha: hex(fr.subarray(22, 28)), spa: Array.from(fr.subarray(28, 32)),
                      slotOff: offs[j] - j * slot, flags: flags[j] };
      }
    }
  }
  // An ICMP echo request (200 bytes of data) to 10.78.0.1; the reply (10 + 242 bytes) is
  // read with a 128-byte slot: flagged truncated (tun itself cuts silently).
  const ip4 = new Uint8Array(20 + 8 + 200);
  ip4.set([0x45, 0, ip4.length >> 8, ip4.length & 255, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 78, 0, 2, 10, 78, 0, 1]);
  const sum = (b, o, n) => { let s = 0; for (let i = 0; i < n; i += 2) s += (b[o + i] << 8) | (b[o + i + 1] || 0);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); return ~s & 0xffff; };
  let c = sum(ip4, 0, 20); ip4[10] = c >> 8; ip4[11] = c & 255;
  ip4.set([8, 0, 0, 0, 0x77, 0x77, 0, 1], 20);
  for (let i = 0; i < 200; i++) ip4[28 + i] = i;
  c = sum(ip4, 20, 208); ip4[22] = c >> 8; ip4[23] = c & 255;
  const echo = new Uint8Array(VNET + 14 + ip4.length);
  echo.set(mac, VNET); echo.set(peer, VNET + 6); echo.set([0x08, 0x00], VNET + 12); echo.set(ip4, VNET + 14);
  res.echoSent = io.send(t.fd, 1, echo, Int32Array.of(0), Int32Array.of(echo.length), 1);
  const until2 = Date.now() + 5000;
  while (!res.truncated && Date.now() < until2) {
    if (io.poll(fds, 1, 100, rev) === 0) continue;
    const n = io.recv(t.fd, 1, true, buf, 128, MAX, offs, lens, flags);
    for (let j = 0; j < n; j++) {
      const fr = buf.subarray(offs[j] + VNET, offs[j] + lens[j]);
      if (fr[12] === 0x08 && fr[13] === 0x00 && fr[14 + 9] === 1 && fr[34] === 0) {
        res.truncated = { flags: flags[j], len: lens[j], slotOff: offs[j] - j * 128 };
      }
    }
  }
  // A TAP with a kernel-chosen name, then both go away with their fds.
  const t2 = io.openTap('', false);
  res.autoName = t2.name; res.autoVnet = t2.vnet;
  res.autoIndex = io.ifindex(t2.name);
  io.close(t2.fd); io.close(t.fd);
  res.indexAfterClose = io.ifindex(t.name);
  out(res);
} else if (mode === 'burst') (async () => {
  // A private veth pair bq0 -> bq1 (MTU 9000, no IPv6: no chatter): frames sent on bq0 with
  // a plain socket arrive on bq1, opened with or without the ring. Each test frame is
  // 0x88b5 + 'vswq' + u32 sequence number; every 7th is 4000 bytes (too big for a ring
  // frame: TP_STATUS_COPY), every 5th carries an 802.1Q tag (VID = seq & 0xfff).
  const ring = args[0] === '0' ? false : args[0] === '1' ? true : JSON.parse(args[0]);
  const res = { errors: [] };
  const err = (m) => { if (res.errors.length < 10) res.errors.push(m); };
  for (const k of ['default', 'all']) {
    try { fs.writeFileSync('/proc/sys/net/ipv6/conf/' + k + '/disable_ipv6', '1'); } catch {}
  }
  execFileSync('ip', ['link', 'add', 'bq0', 'type', 'veth', 'peer', 'name', 'bq1']);
  for (const l of ['bq0', 'bq1']) {
    execFileSync('ip', ['link', 'set', l, 'mtu', '9000']);
    execFileSync('ip', ['link', 'set', l, 'up']);
  }
  let rx = io.openPacket('bq1', true, ring);
  const tx = io.openPacket('bq0', true, false);
  res.ring = rx.ring; res.txRing = tx.ring; res.ringFrames = rx.ringFrames; res.ringFrameSize = rx.ringFrameSize;
  const src = Buffer.from(fs.readFileSync('/sys/class/net/bq0/address', 'utf8').trim().replace(/:/g, ''), 'hex');
  const sizeOf = (q) => (q % 7 === 3 ? 4000 : 60);
  const tagged = (q) => q % 5 === 1;
  const TXB = 64;
  const tbuf = new Uint8Array(TXB * 4100), toffs = new Int32Array(TXB), tlens = new Int32Array(TXB);
  const send = (from, count) => {   // frames from..from+count-1, in batches; returns sent
    let sent = 0;
    for (let q0 = from; q0 < from + count; q0 += TXB) {
      const k = Math.min(TXB, from + count - q0);
      for (let i = 0; i < k; i++) {
        const q = q0 + i, o = i * 4100, size = sizeOf(q);
        tbuf.fill(0, o, o + 10 + size + 4);
        let e = o + 10;
        tbuf.fill(0xff, e, e + 6); tbuf.set(src, e + 6); e += 12;
        if (tagged(q)) { tbuf[e] = 0x81; tbuf[e + 1] = 0; tbuf[e + 2] = (q >> 8) & 0x0f; tbuf[e + 3] = q & 0xff; e += 4; }
        tbuf[e] = 0x88; tbuf[e + 1] = 0xb5; tbuf.set([0x76, 0x73, 0x77, 0x71], e + 2);
        new DataView(tbuf.buffer).setUint32(e + 6, q);
        toffs[i] = o; tlens[i] = 10 + size + (tagged(q) ? 4 : 0);
      }
      sent += io.send(tx.fd, 0, tbuf, toffs, tlens, k);
    }
    return sent;
  };
  const slot = 65536 + 64, MAX = 64;
  const buf = new Uint8Array(slot * MAX);
  const offs = new Int32Array(MAX), lens = new Int32Array(MAX), flags = new Uint8Array(MAX);
  const fds = Int32Array.of(rx.fd), rev = new Int32Array(1);
  // Reads test frames until 'want' arrived or 2 s of silence; checks each against 'expect'.
  let expect = 0;
  const read = (want) => {
    let got = 0, idle = 0;
    while (got < want && idle < 20) {
      if (io.poll(fds, 1, 100, rev) === 0) { idle++; continue; }
      const c = io.recv(rx.fd, 0, true, buf, slot, MAX, offs, lens, flags);
      if (c === 0) continue;
      idle = 0;
      for (let j = 0; j < c; j++) {
        const f = buf.subarray(offs[j] + 10, offs[j] + lens[j]);
        let e = 12, tci = -1;
        if (f[12] === 0x81 && f[13] === 0) { tci = (f[14] << 8) | f[15]; e = 16; }
        if (f[e] !== 0x88 || f[e + 1] !== 0xb5 || f[e + 2] !== 0x76 || f[e + 5] !== 0x71) continue;
        got++;
        const q = new DataView(f.buffer, f.byteOffset).getUint32(e + 6);
        if (q !== expect) err('seq ' + q + ' where ' + expect + ' was due');
        if (flags[j] & 1) err('seq ' + q + ' truncated');
        const wantTag = tagged(q);
        if (((flags[j] & 2) !== 0) !== wantTag || (wantTag && tci !== (q & 0xfff)))
          err('seq ' + q + ' tag ' + tci + ' flags ' + flags[j]);
        if (lens[j] !== 10 + sizeOf(q) + (wantTag ? 4 : 0)) err('seq ' + q + ' len ' + lens[j]);
        if (offs[j] - j * slot !== (wantTag ? 0 : 4)) err('seq ' + q + ' slot offset ' + (offs[j] - j * slot));
        expect = q + 1;
      }
    }
    return got;
  };
  io.packetStats(rx.fd); // start the counters from zero
  // 1. A reader that keeps up: 48 bursts of 128 frames (half the smallest ring tested).
  const B = 128, N = B * 48;
  let sent = 0, got = 0;
  for (let b = 0; b < N; b += B) { sent += send(b, B); got += read(B); }
  res.keepUp = { sent, got, stats: io.packetStats(rx.fd) };
  // 2. A reader that does not read: send until the kernel reports drops (at most 200k).
  let flood = 0, drops = 0, packets = 0;
  const base = N;
  while (drops === 0 && flood < 200000) {
    const s = send(base + flood, 4096);
    flood += 4096;
    if (s < 4096) err('sender refused ' + (4096 - s));
    const st = io.packetStats(rx.fd);
    drops += st.drops; packets += st.packets;
  }
  expect = base;
  const held = read(packets - drops);
  res.flood = { sent: flood, packets, drops, held, lastSeq: expect - 1, after: io.packetStats(rx.fd) };
  // 3. Close and reopen (the same fd number comes back): a fresh ring.
  const oldFd = rx.fd;
  io.close(rx.fd);
  rx = io.openPacket('bq1', true, ring);
  fds[0] = rx.fd;
  expect = 10000000;
  send(expect, 100);
  res.reopen = { sameFd: rx.fd === oldFd, ring: rx.ring, got: read(100) };
  // 4. The ring is per process, not per thread: a worker thread reads the fd opened here.
  const { Worker } = require('worker_threads');
  const w = new Worker(
    "const { parentPort, workerData } = require('worker_threads');" +
    "const io = require(workerData.addon);" +
    "const slot = 2048, buf = new Uint8Array(slot * 64), offs = new Int32Array(64), lens = new Int32Array(64), fl = new Uint8Array(64);" +
    "let got = 0; const end = Date.now() + 5000;" +
    "while (got < 100 && Date.now() < end) { if (io.poll(Int32Array.of(workerData.fd), 1, 100, new Int32Array(1)) > 0) got += io.recv(workerData.fd, 0, true, buf, slot, 64, offs, lens, fl); }" +
    "parentPort.postMessage(got);",
    { eval: true, workerData: { addon: process.env.VSWIO_ADDON, fd: rx.fd } });
  send(20000000, 100);
  res.worker = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await w.terminate();
  io.close(rx.fd); io.close(tx.fd);
  execFileSync('ip', ['link', 'del', 'bq0']);
  out(res);
})().catch((e) => { console.error(e); process.exit(1); });
else if (mode === 'vanish') {
  // A packet socket and a TAP whose interfaces disappear under them.
  const res = {};
  // No IPv6 chatter (DAD, router solicitations) on these links: only the events we make.
  for (const k of ['default', 'all']) {
    try { fs.writeFileSync('/proc/sys/net/ipv6/conf/' + k + '/disable_ipv6', '1'); } catch {}
  }
  execFileSync('ip', ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
  execFileSync('ip', ['link', 'set', 'v0', 'up']);
  execFileSync('ip', ['link', 'set', 'v1', 'up']);
  const p = io.openPacket('v0', true);
  const t = io.openTap('vswtap1', true);
  execFileSync('ip', ['link', 'set', 'vswtap1', 'up']);
  const buf = new Uint8Array(4096), offs = new Int32Array(4), lens = new Int32Array(4), flags = new Uint8Array(4);
  const rev = new Int32Array(1);
  execFileSync('ip', ['link', 'set', 'v0', 'down']);
  res.downPoll = io.poll(Int32Array.of(p.fd), 1, 100, rev); res.downRevents = rev[0];
  // Frames that arrived before the link went down may come first; then 0 (ENETDOWN).
  for (let i = 0; i < 10 && (res.downRecv = io.recv(p.fd, 0, true, buf, 1024, 4, offs, lens, flags)) > 0; i++);
  res.downPollAfter = io.poll(Int32Array.of(p.fd), 1, 0, rev);
  offs[0] = 0; lens[0] = 70;
  res.downSend = io.send(p.fd, 0, buf, offs, lens, 1);
  execFileSync('ip', ['link', 'del', 'v0']);
  res.gonePoll = io.poll(Int32Array.of(p.fd), 1, 100, rev); res.goneRevents = rev[0];
  for (let i = 0; i < 10 && (res.goneRecv = io.recv(p.fd, 0, true, buf, 1024, 4, offs, lens, flags)) > 0; i++);
  res.gonePollAfter = io.poll(Int32Array.of(p.fd), 1, 0, rev);
  res.goneSend = io.send(p.fd, 0, buf, offs, lens, 1);
  execFileSync('ip', ['link', 'del', 'vswtap1']);
  res.tapPoll = io.poll(Int32Array.of(t.fd), 1, 100, rev); res.tapRevents = rev[0];
  try { res.tapRecv = io.recv(t.fd, 1, true, buf, 1024, 4, offs, lens, flags); } catch (e) { res.tapRecvError = e.code + ' ' + e.message; }
  res.tapSend = io.send(t.fd, 1, buf, offs, lens, 1);
  io.close(p.fd); io.close(t.fd);
  out(res);
}
`;

// ---------------------------------------------------------------------------------------
// helpers

let tmp = '';
let addon = '';
const children: ChildProcess[] = [];

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function inNs(ns: string, cmd: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000,
  });
}

interface Child {
  proc: ChildProcess;
  lines: unknown[];
  stderr: string;
  exited: Promise<number | null>;
  waitFor(pred: (o: any) => boolean, ms: number): Promise<any>;
}

/** Starts `cmd args` in namespace ns; stdout is parsed as JSON lines. */
function start(ns: string, cmd: string, args: string[]): Child {
  const proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
    env: { ...process.env, VSWIO_ADDON: addon }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  const c: Child = {
    proc, lines: [], stderr: '',
    exited: new Promise((res) => proc.on('exit', (code) => res(code))),
    waitFor(pred, ms) {
      return new Promise((res, rej) => {
        const check = () => {
          const hit = c.lines.find(pred);
          if (hit !== undefined) { cleanup(); res(hit); return true; }
          return false;
        };
        const onExit = () => { if (!check()) { cleanup(); rej(new Error(`child exited: ${c.stderr}`)); } };
        const timer = setTimeout(() => { cleanup(); rej(new Error(`timeout; stderr: ${c.stderr}`)); }, ms);
        const cleanup = () => { clearTimeout(timer); proc.stdout!.off('data', onData); proc.off('exit', onExit); };
        const onData = () => setImmediate(check);
        if (check()) { clearTimeout(timer); return; }
        proc.stdout!.on('data', onData);
        proc.on('exit', onExit);
      });
    },
  };
  let pending = '';
  proc.stdout!.on('data', (d: Buffer) => {
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try { c.lines.push(JSON.parse(line)); } catch { c.lines.push({ raw: line }); }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => { c.stderr += d.toString(); });
  return c;
}

/** Runs to completion and returns stdout (throws on non-zero exit). */
async function run(ns: string, cmd: string, args: string[], ms = 20_000): Promise<string> {
  const c = start(ns, cmd, args);
  let out = '';
  c.proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), ms);
  const code = await c.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${ns}: exit ${code}: ${c.stderr}`);
  return out;
}

/** ICMP echo via a python3 raw socket (ping may not be installed). */
const PING_PY = `
import socket, struct, sys, time, os, json
dst, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1.0)
ident = os.getpid() & 0xffff
ok, rtts = 0, []
for seq in range(n):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    h = struct.pack('!BBHHH', 8, 0, 0, ident, seq)
    pkt = struct.pack('!BBHHH', 8, 0, csum(h + payload), ident, seq) + payload
    t = time.time(); s.sendto(pkt, (dst, 0))
    while True:
        try: data = s.recv(65535)
        except socket.timeout: break
        ihl = (data[0] & 15) * 4
        typ, code, _, rid, rseq = struct.unpack('!BBHHH', data[ihl:ihl + 8])
        if typ == 0 and rid == ident and rseq == seq and data[ihl + 8:] == payload:
            ok += 1; rtts.append((time.time() - t) * 1000); break
    time.sleep(0.1)
print(json.dumps({'sent': n, 'received': ok, 'rtts': rtts}))
`;

/**
 * Sends 802.1Q-tagged broadcast frames inline on an AF_PACKET socket with PACKET_VNET_HDR:
 * 'plain': ethertype 0x88b5 + marker; 'csum': IPv4/TCP + marker whose TCP checksum is
 * left partial (vnet NEEDS_CSUM, csum_start 38 = 14 + 4 + 20 in the tagged frame).
 */
const VLAN_SEND_PY = `
import socket, struct, sys
ifname, tci, kind = sys.argv[1], int(sys.argv[2], 0), sys.argv[3]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.setsockopt(263, 15, 1)  # SOL_PACKET, PACKET_VNET_HDR
s.bind((ifname, 0))
mac = open('/sys/class/net/%s/address' % ifname).read().strip()
src = bytes.fromhex(mac.replace(':', ''))
eth = b'\\xff' * 6 + src + struct.pack('!HH', 0x8100, tci)
def csum(b):
    if len(b) % 2: b += b'\\0'
    v = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while v > 0xffff: v = (v & 0xffff) + (v >> 16)
    return ~v & 0xffff
if kind == 'plain':
    vnet = bytes(10)
    f = eth + struct.pack('!H', 0x88b5) + b'vswio-vlan-test!'
    f += bytes(64 - len(f))
else:
    payload = b'vswio-csum-test!' + bytes(32)
    tcp = struct.pack('!HHIIBBHHH', 40000, 5201, 1, 0, 5 << 4, 0x18, 1024, 0, 0)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp) + len(payload), 1, 0, 64, 6, 0,
                     bytes([10, 77, 0, 1]), bytes([10, 77, 0, 2]))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    vnet = struct.pack('=BBHHHH', 1, 0, 0, 0, 14 + 4 + 20, 16)
    f = eth + struct.pack('!H', 0x0800) + ip + tcp + payload
s.send(vnet + f)
print(len(f))
`;

/**
 * Receives frames (PACKET_VNET_HDR + PACKET_AUXDATA) until it has seen both test frames;
 * prints each one's tag and vnet header.
 */
const VLAN_RECV_PY = `
import socket, struct, sys, json, time
ifname = sys.argv[1]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(263, 15, 1)  # PACKET_VNET_HDR
s.setsockopt(263, 8, 1)   # PACKET_AUXDATA
s.bind((ifname, 0))
s.settimeout(0.2)
print(json.dumps({'ready': True}), flush=True)
end = time.time() + 15
seen = set()
while time.time() < end and len(seen) < 2:
    try: data, anc, flags, addr = s.recvmsg(65535, socket.CMSG_SPACE(20))
    except socket.timeout: continue
    for marker in (b'vswio-vlan-test!', b'vswio-csum-test!'):
        if marker not in data or marker in seen: continue
        seen.add(marker)
        tci = None
        for lvl, typ, d in anc:
            if lvl == 263 and typ == 8:
                st, ln, snap, mac, net, vtci, vtpid = struct.unpack('IIIHHHH', d[:20])
                if st & (1 << 4): tci = vtci
        vf, gso, hl, gs, cs, co = struct.unpack('=BBHHHH', data[:10])
        print(json.dumps({'got': marker.decode(), 'tci': tci, 'ethertype': data[22:24].hex(),
                          'vnetFlags': vf, 'csumStart': cs, 'csumOffset': co}), flush=True)
`;

/** TCP: server in C2 counts bytes; client in C1 sends a fixed amount. */
const TCP_SERVER_JS = `
const net = require('net');
const srv = net.createServer((s) => {
  let n = 0; const t0 = process.hrtime.bigint();
  s.on('data', (d) => { n += d.length; });
  s.on('end', () => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(JSON.stringify({ bytes: n, ms })); s.end(); srv.close();
  });
});
srv.listen(5201, process.argv[2], () => console.log(JSON.stringify({ ready: true })));
setTimeout(() => process.exit(3), 25000).unref();
`;
const TCP_CLIENT_JS = `
const net = require('net');
const total = Number(process.argv[3]); const chunk = Buffer.alloc(1 << 20, 0x5a);
const s = net.connect(5201, process.argv[2], () => {
  let sent = 0;
  const pump = () => { while (sent < total) { sent += chunk.length; if (!s.write(chunk)) return s.once('drain', pump); } s.end(); };
  pump();
});
s.on('close', () => process.exit(0));
s.on('error', (e) => { console.error(e.message); process.exit(2); });
s.resume();
setTimeout(() => process.exit(3), 25000).unref();
`;

function write(name: string, text: string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, text);
  return p;
}

function netnsList(): string[] {
  return ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
}

function deleteOurNamespaces(): void {
  for (const n of netnsList()) {
    if (n.startsWith(PREFIX)) {
      try { ip('netns', 'del', n); } catch { /* already gone */ }
    }
  }
}

async function startForwarder(vnet: boolean, slot: number, ring = true): Promise<{ child: Child; stop: string }> {
  const stop = path.join(tmp, `stop-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  const child = start(NS.sw, process.execPath, [path.join(tmp, 'child.js'), 'forward', 's1', 's2',
    vnet ? '1' : '0', String(slot), stop, ring ? '1' : '0']);
  const ready = await child.waitFor((o) => o.ready === true, 10_000);
  expect(ready.vnet).toEqual([vnet, vnet]);
  expect(ready.ring).toEqual([ring, ring]);
  return { child, stop };
}

async function stopForwarder(f: { child: Child; stop: string }): Promise<any> {
  fs.writeFileSync(f.stop, '');
  const done = await f.child.waitFor((o) => o.done === true, 5_000);
  await f.child.exited;
  return done;
}

// ---------------------------------------------------------------------------------------

describe.skipIf(!canRun)(`native packet I/O addon (${canRun ? 'root' : skipReason})`, () => {
  let pyOk = false;

  beforeAll(() => {
    const found = addonPath();
    if (!found) throw new Error('vsw: native addon not built: run npm install');
    addon = found;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vswio-'));
    write('child.js', CHILD);
    write('ping.py', PING_PY);
    write('vlan_send.py', VLAN_SEND_PY);
    write('vlan_recv.py', VLAN_RECV_PY);
    write('tcp_server.js', TCP_SERVER_JS);
    write('tcp_client.js', TCP_CLIENT_JS);
    try {
      execFileSync('python3', ['-c', 'import socket; socket.AF_PACKET'], { stdio: 'ignore' });
      pyOk = true;
    } catch { pyOk = false; }

    deleteOurNamespaces();
    claimPrefix(P); // the harness deletes them on exit in case afterAll never runs
    for (const ns of Object.values(NS)) {
      ip('netns', 'add', ns);
      inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    }
    // veth pairs are created inside SW, their peers moved straight into C1 / C2.
    ip('-n', NS.sw, 'link', 'add', 's1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.c1);
    ip('-n', NS.sw, 'link', 'add', 's2', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.c2);
    for (const s of ['s1', 's2']) ip('-n', NS.sw, 'link', 'set', s, 'up');
    ip('-n', NS.c1, 'addr', 'add', `${IP1}/24`, 'dev', 'eth0');
    ip('-n', NS.c2, 'addr', 'add', `${IP2}/24`, 'dev', 'eth0');
    ip('-n', NS.c1, 'link', 'set', 'eth0', 'up');
    ip('-n', NS.c2, 'link', 'set', 'eth0', 'up');
  });

  afterAll(() => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    deleteOurNamespaces();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  // TCP through the forwarder with the veths' default offloads (TSO, tx checksum): the
  // forwarder receives GSO frames of up to 64 KB, which with a ring take the TP_STATUS_COPY
  // path (read whole from the socket queue at their place in the ring).
  it.each([
    { ring: true, mb: 64 },
    { ring: false, mb: 16 },
  ])('forwards ping and TCP (default checksum offloads) between two veths with vnet headers (ring $ring)', async ({ ring, mb }) => {
    const f = await startForwarder(true, SLOT, ring);
    try {
      if (pyOk) {
        const ping = JSON.parse(await run(NS.c1, 'python3', [path.join(tmp, 'ping.py'), IP2, '3', '56']));
        expect(ping.received).toBe(3);
      }
      const srv = start(NS.c2, process.execPath, [path.join(tmp, 'tcp_server.js'), IP2]);
      await srv.waitFor((o) => o.ready === true, 10_000);
      const total = mb << 20;
      await run(NS.c1, process.execPath, [path.join(tmp, 'tcp_client.js'), IP2, String(total)], 25_000);
      const r = await srv.waitFor((o) => typeof o.bytes === 'number', 10_000);
      expect(r.bytes).toBe(total);
      console.log(`[io.test] TCP through the vnet forwarder (ring ${ring}): ${((total * 8) / (r.ms / 1000) / 1e9).toFixed(2)} Gbit/s`);
    } finally {
      const done = await stopForwarder(f);
      expect(done.fwd[0]).toBeGreaterThan(0);
      expect(done.fwd[1]).toBeGreaterThan(0);
      expect(done.truncated).toBe(0);
      // GSO frames went through whole (bigger than a ring frame: the copy path, with a ring).
      expect(done.maxLen).toBeGreaterThan(RING_FRAME_SIZE);
      for (const k of done.kernel) {
        expect(k.packets).toBeGreaterThan(0);
        // The forwarder keeps up: the kernel drops (ring or queue full) stay a small share.
        expect(Number.isInteger(k.drops), `kernel drops ${k.drops}`).toBe(true);
        expect(k.drops, `kernel drops of ${k.packets} packets`).toBeLessThan(k.packets / 10);
      }
    }
  });

  it.each([
    { ring: true, frames: RING_FRAMES, frameSize: RING_FRAME_SIZE },
    { ring: { frames: 200, frameSize: 256 }, frames: 256, frameSize: 256 }, // 4000-byte frames: copy path
    { ring: false, frames: 0, frameSize: 0 },
  ])('delivers bursts in order with none lost, and counts kernel drops when not read (ring $ring)', async ({ ring, frames, frameSize }) => {
    const arg = typeof ring === 'boolean' ? (ring ? '1' : '0') : JSON.stringify(ring);
    const r = JSON.parse(await run(NS.b, process.execPath, [path.join(tmp, 'child.js'), 'burst', arg], 25_000));
    console.log(`[io.test] burst (ring ${arg}): ${JSON.stringify({ keepUp: r.keepUp, flood: r.flood })}`);
    expect(r.ring).toBe(ring !== false);
    expect([r.ringFrames, r.ringFrameSize]).toEqual([frames, frameSize]);
    expect(r.txRing).toBe(false);
    expect(r.errors).toEqual([]);
    // 1. Bursts of half the ring (small, 4000-byte and tagged frames mixed): all, in order.
    expect(r.keepUp.sent).toBe(BURSTS * BURST);
    expect(r.keepUp.got).toBe(BURSTS * BURST);
    expect(r.keepUp.stats).toEqual({ packets: BURSTS * BURST, drops: 0 });
    // 2. Nobody reads: the ring (or queue) fills, the rest is dropped and counted; what was
    // kept is the oldest frames, in order.
    expect(r.flood.drops).toBeGreaterThan(0);
    expect(r.flood.packets).toBe(r.flood.sent);
    expect(r.flood.held).toBe(r.flood.packets - r.flood.drops);
    expect(r.flood.lastSeq).toBe(BURSTS * BURST + r.flood.held - 1);
    if (ring !== false) expect(r.flood.held).toBe(frames);
    expect(r.flood.after).toEqual({ packets: 0, drops: 0 }); // deltas: cleared by the read
    // 3. close + openPacket on the same fd number: a fresh ring, frames flow again.
    expect(r.reopen.sameFd).toBe(true);
    expect(r.reopen.ring).toBe(ring !== false);
    expect(r.reopen.got).toBe(100);
    expect(r.worker).toBe(100);
  });

  it('re-inserts the VLAN tag from PACKET_AUXDATA, moving csum_start (and it crosses a send)', async (ctx) => {
    if (!pyOk) ctx.skip();
    const f = await startForwarder(true, SLOT);
    const recv = start(NS.c2, 'python3', [path.join(tmp, 'vlan_recv.py'), 'eth0']);
    try {
      await recv.waitFor((o) => o.ready === true, 10_000);
      // PCP 5, DEI 1, VID 123
      const tci = (5 << 13) | (1 << 12) | 123;
      await run(NS.c1, 'python3', [path.join(tmp, 'vlan_send.py'), 'eth0', String(tci), 'plain']);
      await run(NS.c1, 'python3', [path.join(tmp, 'vlan_send.py'), 'eth0', String(tci), 'csum']);
      const h = VNET_HDR_LEN;
      const tagged = (type: number) => (o: any) => o.frame === true && (o.flags & FLAG_VLAN) !== 0 &&
        Buffer.from(o.head, 'hex').readUInt16BE(h + 16) === type;
      const plain = await f.child.waitFor(tagged(0x88b5), 5_000);
      const tcp = await f.child.waitFor(tagged(0x0800), 5_000);
      const gotPlain = await recv.waitFor((o) => o.got === 'vswio-vlan-test!', 5_000);
      const gotTcp = await recv.waitFor((o) => o.got === 'vswio-csum-test!', 5_000);

      // The forwarder's view: tag back in place, frame moved 4 bytes toward the slot start.
      expect(plain.flags & FLAG_TRUNCATED).toBe(0);
      expect(plain.slotOff).toBe(0);
      expect(plain.len).toBe(VNET_HDR_LEN + 64); // 60 B untagged on the wire + 4 B tag + vnet hdr
      const head = Buffer.from(plain.head, 'hex');
      expect(head.subarray(h, h + 6).toString('hex')).toBe('ffffffffffff');
      expect(head.readUInt16BE(h + 12)).toBe(0x8100);
      expect(head.readUInt16BE(h + 14)).toBe(tci);
      expect(head.subarray(h + 18, h + 34).toString()).toBe('vswio-vlan-test!');
      // The partial-checksum frame: csum_start counts the re-inserted tag (34 + 4).
      const th = Buffer.from(tcp.head, 'hex');
      expect(tcp.slotOff).toBe(0);
      expect(th[0] & 1).toBe(1); // VIRTIO_NET_HDR_F_NEEDS_CSUM
      expect(th.readUInt16LE(6)).toBe(38);
      expect(th.readUInt16LE(8)).toBe(16);
      expect(th.readUInt16BE(h + 14)).toBe(tci);
      // The forwarder sent both inline; the receiver's kernel stripped the tag into auxdata
      // again, and the checksum start it reports (untagged frame) is consistent.
      expect(gotPlain.tci).toBe(tci);
      expect(gotPlain.ethertype).toBe('88b5');
      expect(gotTcp.tci).toBe(tci);
      expect(gotTcp.ethertype).toBe('0800');
      expect(gotTcp.vnetFlags & 1).toBe(1);
      expect(gotTcp.csumStart).toBe(34);
      expect(gotTcp.csumOffset).toBe(16);
    } finally {
      await stopForwarder(f);
    }
  });

  it('flags frames larger than the slot as truncated', async () => {
    const f = await startForwarder(true, 200); // with the ring: frames fit it, not the slot
    try {
      if (pyOk) {
        const small = JSON.parse(await run(NS.c1, 'python3', [path.join(tmp, 'ping.py'), IP2, '1', '56']));
        expect(small.received).toBe(1);
        const big = JSON.parse(await run(NS.c1, 'python3', [path.join(tmp, 'ping.py'), IP2, '1', '1000']));
        expect(big.received).toBe(0);
      } else {
        inNs(NS.c1, process.execPath, '-e',
          `require('dgram').createSocket('udp4').send(Buffer.alloc(1000), 9, '${IP2}', () => process.exit(0))`);
      }
      const t = await f.child.waitFor((o) => o.frame === true && (o.flags & FLAG_TRUNCATED) !== 0, 5_000);
      expect(t.len).toBe(200 - RX_HEADROOM);
      expect(t.slotOff).toBe(RX_HEADROOM);
    } finally {
      const done = await stopForwarder(f);
      expect(done.truncated).toBeGreaterThan(0);
    }
  });

  it('opens a TAP with vnet headers, sets its MAC, and exchanges ARP through send/recv', async () => {
    const r = JSON.parse(await run(NS.t, process.execPath, [path.join(tmp, 'child.js'), 'tap'], 20_000));
    expect(r.name).toBe('vswtap0');
    expect(r.vnet).toBe(true);
    expect(r.linkShow).toContain('vswtap0');
    expect(r.linkAfterMac).toContain('02:00:5e:10:20:30');
    expect(r.sent).toBe(1);
    expect(r.reply).toBeDefined();
    expect(r.reply.src).toBe('02005e102030');
    expect(r.reply.sha).toBe('02005e102030');
    expect(r.reply.dst).toBe('02005e999999');
    expect(r.reply.spa).toEqual([10, 78, 0, 1]);
    expect(r.reply.slotOff).toBe(RX_HEADROOM);
    expect(r.echoSent).toBe(1);
    expect(r.truncated).toEqual({ flags: FLAG_TRUNCATED, len: 128 - RX_HEADROOM, slotOff: RX_HEADROOM });
    expect(r.autoName).toMatch(/^tap\d+$/);
    expect(r.autoVnet).toBe(false);
    expect(r.autoIndex).toBeGreaterThan(0);
    expect(r.indexAfterClose).toBe(0); // a non-persistent TAP goes with its fd
  });

  it('survives interfaces going down or away under an open fd', async () => {
    const r = JSON.parse(await run(NS.t, process.execPath, [path.join(tmp, 'child.js'), 'vanish'], 20_000));
    expect(r.downRevents & POLLERR).toBe(POLLERR); // bind/ifdown leave ENETDOWN pending
    expect(r.downRecv).toBe(0);
    expect(r.downPollAfter).toBe(0); // the ENETDOWN was consumed: no POLLERR spin
    expect(r.downSend).toBe(0);
    expect(r.goneRecv).toBe(0);
    expect(r.gonePollAfter).toBe(0);
    expect(r.goneSend).toBe(0);
    expect(r.tapRevents & POLLERR).toBe(POLLERR);
    expect(r.tapRecvError).toMatch(/^EBADFD recv\(fd \d+\): read: /); // the caller drops the port
    expect(r.tapSend).toBe(0);
  });
});

// These need no namespace: they only use eventfds and bad arguments.
describe('native packet I/O addon: arguments and errors', () => {
  const built = addonPath() !== undefined;

  it.skipIf(!built)('rejects bad arguments and bad fds without crashing', () => {
    const io = loadAddon();
    const buf = new Uint8Array(1024);
    const offs = new Int32Array(MAX_BATCH);
    const lens = new Int32Array(MAX_BATCH);
    const flags = new Uint8Array(MAX_BATCH);
    const efd = io.eventfd();
    try {
      // send: a frame outside buf throws before anything is sent
      offs[0] = 1000; lens[0] = 100;
      expect(() => io.send(efd, KIND_PACKET, buf, offs, lens, 1)).toThrow(RangeError);
      offs[0] = -1; lens[0] = 10;
      expect(() => io.send(efd, KIND_TAP, buf, offs, lens, 1)).toThrow(RangeError);
      offs[0] = 0; lens[0] = 0;
      expect(() => io.send(efd, KIND_TAP, buf, offs, lens, 1)).toThrow(RangeError);
      expect(() => io.send(efd, KIND_PACKET, buf, offs, lens, MAX_BATCH + 1)).toThrow(RangeError);
      // recv: buffer too small for max * slot, bad slot, short arrays, bad kind
      expect(() => io.recv(efd, KIND_PACKET, true, buf, SLOT, 1, offs, lens, flags)).toThrow(RangeError);
      expect(() => io.recv(efd, KIND_PACKET, true, buf, 8, 1, offs, lens, flags)).toThrow(RangeError);
      expect(() => io.recv(efd, KIND_PACKET, true, buf, 256, 4, offs.subarray(0, 2), lens, flags)).toThrow(RangeError);
      expect(() => io.recv(efd, 7, true, buf, 256, 1, offs, lens, flags)).toThrow(RangeError);
      // wrong types
      expect(() => (io as any).recv(efd, KIND_PACKET, true, [1, 2, 3], 256, 1, offs, lens, flags)).toThrow(TypeError);
      expect(() => (io as any).send(efd, KIND_PACKET, buf, new Uint32Array(4), lens, 1)).toThrow(TypeError);
      expect(() => (io as any).send('3', KIND_PACKET, buf, offs, lens, 1)).toThrow(TypeError);
      expect(() => (io as any).poll(new Int32Array(1), 1, 0)).toThrow(TypeError);
      expect(() => io.setMac('lo', new Uint8Array(5))).toThrow(RangeError);
      // a bad fd is a syscall error with its errno name
      const sendBad = (): number => { offs[0] = 0; lens[0] = 60; return io.send(1 << 20, KIND_PACKET, buf, offs, lens, 1); };
      expect(sendBad).toThrow(/send\(fd 1048576\): sendmmsg: Bad file descriptor/);
      try { sendBad(); } catch (e) { expect((e as NodeJS.ErrnoException).code).toBe('EBADF'); }
      expect(() => io.recv(1 << 20, KIND_PACKET, false, buf, 256, 4, offs, lens, flags)).toThrow(/recvmmsg: Bad file descriptor/);
      expect(() => io.send(efd, KIND_PACKET, buf, offs, lens, 1)).toThrow(/Socket operation on non-socket/);
      expect(() => io.close(1 << 20)).toThrow(/Bad file descriptor/);
      expect(() => io.openPacket('vswionope0', true)).toThrow(/^openPacket\(vswionope0\): if_nametoindex: No such device$/);
      expect(() => io.openPacket('a-name-much-too-long', true)).toThrow(RangeError);
      expect(() => (io as any).openPacket('lo', true, 1)).toThrow(TypeError);
      expect(() => io.openPacket('lo', true, { frameSize: 1000 })).toThrow(RangeError); // not 2^n
      expect(() => io.openPacket('lo', true, { frames: 16 })).toThrow(RangeError);
      expect(() => io.openPacket('lo', true, { frames: 65536, frameSize: 4096 })).toThrow(RangeError); // > 64 MiB
      // packetStats: not a socket (an eventfd, like a TAP) -> zeros; a bad fd throws
      expect(io.packetStats(efd)).toEqual({ packets: 0, drops: 0 });
      expect(() => io.packetStats(1 << 20)).toThrow(/packetStats\(fd 1048576\): getsockopt\(PACKET_STATISTICS\): Bad file descriptor/);
      expect(io.ifindex('vswionope0')).toBe(0);
      expect(io.ifindex('lo')).toBe(1);
      // poll + eventfd
      const fds = Int32Array.of(efd);
      const rev = new Int32Array(1);
      expect(io.poll(fds, 1, 0, rev)).toBe(0);
      io.eventfdSignal(efd);
      io.eventfdSignal(efd);
      expect(io.poll(fds, 1, 0, rev)).toBe(1);
      expect(rev[0] & POLLIN).toBe(POLLIN);
      io.eventfdDrain(efd);
      expect(io.poll(fds, 1, 0, rev)).toBe(0);
      expect(() => io.poll(fds, 2, 0, rev)).toThrow(RangeError);
      // count 0 sends nothing, even on a non-socket
      expect(io.send(efd, KIND_PACKET, buf, offs, lens, 0)).toBe(0);
    } finally {
      io.close(efd);
    }
  });

  it.skipIf(!built)('loads in several worker threads at once (context-aware module)', async () => {
    const code = `
      const { parentPort, workerData } = require('worker_threads');
      const io = require(workerData);
      const e = io.eventfd(); io.eventfdSignal(e);
      const rev = new Int32Array(1);
      const ready = io.poll(Int32Array.of(e), 1, 1000, rev);
      io.eventfdDrain(e); io.close(e);
      parentPort.postMessage({ ready, keys: Object.keys(io).length });`;
    const results = await Promise.all([0, 1, 2, 3].map(() => new Promise<any>((res, rej) => {
      const w = new Worker(code, { eval: true, workerData: addonPath() });
      w.once('message', (m) => { res(m); void w.terminate(); });
      w.once('error', rej);
    })));
    expect(loadAddon().ifindex('lo')).toBe(1); // and still in this thread
    // Each worker's instance has every export this thread's has (none missing in a context).
    const keys = Object.keys(loadAddon()).length;
    expect(keys).toBeGreaterThanOrEqual(12);
    for (const r of results) expect(r).toEqual({ ready: 1, keys });
  });
});
