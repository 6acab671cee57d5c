// The bench's summaries, from the raw results of a run (called by the bench scripts; by hand:
// `bash bench/e2e.sh summary DIR` prints a finished run's tables again).
//
//   node dist/bench/summary.js e2e DIR          summary.txt, summary.md, summary.json in DIR; text + markdown on stdout
//   node dist/bench/summary.js taps DIR         taps.txt, taps.md in DIR; text + markdown on stdout
//   node dist/bench/summary.js vlan DIR KERNEL  vlan.sh's table (markdown) on stdout; KERNEL = what the
//                                               kernel said to a VLAN-filtering bridge
//   node dist/bench/summary.js charts DIR       chart-<family>.svg in DIR (report/charts.ts: Vega-Lite,
//                                               rendered headless); the files on stdout
//
// The arithmetic lives in bench/report/: results.ts (raw.tsv, the one median, formatting),
// e2e.ts, taps.ts, vlan.ts (one per table), charts.ts (the pictures, bars.ts the bars they draw).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { e2eSummary } from './report/e2e';
import { tapsSummary } from './report/taps';
import { vlanSummary } from './report/vlan';

const USAGE = 'usage: summary.js e2e DIR | taps DIR | vlan DIR KERNEL_VLAN | charts DIR';

async function main(argv: string[]): Promise<number> {
  const [what, dir, extra] = argv;
  if (!dir) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  switch (what) {
    case 'e2e': {
      const s = e2eSummary(dir);
      fs.writeFileSync(path.join(dir, 'summary.txt'), s.txt);
      fs.writeFileSync(path.join(dir, 'summary.md'), s.md);
      fs.writeFileSync(path.join(dir, 'summary.json'), s.json);
      process.stdout.write(`${s.txt}\nmarkdown (for README):\n\n${s.md}`);
      return 0;
    }
    case 'taps': {
      const s = tapsSummary(dir);
      fs.writeFileSync(path.join(dir, 'taps.txt'), s.txt);
      fs.writeFileSync(path.join(dir, 'taps.md'), s.md);
      process.stdout.write(`${s.txt}\nmarkdown:\n\n${s.md}`);
      return 0;
    }
    case 'vlan':
      process.stdout.write(vlanSummary(fs.readFileSync(path.join(dir, 'raw.tsv'), 'utf8'), extra ?? ''));
      return 0;
    case 'charts': {
      // loaded here: the tables need no charting package
      const { writeCharts } = await import('./report/charts');
      const files = await writeCharts(dir);
      process.stdout.write(files.length ? files.map((f) => `chart: ${f}\n`).join('') : `no figures to chart in ${dir}\n`);
      return 0;
    }
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`summary.js: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
