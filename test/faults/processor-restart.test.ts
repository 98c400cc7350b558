/**
 * A processor (concurrency 8, ordered by subject, failing handlers retried)
 * while its single server is killed and restarted on the same store.
 */
import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { handle } from "../../src/index.js";
import { uniqueName, waitFor } from "../helpers.js";
import { History, summarize } from "./history.js";
import { allHandled, expectIntact, publishLanes, report, since, useFaultServer } from "./support.js";

const env = useFaultServer();

it("a processor rides out a server restart: every acked event handled, keys one at a time, failures retried", async () => {
  const started = performance.now();
  const stream = uniqueName("process");
  await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
  await env.events.ensureConsumer(stream, { name: "worker", from: { start: true }, processingTimeoutMs: 5_000 });

  const history = new History();
  const busy = new Map<string, number>();
  let overlaps = 0;
  let thrown = 0;
  const processor = await env.events.process(
    stream,
    "worker",
    handle(TestEventSchema, async (data, event) => {
      const now = (busy.get(event.subject) ?? 0) + 1;
      busy.set(event.subject, now);
      if (now > 1) overlaps++;
      try {
        await new Promise((r) => setImmediate(r));
        // Every 50th event fails once, to be retried through the restart too.
        if (data.number % 50n === 0n && event.deliveryAttempt === 1) {
          thrown++;
          throw new Error("transient");
        }
        history.handled({
          key: event.headers.idempotencyKey,
          subject: event.subject,
          id: event.id,
          deliveryAttempt: event.deliveryAttempt,
        });
      } finally {
        busy.set(event.subject, now - 1);
      }
    }),
    { concurrency: 8, orderBy: "subject", backoff: { initialDelayMs: 50 } },
  );
  let stopped = false;
  void processor.closed.then(
    () => {
      stopped = true;
    },
    () => {
      stopped = true;
    },
  );

  const publishing = publishLanes(env.events, {
    stream,
    lanes: 8,
    perLane: 500,
    history,
    retry: true,
    ratePerSecond: 1_000,
  });
  await waitFor(() => history.distinctHandled >= 1_000, { timeoutMs: 20_000, what: "processing to be under way" });
  const fault = performance.now();
  await env.server.restart();
  const restartMs = since(fault);

  const { errors } = await publishing;
  await allHandled(history);
  const result = history.check();
  report("processor-restart", {
    restartMs,
    publishErrors: errors.toString(),
    thrown,
    ...processor.stats,
    tookMs: since(started),
  });
  report("processor-restart", { history: summarize(result) });

  expect(stopped, "the processor stopped by itself").toBe(false);
  expect(errors.total, `publishes failed despite retry: ${errors}`).toBe(0);
  expect(result.acked).toBe(4_000);
  expectIntact(result);
  expect(overlaps).toBe(0);
  expect(thrown).toBeGreaterThanOrEqual(80);
  await processor.close();
  await expect(processor.closed).resolves.toBeUndefined();
}, 90_000);
