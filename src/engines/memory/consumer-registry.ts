/**
 * The memory engine's consumers, by stream and name: creating them (naming
 * ephemeral ones), finding them, and removing them when deleted, when their
 * stream is deleted, or (lazily) after `inactiveThresholdMs` without a feed.
 *
 * @module
 */

import { randomInt } from "node:crypto";
import type { ConsumerConfig } from "../engine.js";
import { consumerGone } from "../errors.js";
import { type ConsumerHost, MemoryConsumer } from "./consumer.js";
import type { MemoryStream } from "./stream.js";

const NAME_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const NAME_LENGTH = 8;

/** All consumers of one engine. */
export class ConsumerRegistry {
  readonly #host: ConsumerHost;
  /** Consumers by stream name, then consumer name. */
  readonly #byStream = new Map<string, Map<string, MemoryConsumer>>();

  constructor(host: ConsumerHost) {
    this.#host = host;
  }

  /** The consumer, unless missing or (lazily) removed for inactivity. */
  get(stream: string, name: string): MemoryConsumer | undefined {
    const consumer = this.#byStream.get(stream)?.get(name);
    return consumer === undefined || this.#removedIfIdle(consumer) ? undefined : consumer;
  }

  /** Every consumer of `stream`, by name, once the inactive ones are removed. */
  list(stream: string): MemoryConsumer[] {
    const consumers = [...(this.#byStream.get(stream)?.values() ?? [])].filter((c) => !this.#removedIfIdle(c));
    return consumers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Creates a consumer on `stream`, named `config.name` or, when ephemeral, 8 random characters. */
  create(stream: MemoryStream, config: ConsumerConfig): MemoryConsumer {
    let consumers = this.#byStream.get(stream.name);
    if (consumers === undefined) {
      consumers = new Map();
      this.#byStream.set(stream.name, consumers);
    }
    const name = config.name ?? uniqueName(consumers);
    const consumer = new MemoryConsumer(this.#host, stream, name, config);
    consumers.set(name, consumer);
    return consumer;
  }

  /** Removes a consumer; its feeds fail with `NOT_FOUND`, as when the server deletes it. False when missing. */
  delete(stream: string, name: string): boolean {
    const consumer = this.get(stream, name);
    if (consumer === undefined) return false;
    this.#remove(consumer);
    return true;
  }

  /** Removes every consumer of `stream` (which is being deleted); their feeds fail with `NOT_FOUND`. */
  deleteAll(stream: string): void {
    for (const consumer of this.#byStream.get(stream)?.values() ?? []) this.#remove(consumer);
  }

  /** Removes every consumer; their feeds hear `ended()` (the engine closed). */
  close(): void {
    for (const consumers of this.#byStream.values()) for (const consumer of consumers.values()) consumer.remove({});
    this.#byStream.clear();
  }

  #removedIfIdle(consumer: MemoryConsumer): boolean {
    if (!consumer.isIdle(this.#host.clock.now())) return false;
    this.#remove(consumer);
    return true;
  }

  #remove(consumer: MemoryConsumer): void {
    const stream = consumer.stream.name;
    consumer.remove({ error: consumerGone(stream, consumer.name) });
    const consumers = this.#byStream.get(stream);
    consumers?.delete(consumer.name);
    if (consumers?.size === 0) this.#byStream.delete(stream);
  }
}

/** A fresh ephemeral name: 8 random characters of `[A-Za-z0-9]`. */
function uniqueName(taken: ReadonlyMap<string, unknown>): string {
  for (;;) {
    let name = "";
    for (let i = 0; i < NAME_LENGTH; i++) name += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
    if (!taken.has(name)) return name;
  }
}
