import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { raceAbort, throwIfAborted } from "../../internal/abort.js";
import type { RawHeaders } from "../../internal/headers.js";
import type { StoredEvent } from "../engine.js";
import { toWindshiftError } from "./errors.js";

const FETCH_BATCH = 256;

/**
 * The events in `stream` when the call starts, oldest first: an ephemeral
 * reader without acks counts what there is, and the loop stops there, so
 * that events stored meanwhile are left for the next read. The reader is
 * deleted when the iteration ends, however it ends.
 */
export async function* readStream(
  jsm: JetStreamManager,
  js: JetStreamClient,
  stream: string,
  options: { readonly subject?: string; readonly signal?: AbortSignal },
): AsyncGenerator<StoredEvent> {
  const { subject, signal } = options;
  throwIfAborted(signal);
  let name: string;
  let pending: number;
  try {
    const info = await raceAbort(
      jsm.consumers.add(stream, {
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.All,
        ...(subject === undefined ? {} : { filter_subject: subject }),
        inactive_threshold: 60_000_000_000,
        mem_storage: true,
      }),
      signal,
    );
    name = info.name;
    pending = info.num_pending;
  } catch (err) {
    throw toWindshiftError(err, `reading stream "${stream}"`);
  }
  try {
    const consumer = await js.consumers.get(stream, name);
    let seen = 0;
    while (seen < pending) {
      throwIfAborted(signal);
      const batch = await consumer.fetch({ max_messages: Math.min(FETCH_BATCH, pending - seen), expires: 5_000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        seen++;
        const headers: [string, string][] = [];
        for (const [key, values] of m.headers ?? []) for (const value of values) headers.push([key, value]);
        yield {
          id: m.seq,
          subject: m.subject,
          payload: m.data,
          headers: headers as RawHeaders,
          time: m.time.getTime(),
        };
        if (seen >= pending) break;
      }
      if (got === 0) break;
    }
  } catch (err) {
    throw toWindshiftError(err, `reading stream "${stream}"`);
  } finally {
    await jsm.consumers.delete(stream, name).catch(() => {});
  }
}
