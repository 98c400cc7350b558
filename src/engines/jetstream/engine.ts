import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { raceAbort, throwIfAborted } from "../../internal/abort.js";
import { realClock } from "../../internal/clock.js";
import type { Logger } from "../../internal/logger.js";
import type { ConnectionFacts, Engine, FeedSink } from "../engine.js";
import { append } from "./append.js";
import { ensureConsumer, toConsumerState } from "./consumers.js";
import { Settlements } from "./delivery.js";
import { Denials } from "./denials.js";
import { apiError, isConsumerNotFound, type Target, toWindshiftError } from "./errors.js";
import { openKeyValue } from "./key-value.js";
import { getEvent, listConsumers, listStreams, purgeStream, toStreamState } from "./operations.js";
import { Puller } from "./puller.js";
import { readStream } from "./read.js";
import { Requester } from "./requester.js";
import { ensureStream } from "./streams.js";

/** How the JetStream engine is set up. */
export interface JetStreamEngineOptions {
  readonly logger: Logger;
  /** How many publishes may await the stream's acknowledgement at once. */
  readonly maxPublishesInFlight: number;
}

/** How long one pull request waits on the server. */
const PULL_EXPIRES_MS = 5_000;

/**
 * The engine over a NATS connection the user owns: streams, consumers and
 * key-value buckets are JetStream's own, publishes are plain messages with a
 * reply subject on one shared inbox, and consumers are read with a pull loop
 * of our own (see {@link Puller}).
 */
export function createJetStreamEngine(nc: NatsConnection, options: JetStreamEngineOptions): Engine {
  const { logger } = options;
  const js = jetstream(nc);
  let manager: Promise<JetStreamManager> | undefined;
  let publishes: Requester | undefined;
  let confirms: Requester | undefined;
  let facts: ConnectionFacts | undefined;
  const denials = new Denials(logger);
  const watching = watchServer(nc, {
    // A reconnect may land on another server, with another client id.
    reconnected: () => {
      facts = undefined;
    },
    error: (err) => denials.dispatch(err),
  });
  // checkAPI: false saves a round trip; the first real call reports problems.
  const jsm = (): Promise<JetStreamManager> => {
    manager ??= jetstreamManager(nc, { checkAPI: false });
    return manager;
  };
  const requester = (): Requester => {
    publishes ??= new Requester(nc, denials, { maxInFlight: options.maxPublishesInFlight, coalesce: false });
    return publishes;
  };
  // Confirmed settlements have their own requester, so that acks never queue
  // behind a full publish window; the server's max ack pending bounds them.
  const settlements = new Settlements(nc, () => {
    confirms ??= new Requester(nc, denials, { maxInFlight: Number.MAX_SAFE_INTEGER, coalesce: true });
    return confirms;
  });
  const streamsCapturing = async (subject: string, timeoutMs: number): Promise<string[]> => {
    const reply = await nc.request("$JS.API.STREAM.NAMES", JSON.stringify({ subject }), { timeout: timeoutMs });
    const answer = reply.json<{ streams?: string[] | null; error?: { description?: string } }>();
    if (answer.error !== undefined) throw apiError(`looking up the streams of "${subject}"`, answer.error);
    return answer.streams ?? [];
  };
  const exists = async (stream: string, consumer: string): Promise<boolean> => {
    try {
      await (await jsm()).consumers.info(stream, consumer);
      return true;
    } catch (err) {
      if (isConsumerNotFound(err)) return false;
      throw err;
    }
  };
  const appendContext = { nc, logger, requester, streamsCapturing };
  /**
   * One management call: aborted by `signal`, its failures mapped (`what`
   * says what it was; a missing stream or consumer of `target` is named).
   */
  const call = async <T>(
    signal: AbortSignal | undefined,
    what: string,
    work: (m: JetStreamManager) => Promise<T>,
    target?: Target,
  ): Promise<T> => {
    throwIfAborted(signal);
    try {
      return await raceAbort(jsm().then(work), signal);
    } catch (err) {
      throw toWindshiftError(err, what, target);
    }
  };

  return {
    clock: realClock,
    connection() {
      // Asked several times per event for metric attributes: read the
      // connection only when it may have changed (see watchServer).
      if (facts === undefined) {
        let server = "";
        try {
          server = nc.getServer();
        } catch {
          // Not connected right now: report what we have, and look again next time.
        }
        const fresh = Object.freeze(connectionFacts(nc, server));
        // The client id arrives with the server's INFO: keep looking until it has.
        if (server !== "" && fresh.clientId !== undefined) facts = fresh;
        return fresh;
      }
      return facts;
    },
    maxPayload: () => nc.info?.max_payload,
    transactions: false,
    ensureStream: (config, signal) =>
      call(signal, `ensureStream("${config.name}")`, (m) =>
        ensureStream(m, nc, logger, config, (subject) => streamsCapturing(subject, 1_000)),
      ),
    async streamsCapturing(subject, signal) {
      throwIfAborted(signal);
      try {
        return await raceAbort(streamsCapturing(subject, 5_000), signal);
      } catch (err) {
        throw toWindshiftError(err, `looking up the stream of "${subject}"`);
      }
    },
    ensureConsumer: (stream, config, signal) =>
      call(
        signal,
        `ensureConsumer("${stream}"${config.name === undefined ? "" : `, "${config.name}"`})`,
        (m) => ensureConsumer(m, nc, logger, stream, config),
        { stream },
      ),
    consumerState: (stream, consumer, signal) =>
      call(
        signal,
        `consumer "${stream}"/"${consumer}"`,
        async (m) => toConsumerState(await m.consumers.info(stream, consumer)),
        { stream, consumer },
      ),
    listConsumers: (stream, signal) =>
      call(signal, `listing the consumers of stream "${stream}"`, (m) => listConsumers(m, stream), { stream }),
    deleteConsumer: (stream, consumer, signal) =>
      call(
        signal,
        `deleting consumer "${stream}"/"${consumer}"`,
        async (m) => {
          await m.consumers.delete(stream, consumer);
        },
        { stream, consumer, deleting: true },
      ),
    streamState: (stream, signal) =>
      call(signal, `stream "${stream}"`, async (m) => toStreamState(await m.streams.info(stream)), { stream }),
    listStreams: (signal) => call(signal, "listing streams", listStreams),
    deleteStream: (stream, signal) =>
      call(
        signal,
        `deleting stream "${stream}"`,
        async (m) => {
          await m.streams.delete(stream);
        },
        { stream, deleting: true },
      ),
    purgeStream: (stream, purge, signal) =>
      call(signal, `purging stream "${stream}"`, (m) => purgeStream(m, stream, purge), { stream }),
    getEvent: (stream, which, signal) =>
      call(signal, `reading an event of stream "${stream}"`, (m) => getEvent(m, stream, which), {
        stream,
        event: which,
      }),
    append: (event, appendOptions) => append(appendContext, event, appendOptions),
    consume(stream: string, consumer: string, sink: FeedSink, feedOptions) {
      const puller = new Puller(
        { nc, logger, settlements, denials, exists: () => exists(stream, consumer) },
        { stream, consumer, limit: feedOptions.limit, expiresMs: PULL_EXPIRES_MS },
        sink,
      );
      puller.start();
      return puller;
    },
    read(stream, readOptions) {
      return {
        [Symbol.asyncIterator]: () => {
          const reading = jsm().then((m) => readStream(m, js, denials, stream, readOptions));
          return {
            next: () => reading.then((r) => r.next()),
            return: () => reading.then((r) => r.return(undefined)),
          };
        },
      };
    },
    deleteEvent: (stream, id, signal) =>
      call(
        signal,
        `deleting event ${id} of stream "${stream}"`,
        async (m) => {
          await m.streams.deleteMessage(stream, id, false);
        },
        { stream, event: { id }, deleting: true },
      ),
    async keyValue(bucket, how, signal) {
      throwIfAborted(signal);
      return raceAbort(
        openKeyValue({ logger, jsm, requester, append: (e, o) => append(appendContext, e, o) }, bucket, how),
        signal,
      );
    },
    async close() {
      watching.stop();
      settlements.flush();
      publishes?.close();
      confirms?.close();
    },
  };
}

/**
 * The engine's one reader of the connection's status, until stopped: calls
 * `reconnected` after every reconnect, and `error` with every asynchronous
 * error the server reports (permission violations among them).
 */
function watchServer(nc: NatsConnection, on: { reconnected(): void; error(err: unknown): void }): { stop(): void } {
  const status = nc.status();
  void (async () => {
    for await (const s of status) {
      if (s.type === "reconnect") on.reconnected();
      else if (s.type === "error") on.error(s.error);
    }
  })().catch(() => {});
  return status as unknown as { stop(): void };
}

function connectionFacts(nc: NatsConnection, server: string): ConnectionFacts {
  const clientId = nc.info?.client_id;
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(server);
  return {
    system: "nats",
    ...(clientId === undefined ? {} : { clientId: String(clientId) }),
    ...(m ? { serverAddress: m[1] as string, serverPort: Number(m[2]) } : {}),
  };
}
