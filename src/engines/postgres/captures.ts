/**
 * Which stream captures a subject, for appends: the catalog of streams read
 * from PostgreSQL and kept in the process, with subjects matched by the same
 * code as the other engines (`engines/subjects.ts`).
 *
 * The copy may be stale, as other processes create, change and delete
 * streams; it is never trusted alone. An append names the stream it chose
 * together with the subjects it matched against, and the database refuses it
 * (outcome `moved`) when that stream is gone or its subjects changed; the
 * caller then reloads and chooses again. As subjects belong to one stream
 * only, a stream whose subjects did not change still captures what it did.
 * A subject no stream captures in the copy is looked up again before it is
 * called unbound, as a stream for it may have been created since.
 *
 * @module
 */

import { compileMatcher, type SubjectMatcher } from "../subjects.js";
import type { Database } from "./database.js";
import { loadStreams } from "./streams.js";

/** A stream as appends need it. */
export interface CapturingStream {
  /** The row's key, which the append function takes. */
  readonly id: number;
  readonly name: string;
  /** Its subjects as JSON, as the append function compares them with the row's. */
  readonly subjectsJson: string;
}

interface Entry extends CapturingStream {
  readonly matches: SubjectMatcher;
}

/** The subject cache is cleared rather than grown past this many subjects. */
const MAX_CACHED_SUBJECTS = 10_000;

/** The streams of one schema, as last read, and which of them captures which subject. */
export class Captures {
  readonly #schema: string;
  #streams: readonly Entry[] = [];
  readonly #bySubject = new Map<string, Entry>();
  /** Loads are numbered; one that finishes after a later one is dropped. */
  #started = 0;
  #applied = 0;

  constructor(schema: string) {
    this.#schema = schema;
  }

  /** The stream capturing the literal `subject` in the copy, if any. */
  cached(subject: string): CapturingStream | undefined {
    const hit = this.#bySubject.get(subject);
    if (hit !== undefined) return hit;
    const found = this.#streams.find((s) => s.matches(subject));
    if (found === undefined) return undefined;
    if (this.#bySubject.size >= MAX_CACHED_SUBJECTS) this.#bySubject.clear();
    this.#bySubject.set(subject, found);
    return found;
  }

  /** Reads the catalog again (on `client`), then looks `subject` up in it. */
  async reload(client: Database, subject: string): Promise<CapturingStream | undefined> {
    const load = ++this.#started;
    const rows = await loadStreams(client, this.#schema);
    if (load > this.#applied) {
      this.#applied = load;
      this.#streams = rows.map(({ id, config }) => ({
        id,
        name: config.name,
        subjectsJson: JSON.stringify(config.subjects),
        matches: compileMatcher(config.subjects),
      }));
      this.#bySubject.clear();
    }
    return this.cached(subject);
  }
}
