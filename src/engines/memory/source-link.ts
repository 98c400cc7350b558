/**
 * One source of a stream: copies the source stream's events, from the
 * configured position and through its subject filter, first those already
 * stored and then each one as it is stored.
 *
 * @module
 */

import type { Clock } from "../../internal/clock.js";
import type { SourceConfig } from "../engine.js";
import { filterMatcher, type SubjectMatcher } from "../subjects.js";
import type { MemoryStream, StreamListener } from "./stream.js";

/** Copies one source stream into a target stream. */
export class SourceLink implements StreamListener {
  readonly #target: MemoryStream;
  readonly #clock: Clock;
  #config: SourceConfig;
  #filter: SubjectMatcher | undefined;
  #source: MemoryStream | undefined;
  /** The next source id to look at. */
  #cursor = 0;

  constructor(target: MemoryStream, config: SourceConfig, clock: Clock) {
    this.#target = target;
    this.#clock = clock;
    this.#config = config;
    this.#filter = filterMatcher(config.subjects);
  }

  /** The source stream's name. */
  get sourceName(): string {
    return this.#config.stream;
  }

  /** Whether the source stream exists and is being copied. */
  get attached(): boolean {
    return this.#source !== undefined;
  }

  /** Starts copying from `source` (when it exists): its events from the position, then new ones. */
  attach(source: MemoryStream): void {
    if (this.#source !== undefined) return;
    this.#source = source;
    const from = this.#config.from;
    if (from.kind === "id") this.#cursor = from.id;
    else if (from.kind === "time") this.#cursor = source.firstIdAtOrAfter(from.time.getTime());
    else if (from.kind === "end") this.#cursor = source.lastId + 1;
    else this.#cursor = source.firstId();
    source.listen(this);
    this.#catchUp();
  }

  /** Takes a new filter; the position is kept, so nothing is copied twice. */
  update(config: SourceConfig): void {
    this.#config = config;
    this.#filter = filterMatcher(config.subjects);
  }

  /** Stops copying. */
  detach(): void {
    this.#source?.unlisten(this);
    this.#source = undefined;
  }

  eventStored(): void {
    this.#catchUp();
  }

  /** Copies stay when their originals go, as on the server. */
  eventRemoved(): void {}

  #catchUp(): void {
    const source = this.#source;
    if (source === undefined) return;
    const now = this.#clock.now();
    source.expire(now);
    this.#cursor = Math.max(this.#cursor, source.firstId());
    while (this.#cursor <= source.lastId) {
      const record = source.get(this.#cursor++);
      if (record !== undefined && (this.#filter === undefined || this.#filter(record.subject))) {
        this.#target.copy(record, now);
      }
    }
  }
}
