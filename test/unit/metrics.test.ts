// control/metrics.ts over fakes: the exact series and values a scrape gives, the text
// checked by a real parser (parse-prometheus-text-format) and by a strict line-by-line
// check of the text format 0.0.4, the --metrics address parser, and the HTTP server on
// 127.0.0.1 (an ephemeral port; no root needed).

import * as http from 'http';
import * as net from 'net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildMetricsRegistry, parseMetricsAddr, startMetricsServer, type MetricsEngine, type MetricsHost,
  type MetricsServer,
} from '../../control/metrics';
import { DROP_REASONS } from '../../dataplane/drops';
import { STAGE_NAMES } from '../../dataplane/stages/order';
import type { FdbCounters } from '../../dataplane/tables/fdb';
import type { PortStatsInfo } from '../../control/types';
import { FakeEngine } from '../fixtures/fake-engine';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => {
  name: string; help: string; type: string; metrics: { value?: string; labels?: Record<string, string> }[];
}[];

// ---------------------------------------------------------------------------------------
// A strict check of the text exposition format 0.0.4 (what Prometheus' own parser
// enforces): HELP/TYPE at most once per family and before its samples, samples of a family
// contiguous and named after it, label syntax and escapes, float values, no duplicate
// series, counters not negative; stricter in one point: every family must have a TYPE
// (ours all do). Returns the problems found (none: []).

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const LVALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
// Values are what Go's strconv.ParseFloat takes (less hex and '_', as Prometheus' parser):
// decimal floats, and Inf/Infinity/NaN in any case (prom-client writes 'Nan').
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity)|nan)$/i;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL}=${LVALUE})(?:,${LABEL}=${LVALUE})*,?)?\\})? (\\S+)(?: (-?\\d+))?$`);
const HELP = new RegExp(`^# HELP (${NAME})(?: (.*))?$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

function checkExposition(text: string): string[] {
  const problems: string[] = [];
  if (!text.endsWith('\n')) problems.push('the text does not end with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const done = new Set<string>();   // families whose samples are over
  const series = new Set<string>();
  let family: string | undefined;   // family of the previous sample
  const familyOf = (name: string): string => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && ['histogram', 'summary'].includes(types.get(base) ?? '')) {
        if (suffix === '_bucket' && types.get(base) !== 'histogram') continue;
        return base;
      }
    }
    return name;
  };
  text.split('\n').slice(0, -1).forEach((line, i) => {
    const where = `line ${i + 1} '${line}'`;
    if (line.startsWith('#')) {
      const h = HELP.exec(line);
      const t = TYPE.exec(line);
      const name = h?.[1] ?? t?.[1];
      if (!h && !t) { if (/^# (HELP|TYPE)/.test(line)) problems.push(`${where}: malformed`); return; }
      if (done.has(name!) || family === name) problems.push(`${where}: after samples of ${name}`);
      if (h) { if (helps.has(name!)) problems.push(`${where}: second HELP`); helps.add(name!); }
      if (t) { if (types.has(name!)) problems.push(`${where}: second TYPE`); types.set(name!, t[2]); }
      return;
    }
    if (line.trim() === '') return;
    const m = SAMPLE.exec(line);
    if (!m) { problems.push(`${where}: not a valid sample line`); return; }
    if (!FLOAT.test(m[3])) { problems.push(`${where}: '${m[3]}' is not a float`); return; }
    const fam = familyOf(m[1]);
    if (!types.has(fam)) problems.push(`${where}: no TYPE for ${fam}`);
    if (fam !== family) {
      if (family !== undefined) done.add(family);
      if (done.has(fam)) problems.push(`${where}: samples of ${fam} are not contiguous`);
      family = fam;
    }
    const labels = (m[2] ?? '').split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/).filter((x) => x !== '').sort();
    const names = labels.map((l) => l.slice(0, l.indexOf('=')));
    if (new Set(names).size !== names.length) problems.push(`${where}: a label twice`);
    const key = `${m[1]}{${labels.join(',')}}`;
    if (series.has(key)) problems.push(`${where}: duplicate series`);
    series.add(key);
    if (types.get(fam) === 'counter' && !(Number(m[3]) >= 0)) problems.push(`${where}: a counter must be >= 0`);
    if (types.get(fam) === 'histogram' && m[1].endsWith('_bucket') && !names.includes('le')) problems.push(`${where}: bucket without le`);
  });
  return problems;
}

// ---------------------------------------------------------------------------------------
// Fakes

class FakeHost implements MetricsHost {
  portList: { id: number; kind: 'afpacket' | 'tap' }[] = [];
  fdb: FdbCounters = { entries: 0, learned: 0, moved: 0, evicted: 0, aged: 0, failed: 0 };
  stages = STAGE_NAMES.map((stage) => ({ stage: stage as string, ended: 0 }));
  workers = [
    { worker: 0, ports: 0, iterations: 0, batches: 0, frames: 0, busyMs: 0, spinMs: 0 },
    { worker: 1, ports: 0, iterations: 0, batches: 0, frames: 0, busyMs: 0, spinMs: 0 },
  ];
  ports() { return this.portList; }
  fdbCounters() { return { ...this.fdb }; }
  stageCounters() { return this.stages.map((s) => ({ ...s })); }
  workerCounters() { return this.workers.map((w) => ({ ...w })); }
}

function port(p: Partial<PortStatsInfo> & { id: number; name: string }): PortStatsInfo {
  return { network: 'bridge', rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: {}, ...p };
}

function setup() {
  const fe = new FakeEngine();
  const host = new FakeHost();
  host.portList = [{ id: 0, kind: 'tap' }, { id: 1, kind: 'afpacket' }];
  fe.portStats = [
    port({ id: 0, name: 'vsw0', txPackets: 7, txBytes: 700 }),
    port({ id: 1, name: 'vswab', container: 'c1', rxPackets: 5, rxBytes: 490, txPackets: 3, txBytes: 294, drops: { reflected: 2, 'no-egress': 1 } }),
  ];
  const engine: MetricsEngine = {
    host,
    stats: () => fe.stats(),
    listNetworks: () => fe.listNetworks(),
    listContainers: () => fe.listContainers(),
  };
  return { fe, host, engine };
}

/** The sample lines (no comments) of a text. */
const samples = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

// ---------------------------------------------------------------------------------------

describe('buildMetricsRegistry', () => {
  it("reports the router's counters: neighbours, connections, DNS queries by result", async () => {
    const { engine } = setup();
    const withL3: MetricsEngine = {
      ...engine,
      l3Counters: () => ({
        neigh: { entries: 4, learned: 6, changed: 1, solicited: 3, failed: 0, evicted: 0, unresolved: 2, refused: 5 },
        conntrack: { entries: 7, created: 20, expired: 12, removed: 1, full: 5, noPort: 2, sourceLimit: 0, portLimit: 3 },
        dns: { local: 30, forwarded: 4, formerr: 2 },
        puntLost: 9,
      }),
    };
    const lines = samples(await buildMetricsRegistry(withL3, { defaultMetrics: false }).scrape());
    for (const l of [
      'vsw_neigh_entries 4', 'vsw_neigh_learned_total 6', 'vsw_neigh_changed_total 1', 'vsw_neigh_solicited_total 3',
      'vsw_neigh_unresolved_total 2', 'vsw_neigh_refused_total 5', 'vsw_conntrack_entries 7', 'vsw_conntrack_created_total 20',
      'vsw_conntrack_expired_total 12', 'vsw_conntrack_removed_total 1',
      'vsw_conntrack_refused_total{reason="table-full"} 5', 'vsw_conntrack_refused_total{reason="no-port"} 2',
      'vsw_conntrack_refused_total{reason="source-limit"} 0', 'vsw_conntrack_refused_total{reason="port-limit"} 3',
      'vsw_dns_queries_total{result="local"} 30',
      'vsw_dns_queries_total{result="forwarded"} 4', 'vsw_dns_queries_total{result="formerr"} 2', 'vsw_dns_punt_lost_total 9',
    ]) expect(lines).toContain(l);
  });

  it('gives the exact series and values of the counters, read at scrape time', async () => {
    const { fe, host, engine } = setup();
    await fe.createContainer({ name: 'c1' });
    await fe.createNetwork({ name: 'back', subnet: '10.1.0.0/24' });
    host.fdb = { entries: 3, learned: 9, moved: 1, evicted: 2, aged: 4, failed: 5 };
    host.stages = [{ stage: 'parse', ended: 1 }, { stage: 'ingress', ended: 2 }, { stage: 'learn', ended: 0 }, { stage: 'gateway', ended: 3 }, { stage: 'forward', ended: 12 }];
    host.workers[0] = { worker: 0, ports: 2, iterations: 100, batches: 10, frames: 15, busyMs: 1500, spinMs: 250 };
    host.workers[1] = { worker: 1, ports: 1, iterations: 50, batches: 4, frames: 6, busyMs: 25, spinMs: 0 };

    const m = buildMetricsRegistry(engine, { defaultMetrics: false });
    const text = await m.scrape();
    const lines = samples(text);
    const expected = [
      'vsw_port_rx_packets_total{port="vsw0",network="bridge",container="",kind="tap"} 0',
      'vsw_port_rx_packets_total{port="vswab",network="bridge",container="c1",kind="afpacket"} 5',
      'vsw_port_rx_bytes_total{port="vswab",network="bridge",container="c1",kind="afpacket"} 490',
      'vsw_port_tx_packets_total{port="vsw0",network="bridge",container="",kind="tap"} 7',
      'vsw_port_tx_packets_total{port="vswab",network="bridge",container="c1",kind="afpacket"} 3',
      'vsw_port_tx_bytes_total{port="vsw0",network="bridge",container="",kind="tap"} 700',
      'vsw_port_tx_bytes_total{port="vswab",network="bridge",container="c1",kind="afpacket"} 294',
      'vsw_port_drops_total{port="vswab",network="bridge",container="c1",kind="afpacket",reason="reflected"} 2',
      'vsw_port_drops_total{port="vswab",network="bridge",container="c1",kind="afpacket",reason="no-egress"} 1',
      'vsw_port_drops_total{port="vswab",network="bridge",container="c1",kind="afpacket",reason="runt"} 0',
      'vsw_stage_ended_total{stage="parse"} 1',
      'vsw_stage_ended_total{stage="ingress"} 2',
      'vsw_stage_ended_total{stage="learn"} 0',
      'vsw_stage_ended_total{stage="forward"} 12',
      'vsw_fdb_entries 3',
      'vsw_fdb_learned_total 9',
      'vsw_fdb_moved_total 1',
      'vsw_fdb_evicted_total 2',
      'vsw_fdb_aged_total 4',
      'vsw_fdb_learn_failed_total 5',
      'vsw_worker_busy_seconds_total{worker="0"} 1.5',
      'vsw_worker_busy_seconds_total{worker="1"} 0.025',
      'vsw_worker_busy_poll_seconds_total{worker="0"} 0.25',
      'vsw_worker_busy_poll_seconds_total{worker="1"} 0',
      'vsw_worker_frames_total{worker="0"} 15',
      'vsw_worker_batches_total{worker="1"} 4',
      'vsw_worker_poll_iterations_total{worker="0"} 100',
      'vsw_worker_ports{worker="0"} 2',
      'vsw_worker_ports{worker="1"} 1',
      'vsw_networks 2',
      'vsw_containers 1',
    ];
    for (const l of expected) expect(lines).toContain(l);
    expect(text).toContain('# TYPE vsw_port_rx_packets_total counter');
    expect(text).toContain('# TYPE vsw_fdb_entries gauge');
    expect(text).toContain('# TYPE vsw_worker_ports gauge');
    expect(text).toContain('# TYPE vsw_networks gauge');
    expect(text).toContain('# TYPE vsw_worker_busy_seconds_total counter');

    // Exactly these families, and nothing else without default metrics.
    const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => `${x[1]} ${x[2]}`);
    expect(families).toEqual([
      'vsw_port_rx_packets_total counter', 'vsw_port_rx_bytes_total counter', 'vsw_port_tx_packets_total counter',
      'vsw_port_tx_bytes_total counter', 'vsw_port_drops_total counter', 'vsw_stage_ended_total counter',
      'vsw_fdb_entries gauge', 'vsw_fdb_learned_total counter', 'vsw_fdb_moved_total counter',
      'vsw_fdb_evicted_total counter', 'vsw_fdb_aged_total counter', 'vsw_fdb_learn_failed_total counter',
      'vsw_worker_busy_seconds_total counter', 'vsw_worker_busy_poll_seconds_total counter', 'vsw_worker_frames_total counter', 'vsw_worker_batches_total counter',
      'vsw_worker_poll_iterations_total counter', 'vsw_worker_ports gauge',
      'vsw_neigh_entries gauge', 'vsw_neigh_learned_total counter', 'vsw_neigh_changed_total counter',
      'vsw_neigh_solicited_total counter', 'vsw_neigh_unresolved_total counter', 'vsw_neigh_refused_total counter', 'vsw_conntrack_entries gauge',
      'vsw_conntrack_created_total counter', 'vsw_conntrack_expired_total counter', 'vsw_conntrack_removed_total counter',
      'vsw_conntrack_refused_total counter', 'vsw_dns_queries_total counter', 'vsw_dns_punt_lost_total counter',
      'vsw_dns_upstream_total counter',
      'vsw_capture_lost_total counter', 'vsw_stream_skipped_total counter',
      'vsw_vxlan_rx_packets_total counter', 'vsw_vxlan_rx_bytes_total counter', 'vsw_vxlan_tx_packets_total counter',
      'vsw_vxlan_tx_bytes_total counter', 'vsw_vxlan_peers gauge', 'vsw_vxlan_remote_macs gauge',
      'vsw_networks gauge', 'vsw_containers gauge',
    ]);
    // No router in this engine: its families report nothing but prom-client's zeros.
    expect(lines.filter((l) => /^vsw_(neigh|conntrack|dns)_/.test(l) && !l.endsWith(' 0'))).toEqual([]);
    expect(lines.filter((l) => /^vsw_(conntrack_refused|dns_queries)_total\{/.test(l))).toEqual([]);
    // Per-port families: one series per port; drops: one per port and reason.
    expect(lines.filter((l) => l.startsWith('vsw_port_rx_packets_total{'))).toHaveLength(2);
    expect(lines.filter((l) => l.startsWith('vsw_port_drops_total{'))).toHaveLength(2 * DROP_REASONS.length);
    expect(lines.filter((l) => l.startsWith('vsw_stage_ended_total{'))).toHaveLength(STAGE_NAMES.length);
  });

  it('has a series for every drop reason of every port, zero included', async () => {
    const { engine } = setup();
    const lines = samples(await buildMetricsRegistry(engine, { defaultMetrics: false }).scrape());
    for (const p of [{ port: 'vsw0', container: '', kind: 'tap' }, { port: 'vswab', container: 'c1', kind: 'afpacket' }]) {
      for (const reason of DROP_REASONS) {
        expect(lines.some((l) => l.startsWith(
          `vsw_port_drops_total{port="${p.port}",network="bridge",container="${p.container}",kind="${p.kind}",reason="${reason}"} `,
        ))).toBe(true);
      }
    }
  });

  it('reads the current values at each scrape, once per scrape, and forgets removed ports', async () => {
    const { fe, host, engine } = setup();
    const m = buildMetricsRegistry(engine, { defaultMetrics: false });
    await m.scrape();
    const statsCalls = (): number => fe.calls.filter((c) => c[0] === 'stats').length;
    expect(statsCalls()).toBe(1);
    fe.portStats = [port({ id: 1, name: 'vswab', container: 'c1', rxPackets: 6, drops: { runt: 3 } })];
    host.portList = [{ id: 1, kind: 'afpacket' }];
    host.fdb.entries = 2;
    const text = await m.scrape();
    expect(statsCalls()).toBe(2);
    const lines = samples(text);
    expect(lines).toContain('vsw_port_rx_packets_total{port="vswab",network="bridge",container="c1",kind="afpacket"} 6');
    expect(lines).toContain('vsw_port_drops_total{port="vswab",network="bridge",container="c1",kind="afpacket",reason="runt"} 3');
    expect(lines).toContain('vsw_fdb_entries 2');
    expect(text).not.toContain('port="vsw0"');
  });

  it('uses a registry of its own, never the global default one', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const prom = require('prom-client') as typeof import('prom-client');
    const a = buildMetricsRegistry(setup().engine);
    const b = buildMetricsRegistry(setup().engine); // same names again: would throw in one registry
    expect(a.registry).not.toBe(prom.register);
    expect(prom.register.getMetricsAsArray()).toHaveLength(0);
    expect(a.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await b.scrape()).toContain('vsw_fdb_entries 0');
  });

  it('includes prom-client\'s default process metrics with the vsw_ prefix', async () => {
    const text = await buildMetricsRegistry(setup().engine).scrape();
    expect(text).toMatch(/^# TYPE vsw_process_cpu_user_seconds_total counter$/m);
    expect(text).toMatch(/^vsw_process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^vsw_nodejs_eventloop_lag_seconds /m);
    expect(text).not.toMatch(/^process_cpu/m);
  });

  it('gives text that a real parser accepts and that passes a strict format check', async () => {
    const { fe, engine } = setup();
    await fe.createContainer({ name: 'c1' });
    // A label value that needs escaping must come out escaped.
    fe.portStats.push(port({ id: 2, name: 'odd', network: 'we"ird\\net', rxPackets: 1 }));
    const text = await buildMetricsRegistry(engine).scrape();
    expect(checkExposition(text)).toEqual([]);
    const parsed = parsePrometheusTextFormat(text);
    const byName = new Map(parsed.map((f) => [f.name, f]));
    const rx = byName.get('vsw_port_rx_packets_total')!;
    expect(rx.type).toBe('COUNTER');
    expect(rx.metrics).toContainEqual({ value: '5', labels: { port: 'vswab', network: 'bridge', container: 'c1', kind: 'afpacket' } });
    expect(rx.metrics.find((x) => x.labels?.port === 'odd')?.labels?.network).toBe('we"ird\\net');
    expect(byName.get('vsw_port_drops_total')!.metrics).toHaveLength(3 * DROP_REASONS.length);
    expect(byName.get('vsw_fdb_entries')!.type).toBe('GAUGE');
    expect(byName.get('vsw_containers')!.metrics).toEqual([{ value: '1' }]);
    for (const f of parsed) {
      if (f.type === 'COUNTER') expect(f.name).toMatch(/_total$/);
      expect(f.help).not.toBe('');
    }
  });

  it('the strict check catches what it is meant to', () => {
    expect(checkExposition('# TYPE a_total counter\na_total 1\n')).toEqual([]);
    expect(checkExposition('a_total 1\n')).not.toEqual([]);                                  // no TYPE
    expect(checkExposition('# TYPE a gauge\na{x=1} 1\n')).not.toEqual([]);                   // unquoted
    expect(checkExposition('# TYPE a gauge\na five\n')).not.toEqual([]);                     // not a float
    expect(checkExposition('# TYPE a gauge\na 0x1p3\n')).not.toEqual([]);                   // hex float
    expect(checkExposition('# TYPE a gauge\na Nan\nb_total +Inf\n# TYPE b_total counter\n')).not.toEqual([]); // TYPE after samples
    expect(checkExposition('# TYPE a gauge\na Nan\n# TYPE b gauge\nb -Inf\n# TYPE c gauge\nc 1.5e-3\n')).toEqual([]);
    expect(checkExposition('# TYPE a gauge\na 1\na 2\n')).not.toEqual([]);                   // duplicate
    expect(checkExposition('# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x="1"} 1\n')).not.toEqual([]); // interleaved
    expect(checkExposition('# TYPE a counter\na -1\n')).not.toEqual([]);                     // negative counter
    expect(checkExposition('# TYPE a gauge\na 1')).not.toEqual([]);                          // no final newline
  });
});

describe('parseMetricsAddr', () => {
  it('takes HOST:PORT and :PORT', () => {
    expect(parseMetricsAddr('127.0.0.1:9109')).toEqual({ host: '127.0.0.1', port: 9109, text: '127.0.0.1:9109' });
    expect(parseMetricsAddr(':9109')).toEqual({ host: '0.0.0.0', port: 9109, text: '0.0.0.0:9109' });
    expect(parseMetricsAddr('localhost:80')).toMatchObject({ host: 'localhost', port: 80 });
    expect(parseMetricsAddr('[::1]:9109')).toEqual({ host: '::1', port: 9109, text: '[::1]:9109' });
  });

  it.each([
    ['', /HOST:PORT/], ['9109', /HOST:PORT/], ['127.0.0.1', /HOST:PORT/], [':', /port/], [':0', /port/],
    [':65536', /port/], [':http', /port/], ['127.0.0.1:-1', /port/], ['300.1.1.1:9109', /IPv4/],
    ['1.2.3:9109', /IPv4/], ['::1:9109', /brackets/], ['[zz]:9109', /IPv6/], ['bad_host:9109', /host name/],
    ['a b:1', /host name/],
  ])('refuses %j', (addr, why) => {
    expect(() => parseMetricsAddr(addr)).toThrow(why);
  });
});

describe('startMetricsServer (127.0.0.1, ephemeral port)', () => {
  const servers: MetricsServer[] = [];
  afterEach(async () => { while (servers.length) await servers.pop()!.close(); });

  const get = (port: number, p: string, method = 'GET') => new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });

  it('serves GET /metrics as text/plain version 0.0.4, 404 elsewhere, 405 for other methods', async () => {
    const s = await startMetricsServer({ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }, buildMetricsRegistry(setup().engine));
    servers.push(s);
    expect(s.url).toBe(`http://127.0.0.1:${s.address.port}/metrics`);
    const ok = await get(s.address.port, '/metrics');
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(ok.body).toContain('vsw_port_rx_packets_total{port="vswab",network="bridge",container="c1",kind="afpacket"} 5');
    expect(checkExposition(ok.body)).toEqual([]);
    expect((await get(s.address.port, '/metrics?x=1')).status).toBe(200);
    const head = await get(s.address.port, '/metrics', 'HEAD');
    expect([head.status, head.body]).toEqual([200, '']);
    expect((await get(s.address.port, '/')).status).toBe(404);
    expect((await get(s.address.port, '/metricsx')).status).toBe(404);
    expect((await get(s.address.port, '/metrics', 'POST')).status).toBe(405);
  });

  it('answers 500 with the reason when collecting fails', async () => {
    const { engine } = setup();
    const broken: MetricsEngine = { ...engine, stats: () => { throw new Error('boom'); } };
    const s = await startMetricsServer({ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }, buildMetricsRegistry(broken));
    servers.push(s);
    const r = await get(s.address.port, '/metrics');
    expect(r.status).toBe(500);
    expect(r.body).toContain('boom');
  });

  it('refuses an address in use with a clear message', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(startMetricsServer(`127.0.0.1:${port}`, buildMetricsRegistry(setup().engine)))
        .rejects.toThrow(`--metrics 127.0.0.1:${port}: cannot listen: the address is already in use`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('refuses an address that is not local', async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails, nothing is sent.
    await expect(startMetricsServer('192.0.2.1:9109', buildMetricsRegistry(setup().engine)))
      .rejects.toThrow(/192\.0\.2\.1:9109: cannot listen: that address is not one of this network namespace's/);
  });
});
