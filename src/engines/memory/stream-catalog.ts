/**
 * The memory engine's streams: creating and updating them with the checks
 * only the engine can make (subjects owned by another stream, a storage
 * change, sources forming a cycle), finding the stream that captures a
 * subject, keeping each stream's sources linked, and deleting streams.
 *
 * @module
 */

import type { Clock } from "../../internal/clock.js";
import { holdable } from "../canonical.js";
import type { Ensured, StreamConfig } from "../engine.js";
import { ownSubjectsOverlap, storageChange, subjectsOverlap } from "../errors.js";
import { hasWildcard, overlaps } from "../subjects.js";
import { refused } from "./failures.js";
import { SourceLink } from "./source-link.js";
import { MemoryStream } from "./stream.js";

/** The capture cache is cleared rather than grown past this many subjects. */
const MAX_CACHED_SUBJECTS = 10_000;

/** All streams of one engine. */
export class StreamCatalog {
  readonly #clock: Clock;
  readonly #maxPayload: number;
  readonly #streams = new Map<string, MemoryStream>();
  /** Each stream's sources, by the sourcing stream's name. */
  readonly #links = new Map<string, SourceLink[]>();
  /** Subject → the stream capturing it (`null`: none), so appends skip matching. */
  readonly #captures = new Map<string, MemoryStream | null>();

  constructor(clock: Clock, maxPayload: number) {
    this.#clock = clock;
    this.#maxPayload = maxPayload;
  }

  /** The stream named `name`. */
  get(name: string): MemoryStream | undefined {
    return this.#streams.get(name);
  }

  /** Every stream, by name. */
  list(): MemoryStream[] {
    return [...this.#streams.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The stream capturing the literal `subject`. */
  capturing(subject: string): MemoryStream | undefined {
    const cached = this.#captures.get(subject);
    if (cached !== undefined) return cached ?? undefined;
    let found: MemoryStream | null = null;
    for (const stream of this.#streams.values()) {
      if (stream.captures(subject)) {
        found = stream;
        break;
      }
    }
    if (this.#captures.size >= MAX_CACHED_SUBJECTS) this.#captures.clear();
    this.#captures.set(subject, found);
    return found ?? undefined;
  }

  /** Names of the streams capturing `subject`; with wildcards, of those whose subjects overlap it. */
  namesCapturing(subject: string): string[] {
    if (!hasWildcard(subject)) {
      const stream = this.capturing(subject);
      return stream === undefined ? [] : [stream.name];
    }
    const names: string[] = [];
    for (const stream of this.#streams.values()) {
      if (stream.config.subjects.some((s) => overlaps(s, subject))) names.push(stream.name);
    }
    return names;
  }

  /** Creates the stream, or makes the existing one exactly `config`. */
  ensure(config: StreamConfig): Ensured<StreamConfig> {
    const held = holdable(config);
    const existing = this.#streams.get(held.name);
    this.#check(held, existing);
    this.#captures.clear();
    if (existing !== undefined) {
      existing.reconfigure(held, this.#clock.now());
      this.#relink(existing, held);
      return { config: held, created: false };
    }
    const stream = new MemoryStream(held, this.#maxPayload);
    this.#streams.set(held.name, stream);
    this.#relink(stream, held);
    // Streams waiting for this one as their source start copying it now.
    for (const links of this.#links.values()) {
      for (const link of links) if (link.sourceName === held.name) link.attach(stream);
    }
    return { config: held, created: true };
  }

  /**
   * Deletes the stream (false when missing): it stops copying its sources,
   * and the streams sourcing it stop copying it, keeping what they copied.
   * Their links wait for a stream of that name and copy it from their
   * configured position when one is created; nats-server would go on from
   * the last id it copied (after its retry interval).
   */
  remove(name: string): boolean {
    if (!this.#streams.delete(name)) return false;
    this.#captures.clear();
    for (const link of this.#links.get(name) ?? []) link.detach();
    this.#links.delete(name);
    for (const links of this.#links.values()) {
      for (const link of links) if (link.sourceName === name) link.detach();
    }
    return true;
  }

  /** Stops every source link. */
  close(): void {
    for (const links of this.#links.values()) for (const link of links) link.detach();
    this.#links.clear();
  }

  #check(config: StreamConfig, existing: MemoryStream | undefined): void {
    const { name, subjects } = config;
    if (existing !== undefined && existing.config.storage !== config.storage) {
      throw storageChange(name, existing.config.storage, config.storage);
    }
    subjects.forEach((a, i) => {
      const b = subjects.slice(i + 1).find((other) => overlaps(a, other));
      if (b !== undefined) throw ownSubjectsOverlap(name, a, b);
    });
    // Subject by subject, as the JetStream engine asks the server which stream a refused subject overlaps.
    for (const a of subjects) {
      for (const other of this.#streams.values()) {
        if (other.name !== name && other.config.subjects.some((b) => overlaps(a, b))) {
          throw subjectsOverlap(name, a, other.name);
        }
      }
    }
    if (
      this.#reaches(
        config.sources.map((s) => s.stream),
        name,
      )
    ) {
      throw refused(`stream "${name}": its sources would form a cycle`, { stream: name });
    }
  }

  /** Whether following sources from `starts` leads back to `target`. */
  #reaches(starts: string[], target: string): boolean {
    const seen = new Set<string>();
    const queue = [...starts];
    for (let name = queue.pop(); name !== undefined; name = queue.pop()) {
      if (name === target) return true;
      if (seen.has(name)) continue;
      seen.add(name);
      for (const source of this.#streams.get(name)?.config.sources ?? []) queue.push(source.stream);
    }
    return false;
  }

  /** Makes `stream`'s links match its sources, keeping the position of those that stay. */
  #relink(stream: MemoryStream, config: StreamConfig): void {
    const old = this.#links.get(stream.name) ?? [];
    const kept: SourceLink[] = [];
    for (const source of config.sources) {
      const index = old.findIndex((link) => link.sourceName === source.stream);
      const link = index === -1 ? new SourceLink(stream, source, this.#clock) : (old.splice(index, 1)[0] as SourceLink);
      link.update(source);
      kept.push(link);
    }
    for (const link of old) link.detach();
    if (kept.length === 0) this.#links.delete(stream.name);
    else this.#links.set(stream.name, kept);
    for (const link of kept) {
      const source = this.#streams.get(link.sourceName);
      if (source !== undefined) link.attach(source);
    }
  }
}
