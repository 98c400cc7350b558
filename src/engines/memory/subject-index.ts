/**
 * Per-subject ids of one stream, for `expectedLastSubjectId`, the
 * per-subject limit and reads of one subject. Each subject keeps its ids in
 * append order; ids removed from the stream are dropped lazily when they
 * reach either end, so every operation is O(1) amortized.
 *
 * @module
 */

interface SubjectIds {
  ids: number[];
  head: number;
  /** Ids still in the stream. */
  live: number;
}

/** Compact a subject's ids when the dead ones outnumber the live ones by this much. */
const SLACK = 64;

/** The ids of each subject of one stream. */
export class SubjectIndex {
  readonly #subjects = new Map<string, SubjectIds>();
  readonly #isLive: (id: number) => boolean;

  /** `isLive` tells whether an id is still stored in the stream. */
  constructor(isLive: (id: number) => boolean) {
    this.#isLive = isLive;
  }

  /** Records a newly stored id (ids only grow). */
  add(subject: string, id: number): void {
    const entry = this.#subjects.get(subject);
    if (entry === undefined) this.#subjects.set(subject, { ids: [id], head: 0, live: 1 });
    else {
      entry.ids.push(id);
      entry.live++;
    }
  }

  /** Forgets an id the stream no longer has (already removed from it). */
  removed(subject: string, id: number): void {
    const entry = this.#subjects.get(subject);
    if (entry === undefined) return;
    entry.live--;
    if (entry.live <= 0) {
      this.#subjects.delete(subject);
      return;
    }
    if (entry.ids[entry.head] === id) this.#trimHead(entry);
    else if (entry.ids.length - entry.head > 2 * entry.live + SLACK) {
      entry.ids = entry.ids.slice(entry.head).filter(this.#isLive);
      entry.head = 0;
    }
  }

  /** How many distinct subjects the stream holds events on. */
  get size(): number {
    return this.#subjects.size;
  }

  /** How many events the stream holds on `subject`. */
  count(subject: string): number {
    return this.#subjects.get(subject)?.live ?? 0;
  }

  /** The id of the last event on `subject`, 0 when none. */
  last(subject: string): number {
    const entry = this.#subjects.get(subject);
    if (entry === undefined) return 0;
    while (entry.ids.length > entry.head && !this.#isLive(entry.ids[entry.ids.length - 1] as number)) entry.ids.pop();
    return entry.ids[entry.ids.length - 1] ?? 0;
  }

  /** The id of the oldest event on `subject`, 0 when none. */
  first(subject: string): number {
    const entry = this.#subjects.get(subject);
    if (entry === undefined) return 0;
    this.#trimHead(entry);
    return entry.ids[entry.head] ?? 0;
  }

  /** The live ids on `subject`, oldest first (a copy). */
  ids(subject: string): number[] {
    const entry = this.#subjects.get(subject);
    return entry === undefined ? [] : entry.ids.slice(entry.head).filter(this.#isLive);
  }

  /** The subjects holding more than `max` events. */
  subjectsOver(max: number): string[] {
    const out: string[] = [];
    for (const [subject, entry] of this.#subjects) if (entry.live > max) out.push(subject);
    return out;
  }

  #trimHead(entry: SubjectIds): void {
    while (entry.head < entry.ids.length && !this.#isLive(entry.ids[entry.head] as number)) entry.head++;
    if (entry.head > SLACK && entry.head * 2 > entry.ids.length) {
      entry.ids = entry.ids.slice(entry.head);
      entry.head = 0;
    }
  }
}
