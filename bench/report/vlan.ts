// The summary of vlan.sh: per test, the medians of vsw untagged, vsw tagged and the kernel
// reference, tagged over untagged, and both daemons' CPU per unit of work, as markdown.
//
// vlan.sh's raw.tsv has a header line and five columns: row, test, rep, value, cpu (cores;
// "nan" for the kernel row and for runs that failed).

import { fixed, median } from './results';

const NAMES: Readonly<Record<string, string>> = {
  tcp_def: 'TCP Gbit/s, default offloads', tcp_off: 'TCP Gbit/s, offloads off', udp: 'UDP 64 B received kpps', ping: 'ping avg ms (200 x 10 ms)',
};
const VALUE = 3;
const CPU = 4;

/** `raw`: the text of vlan.sh's raw.tsv; `kernelVlan`: what the kernel said to a VLAN-filtering bridge. */
export function vlanSummary(raw: string, kernelVlan: string): string {
  const lines = raw.trim().split('\n').slice(1).map((l) => l.split('\t'));
  // NaN, not null, for "no figure": it carries through the ratios below to a "-".
  const get = (row: string, test: string, col: number): number =>
    median(lines.filter((r) => r[0] === row && r[1] === test).map((r) => Number(r[col])).filter((x) => Number.isFinite(x))) ?? NaN;
  const tests = [...new Set(lines.map((r) => r[1]))];
  const out: string[] = [];
  out.push('| metric (median) | kernel, untagged | vsw untagged | vsw tagged | tagged/untagged |');
  out.push('|---|---:|---:|---:|---:|');
  for (const t of tests) {
    const u = get('untagged', t, VALUE), g = get('tagged', t, VALUE), k = get('kernel', t, VALUE);
    out.push(`| ${NAMES[t] ?? t} | ${fixed(k, 2)} | ${fixed(u, 2)} | ${fixed(g, 2)} | ${fixed(g / u, 3)} |`);
  }
  for (const t of tests) {
    if (t === 'ping') continue;
    const u = get('untagged', t, CPU), g = get('tagged', t, CPU);
    const uv = get('untagged', t, VALUE), gv = get('tagged', t, VALUE);
    // CPU per unit of work: cores / (Gbit/s or kpps); tagged over untagged.
    out.push(`| both daemons' CPU (cores), ${NAMES[t] ?? t} | - | ${fixed(u, 2)} | ${fixed(g, 2)} | per unit of work: ${fixed((g / gv) / (u / uv), 3)} |`);
  }
  out.push('');
  out.push(`kernel bridge VLAN filtering: ${kernelVlan}`);
  return out.join('\n') + '\n';
}
