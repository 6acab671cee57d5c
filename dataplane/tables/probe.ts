// Backward-shift deletion for the open-addressing (linear probing) tables: entries of
// `words` Int32 words in one array, word 1 the state (0 = empty), keys found by probing
// from their home slot until an empty slot. Deleting shifts later entries of the probe run
// back into the hole, so no tombstones are needed and every probe still ends at an empty
// slot.
//
// Tables that readers search without a lock (fdb.ts, neigh.ts) keep a sequence number in
// word 0 that a writer makes odd while it rewrites the entry (readers retry): pass seq =
// true. A table read only under its lock (conntrack's per-source counts) has no sequence
// word: seq = false, and word 0 is data that moves with its entry. The locks: lock.ts.

const W_SEQ = 0;
const W_STATE = 1;
const EMPTY = 0;

/**
 * Empty slot i and shift the later entries of its probe run back into the hole.
 * `homeOf(base)` is the home slot of the entry whose words start at `base`. The caller holds
 * the table's write lock; with seq, readers racing with the shift may miss an entry once
 * (they see a changed sequence or an empty slot), never read a torn one.
 */
export function deleteShift(
  e: Int32Array, i: number, mask: number, words: number, homeOf: (base: number) => number, seq: boolean,
): void {
  const first = seq ? W_SEQ + 1 : 0;
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
    if (seq) Atomics.add(e, bh + W_SEQ, 1);
    for (let w = first; w < words; w++) e[bh + w] = e[bj + w];
    if (seq) Atomics.add(e, bh + W_SEQ, 1);
    hole = j;
  }
  const b = hole * words;
  if (seq) {
    Atomics.add(e, b + W_SEQ, 1);
    e[b + W_STATE] = EMPTY;
    Atomics.add(e, b + W_SEQ, 1);
  } else {
    for (let w = 0; w < words; w++) e[b + w] = 0;
  }
}
