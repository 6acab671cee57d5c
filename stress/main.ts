// `npm run stress`: the stress and fault suite of issue 11. It starts a `vsw daemon` in a
// namespace of its own with an uplink to an "outside" namespace, runs every probe of
// stress/probes.ts against it in turn, and prints ONE table: probe, load, whether it held
// (and, if not, which checks failed), the checks with the values seen, the figures, and the
// daemon's RSS and open file descriptors before and after the probe.
//
//   node dist/stress/main.js [--ci] [--format markdown|json] [--only NAME,NAME...] [--list]
//
// --ci: smaller loads (100k frames, 1 kill, shorter floods), under 3 minutes; the full
// suite stays under 15. Exit code 0 only when every probe held; 1 when one did not; 2 when
// the suite itself could not run (not root, not built). Progress goes to stderr.
//
// All traffic stays in namespaces named vsNNNN-* (NNNN = pid % 10000) that this process
// makes; they are removed at the end, on failure and on SIGINT/SIGTERM (lib.cleanupAll).

import * as fs from 'fs';
import { armCleanup, BLAST, CLI, cleanupAll, fdCount, leftovers, PREFIX, rssMb, waitFor } from './lib';
import { PROBES, type Check } from './probes';
import { setupWorld, type World } from './topo';

export interface ProbeRow {
  probe: string;
  load: string;
  held: boolean;
  /** The failing checks' names (empty when it held). */
  failed: string[];
  checks: Check[];
  figures: string[];
  rssMb: [number, number];
  fds: [number, number];
  seconds: number;
  error?: string;
}

export interface Report {
  ci: boolean;
  held: boolean;
  seconds: number;
  features: World['features'];
  probes: ProbeRow[];
  leftovers: string[];
}

interface Args { ci: boolean; format: 'markdown' | 'json'; only?: string[]; list: boolean }

function parseArgs(argv: string[]): Args {
  const a: Args = { ci: false, format: 'markdown', list: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '--ci') a.ci = true;
    else if (x === '--list') a.list = true;
    else if (x === '--format') {
      const f = argv[++i];
      if (f !== 'json' && f !== 'markdown' && f !== 'table') throw new Error(`--format: json or markdown (got ${f})`);
      a.format = f === 'json' ? 'json' : 'markdown';
    } else if (x === '--only') a.only = (argv[++i] ?? '').split(',').filter((s) => s !== '');
    else if (x === '-h' || x === '--help') {
      process.stdout.write('usage: stress [--ci] [--format markdown|json] [--only PROBE,...] [--list]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${x}`);
  }
  return a;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The report as one markdown table. */
export function markdown(r: Report): string {
  const lines = [
    '| probe | load | held | checks (value seen) | figures | daemon RSS MB | fds |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const p of r.probes) {
    const held = p.held ? 'yes' : `**NO**: ${p.error ? `error: ${p.error}` : p.failed.join('; ')}`;
    const checks = p.checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.what}: ${c.value}`).join('<br>');
    lines.push(`| ${cell(p.probe)} | ${cell(p.load)} | ${cell(held)} | ${cell(checks)} | ${cell(p.figures.join('; '))} | ` +
      `${p.rssMb[0]} → ${p.rssMb[1]} | ${p.fds[0]} → ${p.fds[1]} |`);
  }
  const n = r.probes.filter((p) => p.held).length;
  lines.push('', `${n} of ${r.probes.length} probes held${r.ci ? ' (CI form)' : ''}, ${r.seconds.toFixed(0)} s` +
    `${r.leftovers.length > 0 ? `; LEFT BEHIND: ${r.leftovers.join(', ')}` : ''}.`);
  return lines.join('\n');
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, rej) => { t = setTimeout(() => rej(new Error(`${what} timed out after ${ms / 1000} s`)), ms); })])
    .finally(() => clearTimeout(t));
}

export async function runSuite(a: { ci: boolean; only?: string[] }, progress: (s: string) => void): Promise<Report> {
  const t0 = Date.now();
  const el = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const probes = PROBES.filter((p) => !a.only || a.only.includes(p.name));
  const rows: ProbeRow[] = [];
  armCleanup();
  let w: World | undefined;
  try {
    progress(`stress: setting up (namespaces ${PREFIX}-*)`);
    w = await setupWorld(a.ci);
    progress(`stress: daemon pid ${w.d.pid}, port security ${w.features.portSecurity ? 'present' : 'absent'} (${el()})`);
    for (const [i, p] of probes.entries()) {
      const world = w;
      progress(`stress: [${i + 1}/${probes.length}] ${p.name}: ${p.load(world)} (elapsed ${el()})`);
      const s0 = Date.now();
      const before: [number, number] = [rssMb(world.d.pid), fdCount(world.d.pid)];
      let row: ProbeRow;
      try {
        const o = await withTimeout(p.run(world), (a.ci ? 60 : 180) * 1000, p.name);
        const failed = o.checks.filter((c) => !c.ok).map((c) => c.what);
        row = { probe: p.name, load: p.load(world), held: failed.length === 0, failed, checks: o.checks, figures: o.figures,
          rssMb: [before[0], rssMb(world.d.pid)], fds: [before[1], fdCount(world.d.pid)], seconds: (Date.now() - s0) / 1000 };
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0].slice(0, 300);
        row = { probe: p.name, load: p.load(world), held: false, failed: ['error'], checks: [], figures: [], error: msg,
          rssMb: [before[0], rssMb(world.d.pid)], fds: [before[1], fdCount(world.d.pid)], seconds: (Date.now() - s0) / 1000 };
        // A probe that left the daemon dead must not take the rest down with it.
        if (!world.d.running()) {
          progress(`stress: the daemon is gone; starting it again\n${world.d.log().slice(-1500)}`);
          await world.d.start().catch((e2: Error) => progress(`stress: restart failed: ${e2.message.split('\n')[0]}`));
        }
      }
      // Connections of the probe's clients close a moment after it: the "after" figures are
      // read once the descriptor count has come back near where it was (at most 5 s).
      const settled = await waitFor('the daemon fds to settle', () => fdCount(world.d.pid) <= before[1] + 8, { timeoutMs: 5_000, intervalMs: 100 })
        .then(() => true, () => false);
      row.rssMb[1] = rssMb(world.d.pid);
      row.fds[1] = fdCount(world.d.pid);
      if (!settled) row.figures.push('fds still above the start after 5 s');
      rows.push(row);
      progress(`stress: [${i + 1}/${probes.length}] ${p.name}: ${row.held ? 'held' : `NOT HELD (${row.error ?? row.failed.join('; ')})`} in ${row.seconds.toFixed(1)} s`);
    }
  } finally {
    if (w) {
      for (const s of w.servers) await s.stop();
      await w.d.stop().catch(() => undefined);
    }
    cleanupAll();
  }
  const left = leftovers();
  return {
    ci: a.ci, held: rows.length === probes.length && rows.every((r) => r.held) && left.length === 0,
    seconds: (Date.now() - t0) / 1000, features: w?.features ?? { portSecurity: false }, probes: rows, leftovers: left,
  };
}

async function main(): Promise<number> {
  let a: Args;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`stress: ${(e as Error).message}\n`);
    return 2;
  }
  if (a.list) {
    for (const p of PROBES) process.stdout.write(`${p.name}\n`);
    return 0;
  }
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    process.stderr.write('stress: needs root (it creates network namespaces, veths and a vsw daemon)\n');
    return 2;
  }
  for (const f of [CLI, BLAST]) {
    if (!fs.existsSync(f)) {
      process.stderr.write(`stress: ${f} is missing: run npm run build first\n`);
      return 2;
    }
  }
  let report: Report;
  try {
    report = await runSuite(a, (s) => process.stderr.write(`${s}\n`));
  } catch (e) {
    process.stderr.write(`stress: could not run: ${(e as Error).stack ?? e}\n`);
    return 2;
  }
  process.stdout.write(a.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : `${markdown(report)}\n`);
  return report.held ? 0 : 1;
}

if (require.main === module) {
  void main().then((code) => { process.exitCode = code; });
}
