/**
 * Workflows on JetStream: what a task costs. Three loops, alternating round
 * by round, each on fresh streams (untimed set-up and checks):
 *
 * - fork/join: `n` runs of a 3-task workflow, ChargeCard → `next`
 *   ReserveStock, which emits "stock-reserved"; ChargeCard's join on that
 *   event runs Ship;
 * - single task: `3n` runs of a workflow whose one task schedules nothing;
 * - process: `3n` events through `events.process` with a trivial handler,
 *   the loop a task's handler would otherwise be in.
 *
 * The runs (or events) are all started (published) before the worker (or
 * processor) starts, 64 in flight; the timed part is from the worker's start
 * until every run completed (every event handled) and the worker closed, so
 * that the rows compare the consuming side alone, as the consume scenarios
 * do. Every loop handles the same number of tasks (events). The starts are
 * timed on their own. Workers and processors run with the same concurrency
 * and the defaults otherwise (confirmed acks).
 *
 * There is no raw nats.js equivalent of a workflow: the comparison is the
 * process loop.
 *
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { createEvents, type Events, handle, type Workflow, type WorkflowWorker, workflow } from "windshift";
import {
  ChargeCardSchema,
  ReserveStockSchema,
  ShipSchema,
  StockReservedSchema,
} from "../gen/windshift/demo/v1/checkout_pb.js";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { eventData, type Payload } from "./drivers.js";
import { median } from "./stats.js";

/** Handlers at once, in the workers and the processor. */
export const WORKFLOW_CONCURRENCY = 64;
/** Starts (publishes) awaiting their outcome at once, before a round's timed part. */
const START_WINDOW = 64;
/** How long a round's timed part may take before it fails. */
const ROUND_DEADLINE_MS = 120_000;

/** One loop's result. */
export interface WorkflowLoopResult {
  readonly id: "fork-join" | "single-task" | "process";
  readonly title: string;
  /** Runs (events, for process) per round. */
  readonly count: number;
  /** Tasks per run (1 for process: one event). */
  readonly tasksPerRun: number;
  /** Median over the rounds: runs (events) completed per second. */
  readonly runsPerSec: number;
  readonly roundsRunsPerSec: readonly number[];
  /** Median over the rounds: tasks (events) per second. */
  readonly tasksPerSec: number;
  /** Wall time per task (event) at the median rate, in microseconds. */
  readonly perTaskUs: number;
  /** Median over the rounds of the untimed start: wall time per `startWorkflow` (per publish, for process), 64 in flight. */
  readonly startUs: number;
  /** Tasks per second over the process loop's events per second (medians); not for process. */
  readonly ratioToProcess?: number;
  /** The same, round by round (the loops alternate within a round). */
  readonly roundRatiosToProcess?: readonly number[];
}

/** The workflow section of the report. */
export interface WorkflowReport {
  readonly payloadBytes: number;
  readonly rounds: number;
  readonly concurrency: number;
  readonly loops: readonly WorkflowLoopResult[];
}

interface Round {
  /** Seconds from the worker's (processor's) start until all done and closed. */
  readonly seconds: number;
  /** Seconds the starts (publishes) took. */
  readonly startSeconds: number;
}

type Loop = (n: number) => Promise<Round>;

/** Runs `call(i)` for `i` below `count`, `window` at once. */
async function windowed(count: number, window: number, call: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await call(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, worker));
}

/** Resolves when `done` does; rejects if `closed` reports a failure first, or after the deadline. */
async function until(done: Promise<void>, closed: Promise<Error | undefined>, what: () => string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what()} after ${ROUND_DEADLINE_MS} ms`)), ROUND_DEADLINE_MS);
  });
  try {
    const failure = await Promise.race([done, closed.then((err) => err ?? new Error("closed")), deadline]);
    if (failure instanceof Error) throw failure;
  } finally {
    clearTimeout(timer);
  }
}

/** A promise and the function that resolves it once `count` distinct keys were seen. */
function counter(count: number): { seen: Set<string>; add(key: string): void; done: Promise<void> } {
  const seen = new Set<string>();
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    seen,
    add(key) {
      seen.add(key);
      if (seen.size === count) resolve();
    },
    done,
  };
}

/**
 * The workflow loops' shared shape: ensure `flow`, start `n` runs (timed on
 * their own), run a worker until `finished` and close it (timed), check that
 * every run completed, delete the stream and bucket.
 */
async function workflowRound(
  events: Events,
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  flow: Workflow,
  n: number,
  start: (i: number) => Promise<unknown>,
  finished: { done: Promise<void>; seen: Set<string> },
): Promise<Round> {
  const { stream, bucket } = await events.ensureWorkflow(flow);
  try {
    const started = performance.now();
    await windowed(n, START_WINDOW, start);
    const startSeconds = (performance.now() - started) / 1_000;
    const begin = performance.now();
    const worker: WorkflowWorker = await events.runWorkflow(flow, { concurrency: WORKFLOW_CONCURRENCY });
    try {
      await until(finished.done, worker.closed, () => `${flow.name}: ${finished.seen.size} of ${n} runs done`);
    } finally {
      // Waits for the last tasks' commits and acks.
      await worker.close();
    }
    const seconds = (performance.now() - begin) / 1_000;
    // Not timed: every run completed.
    let notCompleted = 0;
    await windowed(n, START_WINDOW, async (i) => {
      const run = await events.inspectWorkflow(flow, `run-${i}`);
      if (run.status !== "completed") notCompleted++;
    });
    if (notCompleted > 0) throw new Error(`${flow.name}: ${notCompleted} of ${n} runs not completed`);
    return { seconds, startSeconds };
  } finally {
    await jsm.streams.delete(stream).catch(() => {});
    await jsm.streams.delete(`KV_${bucket}`).catch(() => {});
  }
}

/** Runs the three loops for `rounds` alternating rounds: `runs` fork/join runs, 3 × `runs` of the others. */
export async function runWorkflowBench(
  nc: NatsConnection,
  prefix: string,
  runs: number,
  rounds: number,
  payload: Payload,
  progress: (text: string) => void,
): Promise<WorkflowReport> {
  const events = createEvents(nc);
  const jsm = await jetstreamManager(nc);
  let serial = 0;
  let sink = 0;

  const forkJoin: Loop = (n) => {
    const shipped = counter(n);
    const flow = workflow(`${prefix}_wf_forkjoin_${serial++}`)
      .task(ChargeCardSchema, (charge, ctx) => {
        ctx.next(ReserveStockSchema, { orderId: charge.orderId });
        ctx.join(["stock-reserved"], ShipSchema, { orderId: charge.orderId });
      })
      .task(ReserveStockSchema, (reserve, ctx) => {
        ctx.emit("stock-reserved", StockReservedSchema, { orderId: reserve.orderId, sku: "kettle", quantity: 1 });
      })
      .task(ShipSchema, (_ship, ctx) => {
        shipped.add(ctx.runId);
      });
    const start = (i: number) =>
      events.startWorkflow(flow, ChargeCardSchema, { orderId: `order-${i}`, amount: 3_499n }, { runId: `run-${i}` });
    return workflowRound(events, jsm, flow, n, start, shipped);
  };

  const singleTask: Loop = (n) => {
    const handled = counter(n);
    const flow = workflow(`${prefix}_wf_single_${serial++}`).task(TestEventSchema, (data, ctx) => {
      sink ^= data.text.length;
      handled.add(ctx.runId);
    });
    const start = (i: number) =>
      events.startWorkflow(flow, TestEventSchema, eventData(i, payload), { runId: `run-${i}` });
    return workflowRound(events, jsm, flow, n, start, handled);
  };

  const processLoop: Loop = async (n) => {
    const stream = `${prefix}_wf_process_${serial++}`;
    await events.ensureStream(stream, { subjects: [`${stream}.>`] });
    try {
      const started = performance.now();
      await windowed(n, START_WINDOW, (i) =>
        events.publish(`${stream}.created`, TestEventSchema, eventData(i, payload)),
      );
      const startSeconds = (performance.now() - started) / 1_000;
      const consumer = await events.ensureConsumer(stream, { name: "process", from: { start: true } });
      const handled = counter(n);
      const begin = performance.now();
      const processor = await events.process(
        stream,
        consumer.name,
        handle(TestEventSchema, (data, event) => {
          sink ^= data.text.length;
          handled.add(event.id.toString());
        }),
        { concurrency: WORKFLOW_CONCURRENCY },
      );
      try {
        await until(handled.done, processor.closed, () => `${stream}: ${handled.seen.size} of ${n} events handled`);
      } finally {
        // Waits for the acks of the events handled last.
        await processor.close();
      }
      const seconds = (performance.now() - begin) / 1_000;
      const info = await jsm.consumers.info(stream, consumer.name);
      if (info.ack_floor.stream_seq < n) {
        throw new Error(`${stream}: the server's ack floor is ${info.ack_floor.stream_seq}, expected ${n}`);
      }
      return { seconds, startSeconds };
    } finally {
      await jsm.streams.delete(stream).catch(() => {});
    }
  };

  const loops: { id: WorkflowLoopResult["id"]; title: string; count: number; tasksPerRun: number; run: Loop }[] = [
    {
      id: "fork-join",
      title: 'workflow, 3 tasks: ChargeCard next ReserveStock + join on its "stock-reserved" → Ship',
      count: runs,
      tasksPerRun: 3,
      run: forkJoin,
    },
    {
      id: "single-task",
      title: "workflow, 1 task (schedules nothing)",
      count: 3 * runs,
      tasksPerRun: 1,
      run: singleTask,
    },
    {
      id: "process",
      title: "events.process, trivial handler, confirmed",
      count: 3 * runs,
      tasksPerRun: 1,
      run: processLoop,
    },
  ];

  const measured = new Map<string, Round[]>(loops.map((l) => [l.id, []]));
  // One warm-up round each, untimed: the first round pays for the JIT.
  for (const loop of loops) await loop.run(Math.max(1, Math.floor(loop.count / 5)));
  for (let round = 1; round <= rounds; round++) {
    for (const loop of loops) {
      const r = await loop.run(loop.count);
      measured.get(loop.id)?.push(r);
      progress(
        `workflow ${loop.id} round ${round}/${rounds}: ${Math.round(loop.count / r.seconds).toLocaleString("en-US")} ` +
          `${loop.id === "process" ? "events" : "runs"}/s`,
      );
    }
  }
  if (sink === -1) throw new Error("unreachable");

  const taskRates = (loop: (typeof loops)[number]) =>
    (measured.get(loop.id) ?? []).map((r) => (loop.count * loop.tasksPerRun) / r.seconds);
  const processLoopDef = loops.find((l) => l.id === "process");
  const processRates = processLoopDef === undefined ? [] : taskRates(processLoopDef);
  const results = loops.map((loop): WorkflowLoopResult => {
    const rs = measured.get(loop.id) ?? [];
    const runRates = rs.map((r) => loop.count / r.seconds);
    const tasks = taskRates(loop);
    const tasksPerSec = median(tasks);
    const base = {
      id: loop.id,
      title: loop.title,
      count: loop.count,
      tasksPerRun: loop.tasksPerRun,
      runsPerSec: median(runRates),
      roundsRunsPerSec: runRates,
      tasksPerSec,
      perTaskUs: 1e6 / tasksPerSec,
      startUs: median(rs.map((r) => (r.startSeconds * 1e6) / loop.count)),
    };
    if (loop.id === "process") return base;
    return {
      ...base,
      ratioToProcess: tasksPerSec / median(processRates),
      roundRatiosToProcess: tasks.map((rate, i) => rate / (processRates[i] ?? Number.NaN)),
    };
  });
  return { payloadBytes: payload.bytes, rounds, concurrency: WORKFLOW_CONCURRENCY, loops: results };
}
