// The stress and fault suite's CI form (issue 11; stress/main.ts): `node dist/stress/main.js
// --ci --format json` runs every probe with smaller loads in namespaces of its own (vsNNNN-*,
// removed by the suite itself, also on failure) and reports per probe whether it held. This
// test prints the suite's table and fails naming each probe that did not hold, with its
// failing checks and the values seen.

import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureBuilt, isRoot, NEEDS_ROOT, NODE, ROOT, sh } from '../fixtures/harness';
import { markdown, type Report } from '../../stress/main';

const MAIN = path.join(ROOT, 'dist', 'stress', 'main.js');

/** dist/stress/ is older than stress/*.ts (harness.ensureBuilt looks at the daemon's sources only). */
function stressStale(): boolean {
  const dir = path.join(ROOT, 'stress');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).some((f) => {
    const js = path.join(ROOT, 'dist', 'stress', f.replace(/\.ts$/, '.js'));
    return !fs.existsSync(js) || fs.statSync(js).mtimeMs < fs.statSync(path.join(dir, f)).mtimeMs;
  });
}

if (!isRoot) console.warn(`test/integration/stress.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('stress and fault suite, CI form (root)', () => {
  it('every probe holds', async () => {
    await ensureBuilt();
    if (stressStale()) {
      await sh(NODE, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { timeoutMs: 180_000 });
    }
    const r = await sh(NODE, [MAIN, '--ci', '--format', 'json'], { timeoutMs: 280_000 });
    let report: Report;
    try {
      report = JSON.parse(r.stdout) as Report;
    } catch {
      throw new Error(`the suite printed no report (exit ${r.code}${r.timedOut ? ', timed out' : ''}):\n${r.stderr.slice(-4000)}`);
    }
    process.stdout.write(`${markdown(report)}\n`);
    const failed = report.probes.filter((p) => !p.held)
      .map((p) => `${p.probe}: ${p.error ?? p.checks.filter((c) => !c.ok).map((c) => `${c.what} (${c.value})`).join('; ')}`);
    expect(report.leftovers, 'the suite left namespaces or links behind').toEqual([]);
    expect(failed, `probes that did not hold:\n${failed.join('\n')}`).toEqual([]);
    expect(r.code).toBe(0);
  }, 300_000);
});
