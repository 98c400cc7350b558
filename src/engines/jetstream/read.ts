import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { raceAbort, throwIfAborted } from "../../internal/abort.js";
import type { RawHeaders } from "../../internal/headers.js";
import type { StoredEvent } from "../engine.js";
import type { Denials } from "./denials.js";
import { type Denial, permissionDenied, toWindshiftError } from "./errors.js";

const FETCH_BATCH = 256;

/**
 * The events in `stream` when the call starts, oldest first: an ephemeral
 * reader without acks counts what there is, and the loop stops there, so
 * that events stored meanwhile are left for the next read. The reader is
 * deleted when the iteration ends, however it ends. A reader the user may
 * not pull from fails with `PERMISSION_DENIED` (nats.js's fetch would only
 * come back empty, and the read would end early without a word).
 */
export async function* readStream(
  jsm: JetStreamManager,
  js: JetStreamClient,
  denials: Denials,
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
    throw toWindshiftError(err, `reading stream "${stream}"`, { stream });
  }
  const next = `$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`;
  let denied: { denial: Denial; cause: Error } | undefined;
  let stopBatch: (() => void) | undefined;
  const unlisten = denials.listen((denial, cause) => {
    if (denial.operation !== "publish" || denial.subject !== next) return false;
    denied = { denial, cause };
    stopBatch?.();
    return true;
  });
  try {
    const consumer = await js.consumers.get(stream, name);
    let seen = 0;
    while (seen < pending) {
      throwIfAborted(signal);
      const batch = await consumer.fetch({ max_messages: Math.min(FETCH_BATCH, pending - seen), expires: 5_000 });
      stopBatch = () => batch.stop();
      if (denied !== undefined) batch.stop();
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
      if (denied !== undefined) {
        throw permissionDenied(`reading stream "${stream}"`, denied.denial, denied.cause);
      }
      if (got === 0) break;
    }
  } catch (err) {
    throw toWindshiftError(err, `reading stream "${stream}"`, { stream });
  } finally {
    unlisten();
    await jsm.consumers.delete(stream, name).catch(() => {});
  }
}
