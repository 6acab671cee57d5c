// Micro benchmark of the packet I/O addon: a two-port forwarder (recv/send loop, batch 64)
// between two veths, measured with ping, iperf3 (when installed) and a 64-byte frame flood.
//
//   npx tsc -p tsconfig.json && node dist/bench/micro-io.js [--variants vnet-ring,vnet] [--secs 3]
//
// Variants: vnet / novnet (PACKET_VNET_HDR on the forwarder's ports or not), each with a
// "-ring" suffix for the TPACKET_V2 receive ring (openPacket's default) instead of recvmmsg.
//
// Needs root. Creates namespaces vswbench-<pid>-{sw,c1,c2} (deleted at the end, also on
// Ctrl-C) and sends only inside them. VSWIO_ADDON=/path/vswio.node runs the forwarder
// with another build of the addon (to compare variants of the C code).
//
// The same file is the child process for each role: `micro-io.js forward|gen|count ...`.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadIo, type Io, KIND_PACKET, MAX_BATCH, SLOT } from '../workers/io';

function io(): Io {
  const alt = process.env.VSWIO_ADDON;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return alt ? (require(alt) as Io) : loadIo();
}

const out = (o: unknown): void => { fs.writeSync(1, JSON.stringify(o) + '\n'); };

// ---------------------------------------------------------------------------------------
// child roles

function forward(a: string, b: string, vnet: boolean, ring: boolean, stopFile: string): void {
  const x = io();
  const pa = x.openPacket(a, vnet, ring);
  const pb = x.openPacket(b, vnet, ring);
  const ports = [pa, pb];
  const buf = new Uint8Array(SLOT * MAX_BATCH);
  const offs = new Int32Array(MAX_BATCH), lens = new Int32Array(MAX_BATCH), flags = new Uint8Array(MAX_BATCH);
  const tOffs = new Int32Array(MAX_BATCH), tLens = new Int32Array(MAX_BATCH);
  const fds = Int32Array.of(pa.fd, pb.fd), rev = new Int32Array(2);
  let fwd = 0, drops = 0, batches = 0, iter = 0;
  out({ ready: true, vnet: pa.vnet && pb.vnet, ring: pa.ring && pb.ring });
  for (;;) {
    const n = x.poll(fds, 2, 50, rev);
    if ((n === 0 || (++iter & 1023) === 0) && fs.existsSync(stopFile)) break;
    for (let i = 0; i < 2; i++) {
      if (rev[i] === 0) continue;
      const c = x.recv(ports[i].fd, KIND_PACKET, vnet, buf, SLOT, MAX_BATCH, offs, lens, flags);
      if (c === 0) continue;
      batches++;
      let k = 0;
      for (let j = 0; j < c; j++) {
        if (flags[j] & 1) { drops++; continue; }
        tOffs[k] = offs[j]; tLens[k] = lens[j]; k++;
      }
      const s = x.send(ports[1 - i].fd, KIND_PACKET, buf, tOffs, tLens, k);
      fwd += s;
      drops += k - s;
    }
  }
  const k = x.packetStats(pa.fd);
  out({ done: true, fwd, drops, batches, kernelDropsS1: k.drops });
}

/** Sends 64-byte frames (ethertype 0x88b5) to dstMac as fast as possible for secs. */
function gen(ifname: string, dstMac: string, secs: number): void {
  const x = io();
  const p = x.openPacket(ifname, false, false);
  const src = fs.readFileSync(`/sys/class/net/${ifname}/address`, 'utf8').trim();
  const frame = new Uint8Array(60);
  frame.set(Buffer.from(dstMac.replace(/:/g, ''), 'hex'), 0);
  frame.set(Buffer.from(src.replace(/:/g, ''), 'hex'), 6);
  frame.set([0x88, 0xb5], 12);
  const buf = new Uint8Array(60 * MAX_BATCH);
  const offs = new Int32Array(MAX_BATCH), lens = new Int32Array(MAX_BATCH);
  for (let i = 0; i < MAX_BATCH; i++) { buf.set(frame, i * 60); offs[i] = i * 60; lens[i] = 60; }
  const end = Date.now() + secs * 1000;
  let sent = 0;
  while (Date.now() < end) {
    for (let r = 0; r < 16; r++) sent += x.send(p.fd, KIND_PACKET, buf, offs, lens, MAX_BATCH);
  }
  out({ sent, pps: sent / secs });
}

/** Counts 0x88b5 frames received on ifname for secs. */
function count(ifname: string, secs: number): void {
  const x = io();
  const p = x.openPacket(ifname, false);
  const slot = 256;
  const buf = new Uint8Array(slot * MAX_BATCH);
  const offs = new Int32Array(MAX_BATCH), lens = new Int32Array(MAX_BATCH), flags = new Uint8Array(MAX_BATCH);
  const fds = Int32Array.of(p.fd), rev = new Int32Array(1);
  out({ ready: true });
  const end = Date.now() + secs * 1000;
  let got = 0;
  while (Date.now() < end) {
    if (x.poll(fds, 1, 50, rev) === 0) continue;
    const c = x.recv(p.fd, KIND_PACKET, false, buf, slot, MAX_BATCH, offs, lens, flags);
    for (let j = 0; j < c; j++) if (buf[offs[j] + 12] === 0x88 && buf[offs[j] + 13] === 0xb5) got++;
  }
  out({ got });
}

// ---------------------------------------------------------------------------------------
// driver

const PREFIX = `vswbench-${process.pid}-`;
const NS = { sw: `${PREFIX}sw`, c1: `${PREFIX}c1`, c2: `${PREFIX}c2` };
const IP2 = '10.79.0.2';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function child(ns: string, args: string[]): { proc: ChildProcess; lines: any[]; next: (pred: (o: any) => boolean, ms: number) => Promise<any> } {
  const proc = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: any[] = [];
  let pending = '';
  const waiters: Array<() => void> = [];
  proc.stdout!.on('data', (d: Buffer) => {
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const l = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try { lines.push(JSON.parse(l)); } catch { lines.push({ raw: l }); }
    }
    waiters.splice(0).forEach((w) => w());
  });
  proc.on('exit', () => waiters.splice(0).forEach((w) => w()));
  const next = (pred: (o: any) => boolean, ms: number): Promise<any> => new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`timeout waiting for ${args.join(' ')}`)), ms);
    const check = (): void => {
      const hit = lines.find(pred);
      if (hit) { clearTimeout(t); res(hit); } else if (proc.exitCode !== null) { clearTimeout(t); rej(new Error(`exited: ${args.join(' ')}`)); } else waiters.push(check);
    };
    check();
  });
  return { proc, lines, next };
}

function cleanup(): void {
  for (const ns of Object.values(NS)) {
    try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ }
  }
}

let runs = 0;

async function variant(name: string, secs: number, tmp: string): Promise<Record<string, unknown>> {
  const self = __filename;
  const vnet = name.startsWith('vnet');
  const ring = name.endsWith('-ring');
  const stop = path.join(tmp, `stop-${name}-${++runs}`);
  const f = child(NS.sw, [process.execPath, self, 'forward', 's1', 's2', vnet ? '1' : '0', ring ? '1' : '0', stop]);
  const ready = await f.next((o) => o.ready, 10_000);
  const r: Record<string, unknown> = { vnet: ready.vnet, ring: ready.ring };
  if (has('ping')) {
    const p = execFileSync('ip', ['netns', 'exec', NS.c1, 'ping', '-q', '-c', '50', '-i', '0.02', IP2], { encoding: 'utf8' });
    const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(p);
    r.pingAvgMs = m ? Number(m[2]) : p;
  }
  if (has('iperf3')) {
    const srv = spawn('ip', ['netns', 'exec', NS.c2, 'iperf3', '-s', '-1', '-B', IP2], { stdio: 'ignore' });
    await new Promise((res) => setTimeout(res, 300));
    try {
      const j = JSON.parse(execFileSync('ip', ['netns', 'exec', NS.c1, 'iperf3', '-c', IP2, '-t', String(secs), '-J', '--connect-timeout', '2000'],
        { encoding: 'utf8', timeout: (secs + 8) * 1000 }));
      r.tcpGbps = +(j.end.sum_received.bits_per_second / 1e9).toFixed(2);
      r.tcpRetransmits = j.end.sum_sent.retransmits;
    } catch (e) {
      r.tcpGbps = `failed (${(e as Error).message.split('\n')[0]})`;
    }
    srv.kill('SIGKILL');
  }
  const mac2 = execFileSync('ip', ['netns', 'exec', NS.c2, 'cat', '/sys/class/net/eth0/address'], { encoding: 'utf8' }).trim();
  const cnt = child(NS.c2, [process.execPath, __filename, 'count', 'eth0', String(secs + 1)]);
  await cnt.next((o) => o.ready, 10_000);
  const g = child(NS.c1, [process.execPath, __filename, 'gen', 'eth0', mac2, String(secs)]);
  const gr = await g.next((o) => o.sent !== undefined, (secs + 10) * 1000);
  const cr = await cnt.next((o) => o.got !== undefined, (secs + 10) * 1000);
  r.flood64 = { offeredPps: Math.round(gr.pps), forwardedPps: Math.round(cr.got / secs) };
  fs.writeFileSync(stop, '');
  const done = await f.next((o) => o.done, 10_000);
  r.forwarder = done;
  return r;
}

async function main(): Promise<void> {
  const [mode, ...a] = process.argv.slice(2);
  if (mode === 'forward') return forward(a[0], a[1], a[2] === '1', a[3] === '1', a[4]);
  if (mode === 'gen') return gen(a[0], a[1], Number(a[2]));
  if (mode === 'count') return count(a[0], Number(a[1]));

  if (process.getuid?.() !== 0) throw new Error('micro-io: needs root');
  const argv = process.argv.slice(2);
  const opt = (k: string, d: string): string => { const i = argv.indexOf(k); return i >= 0 ? argv[i + 1] : d; };
  const variants = opt('--variants', 'vnet-ring,vnet').split(',');
  const secs = Number(opt('--secs', '3'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vswbench-'));
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  try {
    for (const ns of Object.values(NS)) { ip('netns', 'add', ns); ip('-n', ns, 'link', 'set', 'lo', 'up'); }
    ip('-n', NS.sw, 'link', 'add', 's1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.c1);
    ip('-n', NS.sw, 'link', 'add', 's2', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.c2);
    ip('-n', NS.sw, 'link', 'set', 's1', 'up');
    ip('-n', NS.sw, 'link', 'set', 's2', 'up');
    ip('-n', NS.c1, 'addr', 'add', '10.79.0.1/24', 'dev', 'eth0');
    ip('-n', NS.c2, 'addr', 'add', `${IP2}/24`, 'dev', 'eth0');
    ip('-n', NS.c1, 'link', 'set', 'eth0', 'up');
    ip('-n', NS.c2, 'link', 'set', 'eth0', 'up');
    for (const v of variants) {
      const r = await variant(v, secs, tmp);
      console.log(JSON.stringify({ variant: v, addon: process.env.VSWIO_ADDON ?? 'build/Release', ...r }));
    }
  } finally {
    cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); cleanup(); process.exit(1); });
