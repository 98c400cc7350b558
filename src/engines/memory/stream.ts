/**
 * One stream of the memory engine: its events, limits, deduplication and
 * per-subject index. Limits and expiry are applied as nats-server applies
 * them, but lazily: every operation first drops what has expired by now
 * (the clock only moves forward), so no timer is needed per event.
 *
 * @module
 */

import { storedHeaders } from "../canonical.js";
import type { Appended, OutgoingEvent, RawHeaders, StreamConfig, StreamContents } from "../engine.js";
import { limitRefused, wrongSequence } from "../errors.js";
import { compileMatcher, hasWildcard, type SubjectMatcher } from "../subjects.js";
import { EventLog, recordBytes, type StoredRecord } from "./event-log.js";
import { SubjectIndex } from "./subject-index.js";

/** Told about every event a stream stores or removes (consumers, streams sourcing it). */
export interface StreamListener {
  eventStored(stream: MemoryStream, record: StoredRecord): void;
  /** Deleted, expired or dropped by a limit. */
  eventRemoved(stream: MemoryStream, record: StoredRecord): void;
}

interface Seen {
  readonly id: number;
  readonly time: number;
}

/** A stream's storage and rules. */
export class MemoryStream {
  readonly name: string;
  readonly #maxPayload: number;
  readonly #log = new EventLog();
  readonly #index = new SubjectIndex((id) => this.#log.get(id) !== undefined);
  /** Idempotency keys in the order stored, so the oldest expire from the front. */
  readonly #seen = new Map<string, Seen>();
  /** When the oldest remembered key expires; nothing to look at before. */
  #seenExpiry = Number.POSITIVE_INFINITY;
  #listeners: StreamListener[] = [];
  #config: StreamConfig;
  #matcher: SubjectMatcher;
  /** A purge emptied it: its first id is no longer 0, even if nothing was ever stored. */
  #purged = false;

  constructor(config: StreamConfig, maxPayload: number) {
    this.name = config.name;
    this.#maxPayload = maxPayload;
    this.#config = config;
    this.#matcher = compileMatcher(config.subjects);
  }

  /** The configuration as held. */
  get config(): StreamConfig {
    return this.#config;
  }

  /** The last id ever assigned (0: none); ids are never reused. */
  get lastId(): number {
    return this.#log.nextId - 1;
  }

  /** Live events. */
  get count(): number {
    return this.#log.count;
  }

  /**
   * What the stream holds, as nats-server reports it: ids 0 and 0 before
   * anything was stored or purged; once emptied, the next id as `firstId`.
   * The last time is the last stored event's even if it is gone since, as
   * nats-server's `last_ts`; an empty stream reports no times.
   */
  contents(): Omit<StreamContents, "consumers"> {
    const log = this.#log;
    const lastId = this.lastId;
    return {
      events: log.count,
      bytes: log.bytes,
      firstId: lastId === 0 && !this.#purged ? 0 : log.firstId(),
      firstTime: log.first()?.time,
      lastId,
      lastTime: log.count === 0 ? undefined : log.lastTime,
      subjects: this.#index.size,
    };
  }

  /** Whether this stream's subjects match the literal `subject`. */
  captures(subject: string): boolean {
    return this.#matcher(subject);
  }

  /** Makes the stream exactly `config` (same name and storage), applying lowered limits at once. */
  reconfigure(config: StreamConfig, now: number): void {
    this.#config = config;
    this.#matcher = compileMatcher(config.subjects);
    this.#seenExpiry = 0; // the window may have shrunk: look again
    this.expire(now);
    const perSubject = config.maxEventsPerSubject;
    if (perSubject !== undefined) {
      for (const subject of this.#index.subjectsOver(perSubject)) this.#trimSubject(subject, perSubject);
    }
    this.#trimTotals();
  }

  /** Drops the events older than `maxAgeMs` and forgets idempotency keys older than the window. */
  expire(now: number): void {
    const maxAge = this.#config.maxAgeMs;
    if (maxAge !== undefined) {
      let first = this.#log.first();
      while (first !== undefined && first.time + maxAge <= now) {
        this.#removeFirst();
        first = this.#log.first();
      }
    }
    if (now < this.#seenExpiry) return;
    const window = this.#config.deduplicationWindowMs;
    this.#seenExpiry = Number.POSITIVE_INFINITY;
    for (const [key, seen] of this.#seen) {
      if (seen.time + window > now) {
        this.#seenExpiry = seen.time + window;
        break;
      }
      this.#seen.delete(key);
    }
  }

  /** Stores `event` after the checks nats-server makes, in its order. */
  append(event: OutgoingEvent, now: number): Appended {
    this.expire(now);
    const { subject, idempotencyKey: key } = event;
    if (key !== undefined) {
      const seen = this.#seen.get(key);
      if (seen !== undefined) return { id: seen.id, stream: this.name, duplicate: true };
    }
    const { expectedLastId, expectedLastSubjectId } = event;
    if (expectedLastSubjectId !== undefined) {
      const actual = this.#index.last(subject);
      if (actual !== expectedLastSubjectId) {
        throw wrongSequence({ subject, stream: this.name, expectedLastId, expectedLastSubjectId }, actual);
      }
    }
    if (expectedLastId !== undefined && expectedLastId !== this.lastId) {
      throw wrongSequence({ subject, stream: this.name, expectedLastId, expectedLastSubjectId }, this.lastId);
    }
    const headers = storedHeaders(event);
    const record = this.#admit(subject, event.payload, headers, now);
    this.#store(record);
    if (key !== undefined && this.#config.deduplicationWindowMs > 0) {
      if (this.#seen.size === 0) this.#seenExpiry = now + this.#config.deduplicationWindowMs;
      this.#seen.set(key, { id: record.id, time: now });
    }
    return { id: record.id, stream: this.name, duplicate: false };
  }

  /**
   * Stores an event copied from a source stream: no deduplication and no
   * expected-checks. Returns false when a limit or size refused it.
   */
  copy(source: StoredRecord, now: number): boolean {
    this.expire(now);
    let record: StoredRecord;
    try {
      record = this.#admit(source.subject, source.payload, source.headers, now);
    } catch {
      return false;
    }
    this.#store(record);
    return true;
  }

  /** The live event with this id. */
  get(id: number): StoredRecord | undefined {
    return this.#log.get(id);
  }

  /** The first live id, or `lastId + 1` when the stream is empty. */
  firstId(): number {
    return this.#log.firstId();
  }

  /** The first id stored at or after `time`, or `lastId + 1`. */
  firstIdAtOrAfter(time: number): number {
    return this.#log.firstIdAtOrAfter(time);
  }

  /** The live ids on the literal `subject`, oldest first. */
  idsOn(subject: string): number[] {
    return this.#index.ids(subject);
  }

  /** The live ids on `subject` (wildcards allowed), oldest first. */
  idsMatching(subject: string): number[] {
    if (!hasWildcard(subject)) return this.#index.ids(subject);
    const matches = compileMatcher([subject]);
    const ids: number[] = [];
    for (let id = this.firstId(); id <= this.lastId; id++) {
      const record = this.#log.get(id);
      if (record !== undefined && matches(record.subject)) ids.push(id);
    }
    return ids;
  }

  /** The last live event on the literal `subject`. */
  lastOn(subject: string): StoredRecord | undefined {
    return this.#log.get(this.#index.last(subject));
  }

  /**
   * Removes the events with ids below `id`; returns how many. An `id` past
   * the end also moves the next id to it, as nats-server's compaction does.
   */
  removeBelow(id: number): number {
    let removed = 0;
    for (let first = this.#log.first(); first !== undefined && first.id < id; first = this.#log.first()) {
      this.#removeFirst();
      removed++;
    }
    this.#log.skipTo(id);
    this.#purged = true;
    return removed;
  }

  /** Removes one event; false when it is not there. */
  delete(id: number): boolean {
    const record = this.#log.remove(id);
    if (record === undefined) return false;
    this.#removed(record);
    return true;
  }

  /** Starts telling `listener` about stored events. */
  listen(listener: StreamListener): void {
    if (!this.#listeners.includes(listener)) this.#listeners = [...this.#listeners, listener];
  }

  /** Stops telling `listener`. */
  unlisten(listener: StreamListener): void {
    this.#listeners = this.#listeners.filter((l) => l !== listener);
  }

  /** Builds the record to store, or throws the refusal of a size or `discard: new` limit. */
  #admit(subject: string, payload: Uint8Array, headers: RawHeaders, now: number): StoredRecord {
    const config = this.#config;
    if (config.maxEventSize !== undefined && payload.byteLength > config.maxEventSize) {
      throw limitRefused(subject, this.name, "message size exceeds maximum allowed");
    }
    if (payload.byteLength > this.#maxPayload) {
      throw limitRefused(subject, this.name, "maximum payload exceeded");
    }
    const bytes = recordBytes(subject, payload, headers);
    if (config.discardPolicy === "new") {
      const perSubject = config.maxEventsPerSubject;
      const atSubjectLimit = perSubject !== undefined && this.#index.count(subject) >= perSubject;
      if (config.discardNewPerSubject && atSubjectLimit) {
        throw limitRefused(subject, this.name, "maximum messages per subject exceeded");
      }
      // An event that replaces the oldest of its subject (at the per-subject
      // limit) does not grow the stream: nats-server lets it in however full
      // the stream is, counting the bytes it frees.
      const replaced = atSubjectLimit ? this.#log.get(this.#index.first(subject)) : undefined;
      if (config.maxEvents !== undefined && replaced === undefined && this.#log.count >= config.maxEvents) {
        throw limitRefused(subject, this.name, "maximum messages exceeded");
      }
      if (config.maxBytes !== undefined && this.#log.bytes - (replaced?.bytes ?? 0) + bytes > config.maxBytes) {
        throw limitRefused(subject, this.name, "maximum bytes exceeded");
      }
    }
    // Kept, not copied: windshift encodes a fresh payload per publish, and a copy per event
    // (a new ArrayBuffer each) halved throughput. Deliveries share it too.
    return { id: this.#log.nextId, subject, payload, headers, time: now, bytes };
  }

  /** Stores, then drops the oldest events over the limits (the new one too, if it alone is over). */
  #store(record: StoredRecord): void {
    this.#log.push(record);
    this.#index.add(record.subject, record.id);
    const perSubject = this.#config.maxEventsPerSubject;
    if (perSubject !== undefined) this.#trimSubject(record.subject, perSubject);
    this.#trimTotals();
    for (const listener of this.#listeners) listener.eventStored(this, record);
  }

  #trimSubject(subject: string, max: number): void {
    while (this.#index.count(subject) > max) this.delete(this.#index.first(subject));
  }

  #trimTotals(): void {
    const { maxEvents, maxBytes } = this.#config;
    if (maxEvents !== undefined) while (this.#log.count > maxEvents) this.#removeFirst();
    if (maxBytes !== undefined) while (this.#log.bytes > maxBytes) this.#removeFirst();
  }

  #removeFirst(): void {
    const record = this.#log.removeFirst();
    if (record !== undefined) this.#removed(record);
  }

  #removed(record: StoredRecord): void {
    this.#index.removed(record.subject, record.id);
    for (const listener of this.#listeners) listener.eventRemoved(this, record);
  }
}
