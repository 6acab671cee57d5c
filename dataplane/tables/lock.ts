// The locks of the tables shared between threads, each one Int32 word of the table's
// SharedArrayBuffer. Two designs, because the tables are used in two ways:
//
// - lockWord/unlockWord (fdb.ts, neigh.ts): 0 free, 1 held. Only writers take it: readers
//   are lock-free (sequence words, see probe.ts), and writes are rare next to lookups (a new
//   MAC, a move, aging). It is held for a few hundred nanoseconds at most (a full table's
//   eviction scan: a few µs); a waiter sleeps 1 ms at a time rather than spinning, which
//   keeps the other core free, and a release always notifies.
// - mutexLock/mutexUnlock (conntrack.ts): a futex-style mutex (0 free, 1 held, 2 held and
//   maybe waited on). Every operation takes it, lookups included, so it is taken on every
//   NAT'd packet by every worker: uncontended it costs one compareExchange to take and one
//   sub to release, with no notify; contended, the holder is usually a worker that is done
//   within a few hundred nanoseconds, so a waiter spins MUTEX_SPINS times before it sleeps
//   (5 ms at a time; a release that finds waiters wakes one).

/** Take the writers' lock at word `at` of h (0 free, 1 held). */
export function lockWord(h: Int32Array, at: number): void {
  while (Atomics.compareExchange(h, at, 0, 1) !== 0) Atomics.wait(h, at, 1, 1);
}

export function unlockWord(h: Int32Array, at: number): void {
  Atomics.store(h, at, 0);
  Atomics.notify(h, at, 1);
}

/** compareExchange attempts before a contended mutexLock sleeps. */
const MUTEX_SPINS = 64;

/** Take the mutex at word `at` of h (0 free, 1 held, 2 held with waiters). */
export function mutexLock(h: Int32Array, at: number): void {
  let c = Atomics.compareExchange(h, at, 0, 1);
  if (c !== 0) {
    for (let i = 0; i < MUTEX_SPINS && c !== 0; i++) c = Atomics.compareExchange(h, at, 0, 1);
    if (c !== 0) {
      if (c !== 2) c = Atomics.exchange(h, at, 2);
      while (c !== 0) {
        Atomics.wait(h, at, 2, 5);
        c = Atomics.exchange(h, at, 2);
      }
    }
  }
}

export function mutexUnlock(h: Int32Array, at: number): void {
  if (Atomics.sub(h, at, 1) !== 1) {
    Atomics.store(h, at, 0);
    Atomics.notify(h, at, 1);
  }
}
