/**
 * Key-value buckets of the memory engine, with compare-and-set on a
 * per-bucket revision counter (as a JetStream bucket's stream sequence).
 *
 * @module
 */

import type { Clock } from "../../internal/clock.js";
import type { KeyValue, KeyValueEntry, KeyValueOptions, KeyValueWriteOptions } from "../engine.js";
import { wrongRevision } from "../errors.js";
import { checkCall } from "./failures.js";

interface Stored {
  readonly value: Uint8Array;
  readonly revision: number;
  readonly time: number;
}

/** What a bucket needs from its engine. */
export interface BucketHost {
  readonly clock: Clock;
  isClosed(): boolean;
}

/**
 * One bucket. Entries are kept in write order (re-inserted on every write),
 * so those older than the ttl are dropped from the front, lazily.
 */
export class MemoryBucket implements KeyValue {
  readonly name: string;
  /** Replaced as a whole when the bucket is ensured with other settings. */
  options: KeyValueOptions;
  readonly #host: BucketHost;
  readonly #entries = new Map<string, Stored>();
  #revision = 0;

  /** A `ttlMs` of 0 or less keeps entries forever. */
  constructor(host: BucketHost, name: string, options: KeyValueOptions) {
    this.#host = host;
    this.name = name;
    this.options = Object.freeze({ ...options });
  }

  async get(key: string, signal?: AbortSignal): Promise<KeyValueEntry | undefined> {
    checkCall(this.#host.isClosed(), signal);
    const entry = this.#live(key);
    return entry === undefined ? undefined : { value: entry.value.slice(), revision: entry.revision };
  }

  async put(key: string, value: Uint8Array, options: KeyValueWriteOptions = {}): Promise<number> {
    checkCall(this.#host.isClosed(), options.signal);
    this.#expire();
    this.#check(key, options.expectedRevision);
    const revision = ++this.#revision;
    this.#entries.delete(key);
    this.#entries.set(key, { value: value.slice(), revision, time: this.#host.clock.now() });
    return revision;
  }

  async delete(key: string, options: KeyValueWriteOptions = {}): Promise<void> {
    checkCall(this.#host.isClosed(), options.signal);
    this.#expire();
    this.#check(key, options.expectedRevision);
    // A delete is a write: like the server's delete marker, it takes a revision.
    if (this.#entries.delete(key)) this.#revision++;
  }

  #check(key: string, expected: number | undefined): void {
    if (expected === undefined) return;
    const actual = this.#entries.get(key)?.revision ?? 0;
    if (actual !== expected) throw wrongRevision(this.name, key, expected, actual);
  }

  #live(key: string): Stored | undefined {
    this.#expire();
    return this.#entries.get(key);
  }

  #expire(): void {
    const ttl = this.options.ttlMs;
    if (!(ttl > 0)) return;
    const now = this.#host.clock.now();
    for (const [key, entry] of this.#entries) {
      if (entry.time + ttl > now) return;
      this.#entries.delete(key);
    }
  }
}
