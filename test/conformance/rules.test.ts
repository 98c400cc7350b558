/**
 * Messages checked against their `buf.validate` rules (protovalidate): on
 * publish before anything is sent, in a processor before the handler runs,
 * and on demand with `event.validate()`.
 */
import { expect, it } from "vitest";
import { RuleErrorSchema, SignupSchema, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import {
  ErrorCode,
  type Event,
  type Events,
  Headers,
  handle,
  isWindshiftError,
  router,
  type Violation,
  violationsOf,
  workflow,
} from "../../src/index.js";
import { describeEngines, type EngineEnv, nextOf, streamWithWorker, uniqueName } from "./harness.js";
import { expectStats, publishUndecodable } from "./process-support.js";
import { storedCount, storedEvents, windshiftError } from "./support.js";
import { runReaches } from "./workflow-support.js";

const VALID = { email: "ada@example.com", name: "Ada", age: 36, tags: ["math"], labels: { lang: "en" } };

/** A stream capturing `<stream>.>` with a consumer "worker", and a dead-letter stream capturing `<dlq>.>`. */
async function setup(env: EngineEnv) {
  const dlq = uniqueName("dlq");
  await env.events.ensureStream(dlq, { subjects: [`${dlq}.>`] });
  return { ...(await streamWithWorker(env.events)), dlq };
}

/** Publishes `data` as a Signup without checking it, as a producer that does not validate would. */
function publishUnchecked(events: Events, subject: string, data: Record<string, unknown>) {
  return events.publish(subject, SignupSchema, data, { validate: false });
}

describeEngines("buf.validate rules", (env) => {
  it("refuse a publish that breaks them, listing every violation, and store nothing", async () => {
    const { stream } = await setup(env);
    const err = await windshiftError(
      env.events.publish(
        `${stream}.signup`,
        SignupSchema,
        { email: "not an email", name: "", age: 7, tags: ["a", "b", "c", "d"], labels: { x: "short key" } },
        { validate: true },
      ),
    );
    expect(err.code).toBe(ErrorCode.InvalidMessage);
    expect(err.details.type).toBe(SignupSchema.typeName);
    const violations = violationsOf(err) as Violation[];
    expect(violations.map((v) => [v.field, v.rule, v.ruleId, v.forKey])).toEqual([
      ["email", "string.email", "string.email", false],
      ["name", "string.min_len", "string.min_len", false],
      ["age", "uint32.gte", "uint32.gte_lte", false],
      ["tags", "repeated.max_items", "repeated.max_items", false],
      ['labels["x"]', "map.keys.string.min_len", "string.min_len", true],
    ]);
    for (const v of violations) expect(v.message.length).toBeGreaterThan(0);
    expect(err.message).toContain("windshift.test.v1.Signup breaks its buf.validate rules: email:");
    expect(err.message).toContain("[repeated.max_items]");
    expect(await storedCount(env, stream)).toBe(0);
  });

  it("check the message-level CEL rule, and let a valid message through", async () => {
    const { stream } = await setup(env);
    const err = await windshiftError(
      env.events.publish(`${stream}.signup`, SignupSchema, { ...VALID, referrer: VALID.email }, { validate: true }),
    );
    expect(violationsOf(err)).toEqual([
      {
        field: "",
        rule: "",
        ruleId: "signup.referrer_not_self",
        message: "a signup cannot refer itself",
        forKey: false,
      },
    ]);
    const ok = await env.events.publish(`${stream}.signup`, SignupSchema, VALID, { validate: true });
    expect(ok.duplicate).toBe(false);
    const stored = await storedEvents(env, stream, { schema: SignupSchema });
    expect(stored.map((e) => e.data.email)).toEqual([VALID.email]);
  });

  it("are the client's default with validate: true, and a call can turn them off", async () => {
    const { stream } = await setup(env);
    const strict = await env.client({ validate: true });
    const err = await windshiftError(strict.publish(`${stream}.signup`, SignupSchema, { ...VALID, age: 200 }));
    expect(err.code).toBe(ErrorCode.InvalidMessage);
    expect(violationsOf(err)?.map((v) => v.ruleId)).toEqual(["uint32.gte_lte"]);
    // A message without rules is always valid.
    await strict.publish(`${stream}.plain`, TestEventSchema, { text: "" });
    await strict.publish(`${stream}.signup`, SignupSchema, { ...VALID, age: 200 }, { validate: false });
    expect(await storedCount(env, stream)).toBe(2);
  });

  it("that cannot be evaluated fail the publish as VALIDATION, naming the type; nothing is stored", async () => {
    const { stream } = await setup(env);
    const err = await windshiftError(
      env.events.publish(`${stream}.rule`, RuleErrorSchema, { name: "abc" }, { validate: true }),
    );
    expect(err.code).toBe(ErrorCode.Validation);
    expect(err.message).toContain("the buf.validate rules of windshift.test.v1.RuleError cannot be evaluated");
    expect(await storedCount(env, stream)).toBe(0);
    // The same rule on data it can evaluate: broken, or kept.
    const broken = await windshiftError(
      env.events.publish(`${stream}.rule`, RuleErrorSchema, { name: "-4" }, { validate: true }),
    );
    expect(violationsOf(broken)?.[0]?.ruleId).toBe("rule_error.name_number");
    await env.events.publish(`${stream}.rule`, RuleErrorSchema, { name: "4" }, { validate: true });
    expect(await storedCount(env, stream)).toBe(1);
  });

  it("make a processor give an invalid event up at once: dead-lettered with reason invalid and its violations", async () => {
    const { stream, consumer, dlq } = await setup(env);
    // 40 map keys too short: more violations than the header holds.
    const labels = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [String.fromCharCode(65 + i), "v"]));
    const bad = await publishUnchecked(env.events, `${stream}.signup`, { ...VALID, name: "", labels });
    await publishUnchecked(env.events, `${stream}.signup`, VALID);
    const handled: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(SignupSchema, (data) => {
        handled.push(data.email);
      }),
      { validate: true, maxAttempts: 5, deadLetter: { subject: `${dlq}.signups` } },
    );
    await env.settled(stream, consumer, 2);
    await expectStats(env, processor, { acked: 1, failed: 1, retried: 0, deadLettered: 1 });
    expect(handled).toEqual([VALID.email]);

    const [letter] = (await storedEvents(env, dlq)) as Event[];
    const h = (letter as Event).headers;
    expect(h.get(Headers.DeadLetterReason)).toBe("invalid");
    expect(h.get(Headers.DeadLetterAttempts)).toBe("1");
    expect(h.get(Headers.DeadLetterSequence)).toBe(String(bad.id));
    expect(h.get(Headers.DeadLetterError)).toMatch(
      /^WindshiftError: windshift\.test\.v1\.Signup breaks its buf\.validate rules: name:/,
    );
    const header = h.get(Headers.DeadLetterViolations) as string;
    expect(header.length).toBeLessThanOrEqual(2_048);
    const listed = JSON.parse(header) as Violation[];
    expect(listed.length).toBeGreaterThan(5);
    expect(listed.length).toBeLessThan(40);
    expect(listed[0]).toMatchObject({ field: "name", rule: "string.min_len", ruleId: "string.min_len", forKey: false });
    expect(listed[1]).toMatchObject({ rule: "map.keys.string.min_len", forKey: true });
  });

  it("follow the client's default in a processor with typed handlers; without dead letters the event is rejected", async () => {
    const { stream, consumer } = await setup(env);
    await publishUnchecked(env.events, `${stream}.signup`, { ...VALID, age: 1 });
    await env.events.publish(`${stream}.plain`, TestEventSchema, { text: "no rules" });
    const strict = await env.client({ validate: true });
    const handled: string[] = [];
    await using processor = await strict.process(
      stream,
      consumer,
      router()
        .on(SignupSchema, (data) => {
          handled.push(data.email);
        })
        .on(TestEventSchema, (data) => {
          handled.push(data.text);
        }),
    );
    await env.settled(stream, consumer, 2);
    await expectStats(env, processor, { acked: 1, rejected: 1 });
    expect(handled).toEqual(["no rules"]);
  });

  it("leave a plain handler alone when only the client asks for them, and refuse validate: true on one", async () => {
    const { stream, consumer } = await setup(env);
    await publishUnchecked(env.events, `${stream}.signup`, { ...VALID, age: 1 });
    const strict = await env.client({ validate: true });
    const err = await windshiftError(strict.process(stream, consumer, () => {}, { validate: true }));
    expect(err.code).toBe(ErrorCode.Validation);
    expect(err.message).toContain("validate: needs typed handlers");
    const seen: number[] = [];
    await using processor = await strict.process(stream, consumer, (event) => {
      seen.push(event.id);
    });
    await env.settled(stream, consumer, 1);
    await expectStats(env, processor, { acked: 1 });
    expect(seen).toHaveLength(1);
  });

  it("broken by a message the handler publishes are the handler's failure, retried like any other", async () => {
    const { stream, consumer } = await setup(env);
    await publishUnchecked(env.events, `${stream}.signup`, VALID);
    let attempts = 0;
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(SignupSchema, async () => {
        attempts++;
        await env.events.publish(`${stream}.out`, SignupSchema, { ...VALID, name: "" }, { validate: true });
      }),
      { validate: true, maxAttempts: 2, backoff: { initialDelayMs: 10 } },
    );
    await env.settled(stream, consumer, 1);
    await expectStats(env, processor, { failed: 2, retried: 1, rejected: 1 });
    expect(attempts).toBe(2);
  });

  it("that cannot be evaluated on a consumed event are a handler failure: retried until the attempts run out", async () => {
    const { stream, consumer } = await setup(env);
    await env.events.publish(`${stream}.rule`, RuleErrorSchema, { name: "abc" });
    let handled = 0;
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(RuleErrorSchema, () => {
        handled++;
      }),
      { validate: true, maxAttempts: 2, backoff: { initialDelayMs: 10 } },
    );
    await env.settled(stream, consumer, 1);
    await expectStats(env, processor, { failed: 2, retried: 1, rejected: 1 });
    expect(handled).toBe(0);
  });

  it("are checked on demand by event.validate() in a subscription", async () => {
    const { stream, consumer } = await setup(env);
    await publishUnchecked(env.events, `${stream}.signup`, { ...VALID, email: "nope" });
    await publishUnchecked(env.events, `${stream}.signup`, VALID);
    await publishUndecodable(env, `${stream}.signup`);
    const sub = await env.events.subscribe(stream, consumer, { schema: SignupSchema });
    const it = sub[Symbol.asyncIterator]();
    const invalid = await nextOf(it);
    expect((await invalid.validate()).map((v) => [v.field, v.ruleId])).toEqual([["email", "string.email"]]);
    await invalid.reject({ permanent: true });
    const valid = await nextOf(it);
    expect(await valid.validate()).toEqual([]);
    await valid.ack();
    const undecodable = await nextOf(it);
    const err = await windshiftError(undecodable.validate());
    expect(err.code).toBe(ErrorCode.InvalidData);
    expect(isWindshiftError(err, ErrorCode.InvalidMessage)).toBe(false);
    await undecodable.ack();
    await sub.close();
  });

  it("check what a workflow starts with and what its tasks ask for, with the client's validate: true", async () => {
    const strict = await env.client({ validate: true });
    const flow = workflow(uniqueName("signup"))
      .task(SignupSchema, (data, ctx) => {
        // Asks for a next task whose data breaks the rules: the task fails at once.
        ctx.next(TestEventSchema, { text: data.name });
        if (data.name === "Grace") ctx.next(SignupSchema, { ...VALID, age: 0 });
      })
      .task(TestEventSchema, () => {});
    await strict.ensureWorkflow(flow);
    const refused = await windshiftError(
      strict.startWorkflow(flow, SignupSchema, { ...VALID, email: "x" }, { runId: "r0" }),
    );
    expect(refused.code).toBe(ErrorCode.InvalidMessage);
    expect((await windshiftError(strict.inspectWorkflow(flow, "r0"))).code).toBe(ErrorCode.NotFound);

    await using _worker = await strict.runWorkflow(flow, { maxAttempts: 3, backoff: { initialDelayMs: 10 } });
    await strict.startWorkflow(flow, SignupSchema, VALID, { runId: "ok" });
    await strict.startWorkflow(flow, SignupSchema, { ...VALID, name: "Grace" }, { runId: "bad" });
    const ok = await runReaches(env, strict, flow, "ok", "completed");
    expect(ok.tasks.map((t) => t.status)).toEqual(["completed", "completed"]);
    const bad = await runReaches(env, strict, flow, "bad", "failed");
    expect(bad.tasks.map((t) => [t.status, t.attempts])).toEqual([["failed", 1]]);
    expect(bad.tasks[0]?.error).toContain("windshift.test.v1.Signup breaks its buf.validate rules: age:");
  });
});
