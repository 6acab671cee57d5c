// The delay queue of one impaired port (one direction, one worker): frames copied out of the
// receive buffer (it is reused every batch) into one preallocated byte pool, and released in
// order of their due time. Bounded twice: at most `limit` frames (netem's limit) and at most
// the pool's bytes; a frame that does not fit is refused (the caller counts the drop).
//
// The pool is a byte ring filled in arrival order; a frame leaves when it is due, which with
// jitter is not arrival order, so its bytes are reclaimed when every older frame has left
// too. A binary heap of entries orders them by (due time, arrival): equal times leave in
// arrival order. Nothing allocates after construction.

export class DelayQueue {
  readonly pool: Uint8Array;
  /** Frames waiting (not yet released). */
  size = 0;
  private readonly cap: number;
  // Entries, indexed by slot: where the frame's bytes are, when it is due, its arrival number, a note.
  readonly off: Int32Array;
  readonly len: Int32Array;
  private readonly dueAt: Float64Array;
  private readonly seq: Float64Array;
  /** The delay the frame was given, ms, and what else impairment did to it (IMP_* bits): for traces. */
  readonly note: Float64Array;
  readonly tag: Uint8Array;
  private readonly released: Uint8Array;
  // Slots in arrival order (a ring): reclaimed from the oldest once released.
  private readonly order: Int32Array;
  private oHead = 0;
  private oCount = 0;
  private readonly freeSlots: Int32Array;
  private nFree: number;
  // The byte ring: data in [tail, head), or [tail, end) + [0, head) once wrapped.
  private head = 0;
  private tail = 0;
  private wrapped = false;
  private readonly heap: Int32Array;
  private heapN = 0;
  private nextSeq = 0;

  constructor(readonly limit: number, bytes: number) {
    this.pool = new Uint8Array(bytes);
    // Released frames wait for their elders before their slot is free: twice the limit of slots.
    this.cap = limit * 2;
    this.off = new Int32Array(this.cap);
    this.len = new Int32Array(this.cap);
    this.dueAt = new Float64Array(this.cap);
    this.seq = new Float64Array(this.cap);
    this.note = new Float64Array(this.cap);
    this.tag = new Uint8Array(this.cap);
    this.released = new Uint8Array(this.cap);
    this.order = new Int32Array(this.cap);
    this.freeSlots = new Int32Array(this.cap);
    for (let i = 0; i < this.cap; i++) this.freeSlots[i] = this.cap - 1 - i;
    this.nFree = this.cap;
    this.heap = new Int32Array(this.cap);
  }

  /** Whether a frame of `len` bytes would be taken now. */
  fits(len: number): boolean {
    return this.size < this.limit && this.nFree > 0 && this.room(len) >= 0;
  }

  /**
   * Copy buf[off, off+len) in, due at `due`; its slot, or -1 when it does not fit (frames or
   * bytes). `note`, `tag`: the delay it was given, what else was done to it (traces).
   */
  push(buf: Uint8Array, off: number, len: number, due: number, note: number, tag = 0): number {
    if (this.size >= this.limit || this.nFree === 0) return -1;
    const at = this.room(len);
    if (at < 0) return -1;
    if (!this.wrapped && at === 0 && this.oCount > 0) this.wrapped = true; // the ring starts over at the front
    this.head = at + len;
    this.pool.set(buf.subarray(off, off + len), at);
    const s = this.freeSlots[--this.nFree];
    this.off[s] = at;
    this.len[s] = len;
    this.dueAt[s] = due;
    this.seq[s] = this.nextSeq++;
    this.note[s] = note;
    this.tag[s] = tag;
    this.released[s] = 0;
    this.order[(this.oHead + this.oCount) % this.cap] = s;
    this.oCount++;
    this.size++;
    this.heapPush(s);
    return s;
  }

  /** When the next frame is due; Infinity when none waits. */
  nextDue(): number {
    return this.heapN === 0 ? Infinity : this.dueAt[this.heap[0]];
  }

  /**
   * The slot of the next frame due at or before `now` (taken out of the queue: read its
   * bytes, then free() it), or -1.
   */
  popDue(now: number): number {
    if (this.heapN === 0 || this.dueAt[this.heap[0]] > now) return -1;
    const s = this.heap[0];
    this.heapN--;
    if (this.heapN > 0) {
      this.heap[0] = this.heap[this.heapN];
      this.siftDown(0);
    }
    this.size--;
    return s;
  }

  /** A popped frame's bytes may be reused. */
  free(s: number): void {
    this.released[s] = 1;
    while (this.oCount > 0) {
      const o = this.order[this.oHead];
      if (this.released[o] === 0) break;
      this.oHead = (this.oHead + 1) % this.cap;
      this.oCount--;
      this.freeSlots[this.nFree++] = o;
    }
    if (this.oCount === 0) {
      this.head = 0;
      this.tail = 0;
      this.wrapped = false;
      return;
    }
    const oldest = this.off[this.order[this.oHead]];
    // The oldest frame sits before the old tail: the ring's data no longer wraps.
    if (this.wrapped && oldest < this.tail) this.wrapped = false;
    this.tail = oldest;
  }

  /** Forget every frame (the port is gone). */
  clear(): void {
    this.heapN = 0;
    this.size = 0;
    this.oHead = 0;
    this.oCount = 0;
    for (let i = 0; i < this.cap; i++) this.freeSlots[i] = this.cap - 1 - i;
    this.nFree = this.cap;
    this.head = 0;
    this.tail = 0;
    this.wrapped = false;
  }

  /** Where `len` bytes would go, or -1. */
  private room(len: number): number {
    const size = this.pool.length;
    if (this.oCount === 0) return len <= size ? 0 : -1;
    if (!this.wrapped) {
      if (this.head + len <= size) return this.head;
      return len < this.tail ? 0 : -1;
    }
    return this.head + len < this.tail ? this.head : -1;
  }

  private less(a: number, b: number): boolean {
    const da = this.dueAt[a];
    const db = this.dueAt[b];
    return da < db || (da === db && this.seq[a] < this.seq[b]);
  }

  private heapPush(s: number): void {
    let i = this.heapN++;
    const h = this.heap;
    h[i] = s;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i], h[parent])) break;
      const t = h[i]; h[i] = h[parent]; h[parent] = t;
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heapN && this.less(h[l], h[m])) m = l;
      if (r < this.heapN && this.less(h[r], h[m])) m = r;
      if (m === i) return;
      const t = h[i]; h[i] = h[m]; h[m] = t;
      i = m;
    }
  }
}
