// The probes of the stress suite (issue 11): each repeats one attack against the running
// daemon and returns its checks (what must hold, with the value seen) and figures. A probe
// holds when every check does. Loads are smaller with --ci (World.ci).
//
// Every probe cleans up what it made (containers, networks) in a finally, so that the next
// one starts from the same world; the namespaces themselves are removed by lib.cleanupAll.

import * as fs from 'fs';
import * as http from 'http';
import type { EndpointInfo, NetworkInfo, PortStatsInfo } from '../control/types';
import { bg, CLI, inNs, linkStats, netnsExists, NODE, PREFIX, rssMb, sh, sleep, waitFor, type Bg } from './lib';
import {
  blast, containers, createNetwork, ctBySource, dropDeltas, dropSum, fdb, fromContainer, HOST, name, network, OUT, OUTSIDE_IP,
  portOf, reachesOutside, rmContainers, runEndpoint, stats, UPLINK_IP, type World,
} from './topo';

export interface Check { what: string; ok: boolean; value: string }
export interface Outcome { checks: Check[]; figures: string[] }
export interface Probe {
  name: string;
  load(w: World): string;
  run(w: World): Promise<Outcome>;
}

function check(what: string, ok: boolean, value: string | number): Check {
  return { what, ok, value: String(value) };
}

const FDB_MAX = 16384;
const FDB_MAX_PER_PORT = 4096;
const CT_MAX = 65536;
const CT_PER_SOURCE = 16384;
const NAT_PORTS = 65535 - 1024 + 1;

function pct(n: number, of: number): string {
  return of === 0 ? '0 %' : `${((100 * n) / of).toFixed(1)} %`;
}

function k(n: number): string {
  return n >= 10_000 ? `${Math.round(n / 1000)}k` : String(n);
}

function topDrops(d: Record<string, number>, n = 6): string {
  const e = Object.entries(d).sort((a, b) => b[1] - a[1]).slice(0, n);
  return e.length === 0 ? 'none' : e.map(([r, v]) => `${r} ${v}`).join(', ');
}

async function alive(w: World): Promise<Check> {
  const r = await w.d.api('GET', '/info', undefined, 10_000);
  return check('daemon alive (GET /info 200)', r.status === 200 && w.d.running(), r.status);
}

async function outsideCheck(w: World, what: string): Promise<Check> {
  const r = await reachesOutside(w.client.container);
  return check(what, r.udp && r.ping, `udp echo ${r.udp ? 'ok' : 'FAILED'}, ping ${r.ping ? 'ok' : 'FAILED'}`);
}

// ---------------------------------------------------------------------------------------
// API abuse

const apiAbuse: Probe = {
  name: 'api-abuse',
  load: () => 'bad JSON, 100 MB body, unknown route/method, 500 parallel requests',
  async run(w) {
    const d = w.d;
    const checks: Check[] = [];
    const bad = await d.api('POST', '/networks', '{"name": ');
    checks.push(check('bad JSON -> 400', bad.status === 400, bad.status));
    const arr = await d.api('POST', '/networks', '[1,2,3]');
    checks.push(check('JSON not an object -> 400', arr.status === 400, arr.status));
    const unk = await d.api('POST', '/networks', JSON.stringify({ name: name('u'), bogus: 1 }));
    checks.push(check('unknown field -> 400', unk.status === 400, unk.status));
    const t0 = Date.now();
    const big = await d.api('POST', '/networks', Buffer.alloc(100 * 1024 * 1024, 0x20), 60_000);
    checks.push(check('100 MB body -> 413', big.status === 413, `${big.status} in ${Date.now() - t0} ms`));
    const nf = await d.api('GET', '/no-such-route');
    checks.push(check('unknown route -> 404', nf.status === 404, nf.status));
    const ma = await d.api('DELETE', '/info');
    checks.push(check('wrong method -> 405', ma.status === 405, ma.status));
    const t1 = Date.now();
    const reqs: Promise<{ status: number; want: number }>[] = [];
    for (let i = 0; i < 500; i++) {
      const kind = i % 4;
      const p = kind === 0 ? d.api('GET', '/info') : kind === 1 ? d.api('GET', '/networks') : kind === 2 ? d.api('GET', '/stats')
        : d.api('POST', '/networks', '{');
      reqs.push(p.then((r) => ({ status: r.status, want: kind === 3 ? 400 : 200 })));
    }
    const res = await Promise.all(reqs);
    const right = res.filter((r) => r.status === r.want).length;
    checks.push(check('500 parallel requests: every status right', right === 500, `${right}/500 in ${Date.now() - t1} ms`));
    checks.push(await alive(w));
    return { checks, figures: [`100 MB refused in ${Date.now() - t0 - (Date.now() - t1)} ms`] };
  },
};

// ---------------------------------------------------------------------------------------
// Hostile names (issue 11, defect 11)

const hostileNames: Probe = {
  name: 'hostile-names',
  load: () => '11 invalid names x 2 kinds, container names colliding in DNS (case, NAME.NETWORK), link-local and multicast subnets',
  async run(w) {
    const d = w.d;
    const checks: Check[] = [];
    const figures: string[] = [];
    const bad = ['../escape', 'a'.repeat(64), 'x;rm -rf /', '', ' lead', '-lead', 'a/b', 'nul\u0000x', 'ünï', '$(reboot)', '.hidden'];
    let refused = 0;
    const accepted: string[] = [];
    for (const n of bad) {
      const a = await d.api('POST', '/networks', JSON.stringify({ name: n }));
      const b = await d.api('POST', '/containers', JSON.stringify({ name: n }));
      if (a.status === 400) refused++; else accepted.push(`network ${JSON.stringify(n)}: ${a.status}`);
      if (b.status === 400) refused++; else accepted.push(`container ${JSON.stringify(n)}: ${b.status}`);
    }
    checks.push(check('invalid names -> 400', refused === bad.length * 2, accepted.length === 0 ? `${refused}/${bad.length * 2}` : accepted.join('; ')));
    const made: { nets: string[]; ctrs: string[] } = { nets: [], ctrs: [] };
    try {
      const lower = `${PREFIX}case`;
      const upper = lower.toUpperCase();
      const l = await d.api('POST', '/networks', JSON.stringify({ name: lower }));
      if (l.status === 201) made.nets.push(lower);
      const u = await d.api('POST', '/networks', JSON.stringify({ name: upper }));
      if (u.status === 201) made.nets.push(upper);
      // A network's name is the NETWORK of NAME.NETWORK, a DNS name: a twin but for case is refused (409).
      checks.push(check(`network ${upper} beside ${lower} refused`, u.status === 409, u.status === 201 ? 'accepted' : `refused (${u.status})`));
      const shadow = `${w.client.container}.${w.bridge.name}`;
      const s = await d.vsw(['run', '-d', '--name', shadow, '--', 'sleep', '60']);
      if (s.code === 0) made.ctrs.push(shadow);
      checks.push(check(`container ${shadow} (shadows NAME.NETWORK) refused`, s.code !== 0, s.code === 0 ? 'accepted' : s.stderr.trim().split('\n')[0]));
      const caseC = w.client.container.toUpperCase();
      const c = await d.vsw(['run', '-d', '--name', caseC, '--', 'sleep', '60']);
      if (c.code === 0) made.ctrs.push(caseC);
      checks.push(check(`container ${caseC} beside ${w.client.container} refused`, c.code !== 0, c.code === 0 ? 'accepted' : c.stderr.trim().split('\n')[0]));
      for (const [n, subnet] of [[`${PREFIX}ll`, '169.254.0.0/16'], [`${PREFIX}mc`, '224.1.0.0/16']]) {
        const r = await d.api('POST', '/networks', JSON.stringify({ name: n, subnet }));
        if (r.status === 201) made.nets.push(n);
        checks.push(check(`subnet ${subnet} refused (4xx)`, r.status >= 400 && r.status < 500, r.status));
      }
    } finally {
      await rmContainers(d, made.ctrs);
      for (const n of made.nets) await d.vsw(['network', 'rm', n]);
    }
    checks.push(await alive(w));
    return { checks, figures };
  },
};

// ---------------------------------------------------------------------------------------
// MAC flood

interface FloodNet { net: NetworkInfo; v1: EndpointInfo; v2: EndpointInfo }
let floodNet: FloodNet | undefined;

/** The flood network (port security off when the build has it) and its two victims, made once. */
async function getFloodNet(w: World): Promise<FloodNet> {
  if (floodNet) return floodNet;
  const n = `${PREFIX}fl`;
  await createNetwork(w, n, { portSecurityOff: true });
  const v1 = await runEndpoint(w.d, name('fl-v1'), n);
  const v2 = await runEndpoint(w.d, name('fl-v2'), n);
  floodNet = { net: await network(w.d, n), v1, v2 };
  return floodNet;
}

async function floodRun(w: World, net: NetworkInfo, v1: EndpointInfo, v2: EndpointInfo, attackers: EndpointInfo[], seconds: number): Promise<{
  sent: number; loss: number; pings: number; entries: Awaited<ReturnType<typeof fdb>>; before: PortStatsInfo[]; after: PortStatsInfo[];
}> {
  // Both victims are known before the flood.
  await inNs(v1.container, ['ping', '-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', v2.ip], { timeoutMs: 10_000 });
  const before = await stats(w.d);
  const interval = 0.05;
  const count = Math.round(seconds / interval);
  const pingP = inNs(v1.container, ['ping', '-n', '-q', '-c', String(count), '-i', String(interval), '-W', '1', v2.ip], { timeoutMs: seconds * 3000 + 20_000 });
  const results = await Promise.all(attackers.map((a) => blast(a.container, {
    ...fromContainer(a, net), kind: 'macflood', dstMac: v2.mac, count: 1e9, seconds,
  })));
  const p = await pingP;
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(p.stdout);
  const sentPings = m ? Number(m[1]) : count;
  const got = m ? Number(m[2]) : 0;
  const entries = await fdb(w.d, net.name);
  const after = await stats(w.d);
  return { sent: results.reduce((a, r) => a + r.sent, 0), loss: sentPings === 0 ? 1 : 1 - got / sentPings, pings: sentPings, entries, before, after };
}

function macFlood(attackers: number): Probe {
  return {
    name: `mac-flood-${attackers}`,
    load: (w) => `${attackers} attacker${attackers > 1 ? 's' : ''}, random source MACs for ${w.ci ? 2 : 10} s, port security off`,
    async run(w) {
      const { net, v1, v2 } = await getFloodNet(w);
      const names = Array.from({ length: attackers }, (_, i) => name(`fl-a${i + 1}`));
      try {
        const att = await Promise.all(names.map((n) => runEndpoint(w.d, n, net.name)));
        const seconds = w.ci ? 2 : 10;
        const r = await floodRun(w, net, v1, v2, att, seconds);
        const has = (e: EndpointInfo): boolean => r.entries.some((x) => x.mac === e.mac && x.port === e.hostIf);
        const perPort = Math.max(...att.map((a) => r.entries.filter((x) => x.port === a.hostIf).length));
        const checks = [
          check("victims' FDB entries kept on their ports", has(v1) && has(v2), `${[v1, v2].filter(has).length}/2`),
          check('victim ping loss <= 2 %', r.loss <= 0.02, `${pct(Math.round(r.loss * r.pings), r.pings)} of ${r.pings}`),
          check(`FDB size <= ${FDB_MAX}`, r.entries.length <= FDB_MAX, r.entries.length),
          check(`entries per attacker port <= ${FDB_MAX_PER_PORT}`, perPort <= FDB_MAX_PER_PORT, perPort),
          check('stage-error 0', dropSum(r.after, 'stage-error') === dropSum(r.before, 'stage-error'), dropSum(r.after, 'stage-error') - dropSum(r.before, 'stage-error')),
          await alive(w),
        ];
        if (!w.features.portSecurity) checks.push(check('flood network without port security', true, 'this build has no port security: default network used as is'));
        return { checks, figures: [`${k(r.sent)} MACs sent (${k(Math.round(r.sent / seconds))}/s)`, `drops: ${topDrops(dropDeltas(r.before, r.after))}`] };
      } finally {
        await rmContainers(w.d, names);
      }
    },
  };
}

const macFloodSpoofed: Probe = {
  name: 'mac-flood-spoofed',
  load: (w) => `1 attacker on the default network (port security on), ${w.ci ? 2 : 10} s`,
  async run(w) {
    if (!w.features.portSecurity) {
      return { checks: [check('port security in this build', false, 'absent: `vsw network create --help` lists no --port-security')], figures: [] };
    }
    const names = [name('sp-v'), name('sp-a')];
    try {
      const v = await runEndpoint(w.d, names[0]);
      const a = await runEndpoint(w.d, names[1]);
      const seconds = w.ci ? 2 : 10;
      const r = await floodRun(w, w.bridge, w.client, v, [a], seconds);
      const dd = dropDeltas(r.before, r.after);
      // What reached the switch from the attacker (the kernel may drop part of the flood
      // before: rx-queue-full) must be dropped, but for the few frames of its own (ARP).
      const pa = dropDeltas(r.before, r.after, a.hostIf);
      const rx = (portOf(r.after, a.hostIf)?.rxPackets ?? 0) - (portOf(r.before, a.hostIf)?.rxPackets ?? 0);
      const spoofed = pa['spoofed-source'] ?? 0;
      const onAttacker = r.entries.filter((x) => x.port === a.hostIf).length;
      const has = (e: EndpointInfo): boolean => r.entries.some((x) => x.mac === e.mac && x.port === e.hostIf);
      return {
        checks: [
          check('every flood frame that reached the switch dropped as spoofed-source (all but 100 of rx)', rx > 0 && spoofed >= rx - 100,
            `${spoofed} of ${rx} received (${k(r.sent)} sent)`),
          check('attacker port learned at most its own MAC', onAttacker <= 1, onAttacker),
          check("victims' FDB entries kept", has(w.client) && has(v), `${[w.client, v].filter(has).length}/2`),
          check('victim ping loss <= 2 %', r.loss <= 0.02, pct(Math.round(r.loss * r.pings), r.pings)),
          await alive(w),
        ],
        figures: [`${k(r.sent)} MACs sent`, `drops: ${topDrops(dd)}`],
      };
    } finally {
      await rmContainers(w.d, names);
    }
  },
};

// ---------------------------------------------------------------------------------------
// Hostile frames

/** Wait until the port's counters account for what the kernel delivered to it. */
async function settle(w: World, port: string, kernelRx0: number, before: PortStatsInfo, ns: string, dev: string): Promise<{
  kernel: number; rx: number; rxqf: number; after: PortStatsInfo[];
}> {
  let last = { kernel: 0, rx: 0, rxqf: 0, after: [] as PortStatsInfo[] };
  await waitFor('the port counters to account for every frame', async () => {
    const ks = await linkStats(ns, dev);
    const after = await stats(w.d);
    const p = portOf(after, port);
    if (!p) return false;
    last = {
      kernel: ks.rxPackets - kernelRx0, rx: p.rxPackets - before.rxPackets,
      rxqf: (p.drops['rx-queue-full'] ?? 0) - (before.drops['rx-queue-full'] ?? 0), after,
    };
    return last.rx + last.rxqf === last.kernel;
  }, { timeoutMs: 15_000, intervalMs: 500 }).catch(() => undefined);
  return last;
}

function hostileFrames(from: 'container' | 'uplink'): Probe {
  return {
    name: `hostile-frames-${from}`,
    load: (w) => `${w.ci ? '100k' : '1M'} malformed/hostile frames from ${from === 'container' ? 'a container' : 'the uplink'}`,
    async run(w) {
      const count = w.ci ? 100_000 : 1_000_000;
      const names = from === 'container' ? [name('hf-a')] : [];
      try {
        let ns: string; let port: string; let dev: string;
        let spec;
        if (from === 'container') {
          const a = await runEndpoint(w.d, names[0]);
          ns = a.container; port = a.hostIf; dev = a.hostIf;
          spec = { ...fromContainer(a, w.bridge), kind: 'hostile' as const, count };
        } else {
          const up = w.info.uplink!;
          ns = OUT; dev = up.device;
          const s0 = await stats(w.d);
          port = (s0.find((p) => p.network === 'uplink' || p.name === up.device) ?? { name: up.device }).name;
          spec = { iface: 'eth0', srcMac: w.outsideMac, srcIp: OUTSIDE_IP, dstMac: up.mac, dstIp: UPLINK_IP, kind: 'hostile' as const, count };
        }
        // The kernel's counter is read before and after vsw's: a frame of the port's own
        // (an ARP, a neighbour probe) between the reads is in vsw's baseline or not.
        const kA = (await linkStats(HOST, dev)).rxPackets;
        const s0 = await stats(w.d);
        const b0 = portOf(s0, port);
        if (!b0) throw new Error(`no port ${port} in vsw stats`);
        const k0 = (await linkStats(HOST, dev)).rxPackets;
        const r = await blast(ns, spec, 300_000);
        const st = await settle(w, port, k0, b0, HOST, dev);
        const dd = dropDeltas(s0, st.after, port);
        const stageErr = dropSum(st.after, 'stage-error') - dropSum(s0, 'stage-error');
        const named = Object.entries(dd).filter(([reason]) => reason !== 'rx-queue-full').reduce((a, [, v]) => a + v, 0);
        return {
          checks: [
            check('stage-error 0', stageErr === 0, stageErr),
            check('every frame the kernel delivered counted (rx + rx-queue-full = kernel rx)',
              st.rx + st.rxqf >= st.kernel && st.rx + st.rxqf <= st.kernel + (k0 - kA),
              `${st.rx} + ${st.rxqf} = ${st.rx + st.rxqf} vs ${st.kernel}${k0 > kA ? ` (+${k0 - kA} between the baseline reads)` : ''}`),
            check('named drops <= received (the rest forwarded or answered)', named <= st.rx, `${named} <= ${st.rx}`),
            await alive(w),
            await outsideCheck(w, 'client still reaches the outside'),
          ],
          figures: [`${k(r.sent)} sent in ${(r.ms / 1000).toFixed(1)} s (${k(r.refused)} refused by the sender's kernel)`,
            `forwarded/answered ${st.rx - named}`, `drops: ${topDrops(dd, 8)}`],
        };
      } finally {
        await rmContainers(w.d, names);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------
// Connection-table exhaustion

function nthAddr(ip: string, last: number): string {
  const p = ip.split('.');
  p[3] = String(last);
  return p.join('.');
}

async function ctProbe(w: World, tag: string, o: { containers: number; extraAddrs: number; flowsPerSource: number; dstPorts: number; portSecurityOff?: boolean },
  judge: (x: { ct: Awaited<ReturnType<typeof ctBySource>>; attacker: number; srcs: string[]; dd: Record<string, number>; reach: Check; sent: number }) => Check[]): Promise<Outcome> {
  const netName = `${PREFIX}${tag}`;
  const names = Array.from({ length: o.containers }, (_, i) => name(`${tag}-a${i + 1}`));
  await createNetwork(w, netName, { portSecurityOff: o.portSecurityOff });
  try {
    const net = await network(w.d, netName);
    const att = await Promise.all(names.map((n) => runEndpoint(w.d, n, netName)));
    const s0 = await stats(w.d);
    const srcsOf = (a: EndpointInfo): string[] => [a.ip, ...Array.from({ length: o.extraAddrs }, (_, i) => nthAddr(a.ip, 201 + i))];
    const results = await Promise.all(att.map((a) => blast(a.container, {
      ...fromContainer(a, net), kind: 'flows', srcIps: srcsOf(a), dstPort: 9, dstPorts: o.dstPorts,
      cycle: srcsOf(a).length * o.flowsPerSource, count: 2 * srcsOf(a).length * o.flowsPerSource, pps: Math.round(30_000 / att.length),
    })));
    // While the attackers' flows are live (UDP: 30 s), another container tries the outside.
    const reach = await outsideCheck(w, 'another container reaches the outside during the attack');
    const ct = await ctBySource(w.d);
    const s1 = await stats(w.d);
    const dd = dropDeltas(s0, s1);
    const srcs = att.flatMap(srcsOf);
    const sent = results.reduce((a, r) => a + r.sent, 0);
    const flows = att.reduce((a, x) => a + srcsOf(x).length * o.flowsPerSource, 0);
    const attackerEntries = srcs.reduce((a, s) => a + (ct.bySrc.get(s) ?? 0), 0);
    const checks = judge({ ct, attacker: attackerEntries, srcs, dd, reach, sent });
    // The probe proves nothing if the flows never reached the table (lost in a full queue).
    // Any conntrack refusal counts (conntrack-full, -source-limit, -port-limit where the build has it), and NAT ports and spoofing.
    const ctDrops = Object.entries(dd).filter(([r]) => /^conntrack-|^nat-ports|^spoofed/.test(r)).reduce((a, [, v]) => a + v, 0);
    checks.unshift(check('the load reached the table (attacker entries + conntrack/NAT/spoofing drops >= 95 % of the flows)',
      attackerEntries + ctDrops >= 0.95 * flows, `${attackerEntries} + ${ctDrops} of ${flows}`));
    checks.push(check('stage-error 0', (dd['stage-error'] ?? 0) === 0, dd['stage-error'] ?? 0));
    checks.push(await alive(w));
    return {
      checks,
      figures: [`${k(flows)} flows (each sent twice, ${k(sent)} frames)`, `table ${ct.total} (attacker ${attackerEntries})`,
        `drops: ${topDrops(Object.fromEntries(Object.entries(dd).filter(([r]) => /conntrack|nat|spoofed/.test(r))))}`],
    };
  } finally {
    await rmContainers(w.d, names);
    await w.d.vsw(['network', 'rm', netName]);
  }
}

const ctPerSource: Probe = {
  name: 'ct-per-source',
  load: () => `20,000 UDP flows from one address (limit ${CT_PER_SOURCE})`,
  run: (w) => ctProbe(w, 'cs', { containers: 1, extraAddrs: 0, flowsPerSource: 20_000, dstPorts: 1 }, ({ ct, srcs, dd, reach }) => {
    const mine = ct.bySrc.get(srcs[0]) ?? 0;
    return [
      check(`entries of the source <= ${CT_PER_SOURCE}`, mine <= CT_PER_SOURCE, mine),
      check('excess counted as conntrack-source-limit', (dd['conntrack-source-limit'] ?? 0) > 0, dd['conntrack-source-limit'] ?? 0),
      reach,
    ];
  }),
};

const ctPerPort: Probe = {
  name: 'ct-per-port',
  load: () => '1 container, 5 source addresses x 16,500 UDP flows to 2 ports, port security off',
  run: (w) => ctProbe(w, 'cp', { containers: 1, extraAddrs: 4, flowsPerSource: 16_500, dstPorts: 2, portSecurityOff: true }, ({ ct, reach }) => [
    check(`table not full (< ${CT_MAX})`, ct.total < CT_MAX, ct.total),
    reach,
  ]),
};

async function drained(w: World): Promise<Check> {
  const t0 = Date.now();
  const n = await waitFor('the table to drain after the network is removed', async () => {
    const c = await ctBySource(w.d);
    return c.total < 1000 ? c.total + 1 : false;
  }, { timeoutMs: 15_000, intervalMs: 500 }).catch(() => 0);
  return check('table drained after `vsw network rm`', n > 0, n > 0 ? `${n - 1} left after ${Date.now() - t0} ms` : 'not within 15 s');
}

const ctTableWide: Probe = {
  name: 'ct-table-wide',
  load: () => `5 containers x 14,000 UDP flows to 2 ports (table ${CT_MAX})`,
  async run(w) {
    const o = await ctProbe(w, 'ct', { containers: 5, extraAddrs: 0, flowsPerSource: 14_000, dstPorts: 2 }, ({ ct, dd }) => [
      check(`table <= ${CT_MAX}`, ct.total <= CT_MAX, ct.total),
      check('excess counted as conntrack-full', (dd['conntrack-full'] ?? 0) > 0, dd['conntrack-full'] ?? 0),
    ]);
    o.checks.push(await drained(w));
    o.checks.push(await outsideCheck(w, 'the outside reachable again'));
    return o;
  },
};

const natPorts: Probe = {
  name: 'nat-ports',
  load: () => `5 containers x 14,000 UDP flows to one address:port (${NAT_PORTS} NAT ports)`,
  async run(w) {
    const o = await ctProbe(w, 'np', { containers: 5, extraAddrs: 0, flowsPerSource: 14_000, dstPorts: 1 }, ({ attacker, dd }) => [
      check(`attackers' entries <= ${NAT_PORTS}`, attacker <= NAT_PORTS, attacker),
      check('excess counted as nat-ports-exhausted', (dd['nat-ports-exhausted'] ?? 0) > 0, dd['nat-ports-exhausted'] ?? 0),
    ]);
    o.checks.push(await drained(w));
    o.checks.push(await outsideCheck(w, 'the outside reachable again'));
    return o;
  },
};

// ---------------------------------------------------------------------------------------
// DNS: a UDP flood and TCP slowloris

const SLOWLORIS = `
import socket, sys, time
gw, n, iv, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def conn():
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((gw, 53)); return [s, 0]
    except Exception:
        return None
socks = [conn() for i in range(n)]
opened = sum(1 for s in socks if s); reopened = 0
print('open', opened, flush=True)
end = time.time() + dur
while time.time() < end:
    for i, c in enumerate(socks):
        ok = False
        if c:
            try:
                c[0].send(b'\\x01' if c[1] == 0 else b'\\x00' if c[1] == 1 else b'a'); c[1] += 1; ok = True
            except Exception:
                pass
        if not ok:
            socks[i] = conn(); reopened += 1 if socks[i] else 0
    time.sleep(iv)
print('done', opened, reopened, flush=True)
`;

const dnsProbe: Probe = {
  name: 'dns-flood-slowloris',
  load: (w) => `${w.ci ? '20k' : '100k'} hostile UDP queries + 4 x 16 slowloris TCP connections (1 byte / ${w.ci ? 3 : 5} s, ${w.ci ? 10 : 40} s)`,
  async run(w) {
    const names = [name('dn-a'), ...[1, 2, 3, 4].map((i) => name(`dn-s${i}`))];
    const loris: Bg[] = [];
    try {
      const eps = await Promise.all(names.map((n) => runEndpoint(w.d, n)));
      const gw = w.bridge.gateway;
      const dur = w.ci ? 10 : 40;
      const iv = w.ci ? 3 : 5;
      const s0 = await stats(w.d);
      for (const e of eps.slice(1)) loris.push(bg('ip', ['netns', 'exec', e.container, 'python3', '-c', SLOWLORIS, gw, '16', String(iv), String(dur)]));
      await waitFor('the slowloris connections to open', () => loris.every((l) => /open \d+/.test(l.stdout()) || l.exited()), { timeoutMs: 20_000 });
      const opened = loris.reduce((a, l) => a + Number(/open (\d+)/.exec(l.stdout())?.[1] ?? 0), 0);
      const flood = blast(eps[0].container, { ...fromContainer(eps[0], w.bridge), dstIp: gw, kind: 'dns', count: w.ci ? 20_000 : 100_000, pps: 10_000,
        names: [w.client.container, ...names] });
      const target = names[1];
      let tcpOk = 0; let udpOk = 0; let tries = 0;
      const end = Date.now() + (dur - 2) * 1000;
      while (Date.now() < end) {
        tries++;
        for (const tcp of [true, false]) {
          const r = await inNs(w.client.container, ['dig', '+short', '+time=2', '+tries=1', tcp ? '+tcp' : '+notcp', `@${gw}`, target], { timeoutMs: 10_000 });
          if (/^\d+\.\d+\.\d+\.\d+$/m.test(r.stdout)) { if (tcp) tcpOk++; else udpOk++; }
        }
        await sleep(1000);
      }
      const fr = await flood;
      for (const l of loris) await l.wait(dur * 1000 + 10_000);
      const reopened = loris.reduce((a, l) => a + Number(/done \d+ (\d+)/.exec(l.stdout())?.[1] ?? 0), 0);
      const s1 = await stats(w.d);
      const dd = dropDeltas(s0, s1);
      return {
        checks: [
          check('dig (UDP) answered >= 95 %', udpOk >= 0.95 * tries, `${udpOk}/${tries}`),
          check('dig +tcp answered >= 95 % during slowloris', tcpOk >= 0.95 * tries, `${tcpOk}/${tries}`),
          check('stage-error 0', (dd['stage-error'] ?? 0) === 0, dd['stage-error'] ?? 0),
          await alive(w),
        ],
        figures: [`${k(fr.sent)} queries in ${(fr.ms / 1000).toFixed(1)} s`, `slowloris ${opened} connections (${reopened} reopened)`,
          `drops: ${topDrops(dd)}`],
      };
    } finally {
      for (const l of loris) await l.stop();
      await rmContainers(w.d, names);
    }
  },
};

// ---------------------------------------------------------------------------------------
// Slow readers

const slowReaders: Probe = {
  name: 'slow-readers',
  load: (w) => `unread /events /trace /capture + vsw events/trace/capture, MAC flood ${w.ci ? 8 : 20} s (after one without them)`,
  async run(w) {
    const { net, v1, v2 } = await getFloodNet(w);
    const names = [name('sr-a')];
    const reqs: http.ClientRequest[] = [];
    const clis: Bg[] = [];
    try {
      const a = await runEndpoint(w.d, names[0], net.name);
      const seconds = w.ci ? 8 : 20;
      // A first flood with nobody streaming grows the daemon to what the flood itself needs
      // (MAC learning, eviction, V8's heap); the growth measured below is the streams' own.
      const warm0 = rssMb(w.d.pid);
      await blast(a.container, { ...fromContainer(a, net), kind: 'macflood', dstMac: v2.mac, count: 1e9, seconds });
      const rss0 = rssMb(w.d.pid);
      const open = (p: string): void => {
        const req = http.request({ socketPath: w.d.sock, method: 'GET', path: p }, (res) => { res.pause(); });
        req.on('error', () => undefined);
        req.end();
        reqs.push(req);
      };
      open('/events');
      open('/trace');
      open(`/capture?port=${encodeURIComponent(a.hostIf)}`);
      for (const args of [['events', '--format', 'json'], ['trace', '--format', 'json'], ['capture', '--port', a.hostIf, '-w', '-']]) {
        clis.push(bg(NODE, [CLI, '--socket', w.d.sock, ...args], { unread: true }));
      }
      await sleep(1000); // let the streams connect before the load starts
      let maxD = rss0;
      const maxC = clis.map(() => 0);
      const sampler = setInterval(() => {
        maxD = Math.max(maxD, rssMb(w.d.pid));
        clis.forEach((c, i) => { maxC[i] = Math.max(maxC[i], rssMb(c.proc.pid ?? -1)); });
      }, 250);
      let sent = 0;
      try {
        const r = await blast(a.container, { ...fromContainer(a, net), kind: 'macflood', dstMac: v2.mac, count: 1e9, seconds });
        sent = r.sent;
      } finally {
        clearInterval(sampler);
      }
      void v1;
      const grow = maxD - rss0;
      const cliMax = Math.max(...maxC);
      const checks = [
        check('daemon RSS growth <= 128 MB (over a flood without streams)', grow <= 128, `${rss0} -> max ${maxD} MB`),
        check('each streaming CLI RSS <= 160 MB', cliMax <= 160, `events ${maxC[0]}, trace ${maxC[1]}, capture ${maxC[2]} MB`),
      ];
      for (const r of reqs) r.destroy();
      for (const c of clis) await c.stop();
      checks.push(await alive(w));
      return { checks, figures: [`${k(sent)} MACs sent during it`, `the same flood without streams first: ${warm0} -> ${rss0} MB`] };
    } finally {
      for (const r of reqs) r.destroy();
      for (const c of clis) await c.stop();
      await rmContainers(w.d, names);
    }
  },
};

// ---------------------------------------------------------------------------------------
// kill -9

const kill9Iperf: Probe = {
  name: 'kill9-iperf3',
  load: (w) => `kill -9 of the daemon ${w.ci ? 1 : 5} x during iperf3 to the outside`,
  async run(w) {
    const kills = w.ci ? 1 : 5;
    const before = new Map((await containers(w.d)).map((c) => [c.name, c.networks.map((e) => e.ip).join(',')]));
    const secs = kills * 4 + 4;
    const iperf = bg('ip', ['netns', 'exec', w.client.container, 'iperf3', '-c', OUTSIDE_IP, '-t', String(secs), '-i', '1', '--forceflush']);
    const backs: number[] = [];
    const restarts: number[] = [];
    let failed = '';
    try {
      await waitFor('iperf3 to report its first interval', () => /sec/.test(iperf.stdout()) || iperf.exited(), { timeoutMs: 15_000 }).catch(() => undefined);
      for (let i = 0; i < kills; i++) {
        await sleep(1500); // traffic flows between kills
        const t0 = Date.now();
        await w.d.kill9();
        try {
          restarts.push(await w.d.start());
        } catch (e) {
          failed = (e as Error).message.split('\n')[0];
          break;
        }
        const ok = await waitFor('traffic back (ping to the outside)', async () => {
          const r = await inNs(w.client.container, ['ping', '-n', '-q', '-c', '1', '-W', '1', OUTSIDE_IP], { timeoutMs: 5_000 });
          return /1 received/.test(r.stdout);
        }, { timeoutMs: 10_000, intervalMs: 100 }).then(() => true, () => false);
        backs.push(ok ? Date.now() - t0 : Infinity);
      }
    } finally {
      await iperf.wait(secs * 1000 + 15_000);
    }
    const after = new Map((await containers(w.d).catch(() => [])).map((c) => [c.name, c.networks.map((e) => e.ip).join(',')]));
    const same = [...before].filter(([n, ip]) => after.get(n) === ip).length;
    const m = /([\d.]+) ([MG])bits\/sec.*receiver/.exec(iperf.stdout());
    return {
      checks: [
        check(`daemon restarted ${kills}/${kills}`, restarts.length === kills && failed === '', failed || `${restarts.length}/${kills}, API in max ${Math.max(0, ...restarts)} ms`),
        check('traffic back <= 5 s after each kill', backs.length === kills && backs.every((b) => b <= 5000),
          backs.map((b) => (Number.isFinite(b) ? `${b} ms` : 'never')).join(', ')),
        check('every container kept its address', same === before.size, `${same}/${before.size}`),
        await alive(w),
      ],
      figures: [`iperf3 ${m ? `${m[1]} ${m[2]}bit/s` : `exit ${iperf.exited() ? 'done' : 'running'}`}`],
    };
  },
};

const kill9RunD: Probe = {
  name: 'kill9-run-d',
  load: (w) => `kill -9 during ${w.ci ? 1 : 5} bursts of ${w.ci ? 10 : 20} parallel \`vsw run -d\``,
  async run(w) {
    const trials = w.ci ? 1 : 5;
    const per = w.ci ? 10 : 20;
    let halfNs = 0; let noNs = 0; let stray = 0; let notReusable = 0; let etcLeft = 0;
    const notes: string[] = [];
    const all: string[] = [];
    let made = 0;
    for (let t = 0; t < trials; t++) {
      const names = Array.from({ length: per }, (_, i) => name(`rd${t}-${i}`));
      all.push(...names);
      const runs = names.map((n) => w.d.vsw(['run', '-d', '--name', n, '--', 'sleep', '300'], 30_000));
      // The kill lands in the middle of the burst: once some of its namespaces exist (more
      // in each trial), while the others are being made.
      const atLeast = 1 + Math.floor(((t + 1) * per) / (trials + 2));
      await waitFor(`${atLeast} namespaces of the burst`, () => names.filter((n) => netnsExists(n)).length >= atLeast,
        { timeoutMs: 20_000, intervalMs: 20 }).catch(() => undefined);
      await w.d.kill9();
      await Promise.all(runs);
      await w.d.start();
      const ps = await containers(w.d);
      made += names.filter((n) => ps.some((c) => c.name === n)).length;
      const hostIfs = new Set(ps.flatMap((c) => c.networks.map((e) => e.hostIf)));
      for (const n of names) {
        const rec = ps.some((c) => c.name === n);
        if (netnsExists(n) && !rec) { halfNs++; notes.push(`${n}: namespace without record`); }
        if (rec && !netnsExists(n)) { noNs++; notes.push(`${n}: record without namespace`); }
      }
      const veths = JSON.parse((await sh('ip', ['-n', HOST, '-j', 'link', 'show', 'type', 'veth'])).stdout || '[]') as { ifname: string }[];
      const strays = veths.map((l) => l.ifname).filter((n) => n !== 'up0' && !hostIfs.has(n));
      stray += strays.length;
      if (strays.length > 0) notes.push(`stray host veths: ${strays.join(' ')}`);
      // Every name can be removed and used again.
      for (let i = 0; i < names.length; i += 5) {
        await Promise.all(names.slice(i, i + 5).map(async (n) => {
          await w.d.vsw(['rm', '-f', n]);
          const r = await w.d.vsw(['run', '-d', '--name', n, '--', 'sleep', '300']);
          if (r.code !== 0) { notReusable++; notes.push(`${n}: ${r.stderr.trim().split('\n').pop()}`); }
        }));
      }
      await rmContainers(w.d, names);
    }
    const leftNs = all.filter((n) => netnsExists(n)).length;
    for (const n of all) if (fs.existsSync(`/etc/netns/${n}`)) etcLeft++;
    const veths = JSON.parse((await sh('ip', ['-n', HOST, '-j', 'link', 'show', 'type', 'veth'])).stdout || '[]') as { ifname: string }[];
    const hostIfs = new Set((await containers(w.d)).flatMap((c) => c.networks.map((e) => e.hostIf)));
    const strayEnd = veths.map((l) => l.ifname).filter((n) => n !== 'up0' && !hostIfs.has(n)).length;
    return {
      checks: [
        check('no namespace without its record after restart', halfNs === 0, halfNs),
        check('no record without its namespace', noNs === 0, noNs),
        check('no stray host veth after restart', stray === 0, stray),
        check('every name reusable (rm -f, then run -d)', notReusable === 0, `${all.length - notReusable}/${all.length}`),
        check('after rm: no namespace, /etc/netns entry or veth left', leftNs + etcLeft + strayEnd === 0, `${leftNs} ns, ${etcLeft} /etc/netns, ${strayEnd} veths`),
        await outsideCheck(w, 'traffic back (client reaches the outside)'),
      ],
      figures: [`${made}/${all.length} in vsw ps after the restarts`, ...notes.slice(0, 4)],
    };
  },
};

export const PROBES: Probe[] = [
  apiAbuse, hostileNames, macFlood(1), macFlood(5), macFloodSpoofed, hostileFrames('container'), hostileFrames('uplink'),
  ctPerSource, ctPerPort, ctTableWide, natPorts, dnsProbe, slowReaders, kill9Iperf, kill9RunD,
];
