// Crash points, for the crash-safety tests (test/integration/crash.test.ts): with
// VSW_CRASH_AT=POINT in its environment the daemon kills itself with SIGKILL, as `kill -9`
// would (no handler runs, nothing is cleaned up), when a container creation (or a
// `network connect`: the veth and address points; an attachment: all but after-netns)
// reaches POINT.
// Without the variable a crash point costs one comparison. docs/RELIABILITY.md says what a
// restart does with what each point leaves behind.

export const CRASH_POINTS = [
  /** The intent record is saved; nothing is made yet. */
  'after-intent',
  /** The container's namespace exists, with lo up and nothing else. */
  'after-netns',
  /** The veth pair exists: eth0 (down, unconfigured) in the container, its host end up. */
  'after-veth',
  /** eth0 has its MAC, address and default route. */
  'after-addr',
  /** The host end is a switch port; /etc/netns/NAME may be written; not saved as made. */
  'before-save',
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

let creating = false;

/**
 * Run a container creation or connection with its crash points armed (the same steps also
 * run when a restart re-attaches containers, which must not crash).
 */
export async function armedWhile<T>(fn: () => Promise<T>): Promise<T> {
  creating = true;
  try {
    return await fn();
  } finally {
    creating = false;
  }
}

/** SIGKILL this process when VSW_CRASH_AT names this point and a creation is under way. */
export function crashPoint(at: CrashPoint): void {
  if (!creating || process.env.VSW_CRASH_AT !== at) return;
  process.stderr.write(`vsw: VSW_CRASH_AT=${at}: killing myself (SIGKILL)\n`);
  process.kill(process.pid, 'SIGKILL');
}
