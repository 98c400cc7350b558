/**
 * Looking at and changing what a JetStream server holds: stream contents,
 * consumer lists, deletes, purges, and single events read back.
 *
 * @module
 */

import type { JetStreamManager, PurgeOpts, StoredMsg, StreamInfo } from "@nats-io/jetstream";
import type { RawHeaders } from "../../internal/headers.js";
import type { ConsumerState, PurgeOptions, StoredEvent, StreamState } from "../engine.js";
import { eventNotFound } from "../errors.js";
import { toConsumerState } from "./consumers.js";
import { fromNatsStreamConfig } from "./streams.js";

/** A stream's config and contents from its info. */
export function toStreamState(info: StreamInfo): StreamState {
  const s = info.state;
  const time = (ts: string | undefined, seq: number): number | undefined => {
    // JetStream reports the zero time for an empty stream.
    if (ts === undefined || seq === 0 || s.messages === 0) return undefined;
    const ms = Date.parse(ts);
    return Number.isNaN(ms) || ms <= 0 ? undefined : ms;
  };
  return {
    config: fromNatsStreamConfig(info.config),
    contents: {
      events: s.messages,
      bytes: s.bytes,
      firstId: s.first_seq,
      firstTime: time(s.first_ts, s.first_seq),
      lastId: s.last_seq,
      lastTime: time(s.last_ts, s.last_seq),
      subjects: s.num_subjects ?? 0,
      consumers: s.consumer_count,
    },
  };
}

/** Every stream's state, by name. */
export async function listStreams(jsm: JetStreamManager): Promise<StreamState[]> {
  const states: StreamState[] = [];
  for await (const info of jsm.streams.list()) states.push(toStreamState(info));
  return states.sort((a, b) => (a.config.name < b.config.name ? -1 : a.config.name > b.config.name ? 1 : 0));
}

/** Every consumer of `stream`, by name. */
export async function listConsumers(jsm: JetStreamManager, stream: string): Promise<ConsumerState[]> {
  // Listing the consumers of a missing stream answers with an empty list: ask for the stream first.
  await jsm.streams.info(stream);
  const states: ConsumerState[] = [];
  for await (const info of jsm.consumers.list(stream)) states.push(toConsumerState(info));
  return states.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Removes events from `stream`; returns how many. */
export async function purgeStream(jsm: JetStreamManager, stream: string, options: PurgeOptions): Promise<number> {
  // The server takes `seq: 1` for "no bound" and purges everything: below id 1 there is nothing.
  if (options.upToId !== undefined && options.upToId <= 1) {
    await jsm.streams.info(stream);
    return 0;
  }
  const request: Record<string, unknown> = {};
  if (options.subject !== undefined) request.filter = options.subject;
  if (options.keepLast !== undefined) request.keep = options.keepLast;
  if (options.upToId !== undefined) request.seq = options.upToId;
  const answer = await jsm.streams.purge(stream, request as PurgeOpts);
  return answer.purged;
}

/** One stored event; `NOT_FOUND` when there is none. */
export async function getEvent(
  jsm: JetStreamManager,
  stream: string,
  which: { readonly id: number } | { readonly lastOn: string },
): Promise<StoredEvent> {
  const query = "id" in which ? { seq: which.id } : { last_by_subj: which.lastOn };
  const found = await jsm.streams.getMessage(stream, query);
  if (found === null) throw eventNotFound(stream, which);
  return storedEvent(found);
}

function storedEvent(m: StoredMsg): StoredEvent {
  const headers: [string, string][] = [];
  for (const [key, values] of m.header ?? []) for (const value of values) headers.push([key, value]);
  return { id: m.seq, subject: m.subject, payload: m.data, headers: headers as RawHeaders, time: m.time.getTime() };
}
