import { describe, expect, it } from "vitest";
import { toMermaid } from "../../src/index.js";
import { describeRun } from "../../src/workflow/inspect.js";
import {
  commitTask,
  decodeRun,
  emitExternal,
  encodeRun,
  eventFirer,
  failAttempt,
  newRun,
  type Requests,
  type RunState,
  START,
  scheduledBy,
  startAttempt,
} from "../../src/workflow/run-state.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const none: Requests = { next: [], emits: [], joins: [] };
const next = (type: string, delayMs = 0) => ({ type, data: bytes(type), delayMs });
const emit = (name: string) => ({ name, type: undefined, data: undefined });
const join = (names: string[], type: string) => ({ names, type, data: bytes(type) });

/** A run whose first task A has started. */
function started(): RunState {
  const run = newRun("flow", "r1", "A", bytes("a"), 1_000);
  startAttempt(run, "1", 1_001);
  return run;
}

describe("workflow run state", () => {
  it("commits a task's requests once: ids in request order, a second commit changes nothing", () => {
    const run = started();
    expect(scheduledBy(run, START)).toEqual([]);
    const requests: Requests = { next: [next("B"), next("C", 500)], emits: [emit("x")], joins: [join(["y"], "D")] };
    expect(commitTask(run, "1", requests, 2_000)).toBe(true);
    expect(run.tasks["2"]).toMatchObject({ type: "B", parent: "1", status: "scheduled", scheduledAt: 2_000 });
    expect(run.tasks["3"]).toMatchObject({ type: "C", parent: "1", notBefore: 2_500 });
    expect(run.tasks["1"]).toMatchObject({ status: "completed", finishedAt: 2_000 });
    expect(run.tasks["1"]?.data).toBeUndefined();
    expect(run.joins).toMatchObject([{ id: 1, names: ["y"], type: "D", by: "1" }]);
    expect(scheduledBy(run, "1")).toEqual(["2", "3"]);

    const before = JSON.stringify(run);
    expect(commitTask(run, "1", { next: [next("Z")], emits: [], joins: [] }, 3_000)).toBe(false);
    expect(JSON.stringify(run)).toBe(before);
  });

  it("lists for publication only the tasks that have not started", () => {
    const run = started();
    commitTask(run, "1", { ...none, next: [next("B"), next("C")] }, 2_000);
    startAttempt(run, "2", 2_100);
    expect(scheduledBy(run, "1")).toEqual(["3"]);
    failAttempt(run, "2", "boom", false, 2_200);
    // Back to scheduled for its retry, but published already.
    expect(run.tasks["2"]).toMatchObject({ status: "scheduled", attempts: 1, error: "boom" });
    expect(scheduledBy(run, "1")).toEqual(["3"]);
  });

  it("fires a join once all its events are emitted, whichever came first, crediting the last emitter", () => {
    const run = started();
    commitTask(run, "1", { next: [next("B"), next("C")], emits: [emit("early")], joins: [] }, 2_000);
    startAttempt(run, "2", 2_001);
    commitTask(run, "2", { ...none, joins: [join(["early", "late"], "D")], emits: [] }, 2_100);
    expect(run.joins[0]?.task).toBeUndefined();
    expect(run.status).toBe("running");
    startAttempt(run, "3", 2_002);
    commitTask(run, "3", { ...none, emits: [emit("late"), emit("early")] }, 2_200);
    expect(run.joins[0]).toMatchObject({ task: "4", firedBy: "3" });
    expect(run.joins[0]?.data).toBeUndefined();
    expect(run.tasks["4"]).toMatchObject({ type: "D", join: 1, status: "scheduled" });
    // The first emit of a name stands.
    expect(run.events.early).toMatchObject({ by: "1", at: 2_000 });
    expect(scheduledBy(run, "3")).toEqual(["4"]);
    startAttempt(run, "4", 2_300);
    commitTask(run, "4", none, 2_400);
    expect(run).toMatchObject({ status: "completed", finishedAt: 2_400 });
  });

  it("records external events once and credits the joins they fire to the event", () => {
    const run = started();
    commitTask(run, "1", { ...none, joins: [join(["paid"], "D")] }, 2_000);
    expect(emitExternal(run, emit("paid"), 3_000)).toBe(true);
    expect(run.joins[0]).toMatchObject({ task: "2", firedBy: eventFirer("paid") });
    expect(scheduledBy(run, eventFirer("paid"))).toEqual(["2"]);
    expect(emitExternal(run, emit("paid"), 4_000)).toBe(false);
    expect(run.events.paid).toMatchObject({ by: "external", at: 3_000 });
  });

  it("fails the run with the first task that fails for good", () => {
    const run = started();
    commitTask(run, "1", { ...none, next: [next("B"), next("C")] }, 2_000);
    startAttempt(run, "2", 2_001);
    failAttempt(run, "2", "gone", true, 2_100);
    startAttempt(run, "3", 2_002);
    failAttempt(run, "3", "also gone", true, 2_200);
    expect(run).toMatchObject({ status: "failed", error: "task 2 (B) failed: gone", finishedAt: 2_100 });
    expect(run.tasks["3"]).toMatchObject({ status: "failed", error: "also gone" });
  });

  it("reads back what it stores, and refuses what it cannot read", () => {
    const run = started();
    expect(decodeRun(encodeRun(run), "r1")).toEqual(run);
    expect(() => decodeRun(bytes("{"), "r1")).toThrow('the state of run "r1" is not JSON');
    expect(() => decodeRun(bytes("[]"), "r1")).toThrow("is not a workflow run");
    expect(() => decodeRun(encodeRun({ ...run, v: 2 }), "r1")).toThrow(
      'the state of run "r1" has format version 2; this windshift reads version 1',
    );
  });
});

describe("toMermaid", () => {
  it("draws tasks, forks, fired and waiting joins, and external events", () => {
    const run = newRun("flow", "r1", "shop.v1.Charge", bytes(""), 0);
    startAttempt(run, "1", 1);
    commitTask(
      run,
      "1",
      {
        next: [next("shop.v1.Reserve")],
        emits: [],
        joins: [join(["reserved", "paid"], "shop.v1.Ship"), join(["never"], "shop.v1.Refund")],
      },
      2,
    );
    startAttempt(run, "2", 3);
    startAttempt(run, "2", 4);
    commitTask(run, "2", { ...none, emits: [emit("reserved")] }, 5);
    emitExternal(run, emit("paid"), 6);
    expect(toMermaid(describeRun(run)).split("\n")).toEqual([
      "flowchart TD",
      '  t1["1. Charge<br/>completed"]:::completed',
      '  t2["2. Reserve<br/>completed, 2 attempts"]:::completed',
      '  t3["3. Ship<br/>scheduled"]:::scheduled',
      '  e_paid(["paid<br/>external"]):::external',
      "  t1 --> t2",
      "  t1 -. join .-> t3",
      '  t2 -- "reserved" --> t3',
      '  e_paid -- "paid" --> t3',
      '  j2{{"Refund<br/>waiting for never"}}:::waiting',
      "  t1 -. join .-> j2",
      "  classDef completed fill:#d3f9d8,stroke:#2b8a3e",
      "  classDef scheduled fill:#f1f3f5,stroke:#868e96",
      "  classDef waiting fill:#fff3bf,stroke:#e67700",
      "  classDef external fill:#f3d9fa,stroke:#862e9c",
    ]);
  });
});
