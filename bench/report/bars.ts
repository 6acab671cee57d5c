// The bars vsw is held to (issue 13: "As fast as the kernel bridge on latency and small
// packets"), one per metric, against the kernel doing the same in the same run. The charts
// draw them in; the summary judges them (e2e.ts issueBar). One home: change a bar here.

/** `ratio`: vsw / kernel must be `op` value; `abs`: vsw's own figure must be `op` value. */
export interface Bar {
  readonly kind: 'ratio' | 'abs';
  readonly op: '>=' | '<=';
  readonly value: number;
}

const ratio = (op: Bar['op'], value: number): Bar => ({ kind: 'ratio', op, value });

export const BARS: Readonly<Record<string, Bar>> = {
  tcp_def_gbps: ratio('>=', 0.9),
  tcp_off_gbps: ratio('>=', 0.9),
  udp_rx_kpps: ratio('>=', 1.0),
  udp_loss_pct: { kind: 'abs', op: '<=', value: 5 },
  ping_avg_ms: ratio('<=', 1.5),
  sockperf_avg_us: ratio('<=', 1.0),
  mac1_rx_kpps: ratio('>=', 1.1),
  nat_tcp_def_gbps: ratio('>=', 1.0),
  dns_qps: ratio('>=', 1.2),
  dns_lat_us: ratio('<=', 1.0),
};

/**
 * The bar of a scale metric: that of the figure it grows from (forwarding rx kpps keeps the
 * forwarding bar, TCP the TCP one, NAT flows the NAT one, DNS names the DNS one); none for
 * the others (counts of table entries, tx rates).
 */
export function barOf(metric: string): Bar | undefined {
  if (BARS[metric]) return BARS[metric];
  if (/^(mac\d+|pairs\d+|w\d+)_rx_kpps$/.test(metric)) return BARS.mac1_rx_kpps;
  if (/^(pairs\d+|w\d+)_gbps$/.test(metric)) return BARS.tcp_def_gbps;
  if (/^nat\d+_rx_kpps$/.test(metric)) return BARS.nat_tcp_def_gbps;
  if (/^dns\d+_qps$/.test(metric)) return BARS.dns_qps;
  if (/^dns\d+_lat_us$/.test(metric)) return BARS.dns_lat_us;
  return undefined;
}

/** The figure vsw must reach (or stay under) given the kernel's; null when a ratio bar has no kernel figure. */
export function barTarget(bar: Bar, kernel: number | null): number | null {
  if (bar.kind === 'abs') return bar.value;
  return kernel === null ? null : bar.value * kernel;
}

/** Whether vsw's figure meets the bar (null: cannot tell). */
export function meetsBar(bar: Bar, kernel: number | null, vsw: number | null): boolean | null {
  const t = barTarget(bar, kernel);
  if (t === null || vsw === null) return null;
  return bar.op === '>=' ? vsw >= t : vsw <= t;
}

/** "≥ 0.9x kernel", "≤ 5" */
export function barText(bar: Bar): string {
  return `${bar.op === '>=' ? '\u2265' : '\u2264'} ${bar.value}${bar.kind === 'ratio' ? 'x kernel' : ''}`;
}
