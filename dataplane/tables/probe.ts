// What the open-addressing tables shared between threads (fdb.ts, neigh.ts) have in
// common: entries of `words` Int32 words in one array, word 0 a sequence number that a
// writer makes odd while it rewrites the entry (readers retry), word 1 the state (0 =
// empty), keys found by linear probing from their home slot; and one writers' lock word.

const W_SEQ = 0;
const W_STATE = 1;
const EMPTY = 0;

/**
 * Empty slot i and shift the later entries of its probe run back into the hole, so that no
 * tombstones are needed and every probe still ends at an empty slot. `homeOf(base)` is the
 * home slot of the entry whose words start at `base`. The caller holds the table's write
 * lock; readers racing with the shift may miss an entry once (they see a changed sequence
 * or an empty slot), never read a torn one.
 */
export function deleteShift(e: Int32Array, i: number, mask: number, words: number, homeOf: (base: number) => number): void {
  let hole = i;
  let j = i;
  for (;;) {
    j = (j + 1) & mask;
    const bj = j * words;
    if (e[bj + W_STATE] === EMPTY) break;
    const k = homeOf(bj);
    // Entry j may move to the hole if its home is not cyclically within (hole, j].
    const inRange = hole <= j ? hole < k && k <= j : hole < k || k <= j;
    if (inRange) continue;
    const bh = hole * words;
    Atomics.add(e, bh + W_SEQ, 1);
    for (let w = 1; w < words; w++) e[bh + w] = e[bj + w];
    Atomics.add(e, bh + W_SEQ, 1);
    hole = j;
  }
  const b = hole * words;
  Atomics.add(e, b + W_SEQ, 1);
  e[b + W_STATE] = EMPTY;
  Atomics.add(e, b + W_SEQ, 1);
}

/**
 * Take the writers' lock (word `at` of h: 0 free, 1 held). Held for a few hundred
 * nanoseconds at most (a full table's eviction scan: a few µs); a waiter sleeps 1 ms at a
 * time rather than spinning, which keeps the other core free.
 */
export function lockWord(h: Int32Array, at: number): void {
  while (Atomics.compareExchange(h, at, 0, 1) !== 0) Atomics.wait(h, at, 1, 1);
}

export function unlockWord(h: Int32Array, at: number): void {
  Atomics.store(h, at, 0);
  Atomics.notify(h, at, 1);
}
