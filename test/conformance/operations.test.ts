import { createRegistry } from "@bufbuild/protobuf";
import { expect, it } from "vitest";
import { OtherEventSchema, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode } from "../../src/index.js";
import { windshiftError } from "../helpers.js";
import { describeEngines, nextOf, streamWithWorker, uniqueName } from "./harness.js";

describeEngines("operations: streams", (env) => {
  it("reports a stream's configuration and contents", async () => {
    const name = uniqueName();
    const ensured = await env.events.ensureStream(name, { subjects: [`${name}.>`], maxEventsPerSubject: 10 });
    const empty = await env.events.streamInfo(name);
    expect(empty).toEqual({
      name,
      config: ensured.config,
      state: {
        events: 0,
        bytes: 0,
        firstId: 0,
        firstTime: undefined,
        lastId: 0,
        lastTime: undefined,
        subjects: 0,
        consumers: 0,
      },
    });
    const before = env.now();
    for (const subject of ["a", "b", "a"])
      await env.events.publish(`${name}.${subject}`, TestEventSchema, { text: subject });
    await env.events.ensureConsumer(name, { name: "reader" });
    const info = await env.events.streamInfo(name);
    expect(info.state).toMatchObject({ events: 3, firstId: 1, lastId: 3, subjects: 2, consumers: 1 });
    expect(info.state.bytes).toBeGreaterThan(0);
    expect(info.state.firstTime?.getTime()).toBeGreaterThanOrEqual(before - 1_000);
    expect(info.state.lastTime?.getTime()).toBeGreaterThanOrEqual(info.state.firstTime?.getTime() ?? 0);

    const listed = await env.events.listStreams();
    expect(listed.find((s) => s.name === name)).toEqual(info);
    const names = listed.map((s) => s.name);
    expect(names).toEqual([...names].sort());
  });

  it("purges all events, those on a subject, those below an id, or all but the newest", async () => {
    const name = uniqueName();
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    const publish = (subject: string) => env.events.publish(`${name}.${subject}`, TestEventSchema, { text: subject });
    for (const subject of ["a", "b", "a", "b", "a", "c"]) await publish(subject);
    expect(await env.events.purgeStream(name, { subject: `${name}.b` })).toEqual({ purged: 2 });
    expect(await env.events.purgeStream(name, { subject: `${name}.a`, keepLast: 1 })).toEqual({ purged: 2 });
    // Left: 5 (a) and 6 (c).
    expect((await env.events.streamInfo(name)).state).toMatchObject({ events: 2, firstId: 5, lastId: 6, subjects: 2 });
    expect(await env.events.purgeStream(name, { upToId: 1 })).toEqual({ purged: 0 });
    expect(await env.events.purgeStream(name, { upToId: 6 })).toEqual({ purged: 1 });
    expect(await env.events.purgeStream(name, { subject: `${name}.*`, keepLast: 5 })).toEqual({ purged: 0 });
    const bytes = (await env.events.streamInfo(name)).state.bytes;
    expect(await env.events.purgeStream(name)).toEqual({ purged: 1 });
    const emptied = await env.events.streamInfo(name);
    expect(emptied.state).toMatchObject({ events: 0, firstId: 7, lastId: 6, subjects: 0, firstTime: undefined });
    expect(emptied.state.bytes).toBeLessThan(bytes);
    // Ids go on.
    expect((await publish("a")).id).toBe(7);
  });

  it("deletes a stream: its subscribers end with NOT_FOUND, its subjects are unbound", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "x" });
    await using sub = await env.events.subscribe(stream, consumer);
    const it = sub[Symbol.asyncIterator]();
    await (await nextOf(it)).ack();
    await env.events.deleteStream(stream);
    const ended = await windshiftError(async () => {
      for (;;) await nextOf(it);
    });
    expect(ended.code).toBe(ErrorCode.NotFound);
    expect((await windshiftError(env.events.streamInfo(stream))).code).toBe(ErrorCode.NotFound);
    expect((await windshiftError(env.events.deleteStream(stream))).code).toBe(ErrorCode.NotFound);
    const publish = env.events.publish(`${stream}.a`, TestEventSchema, { text: "y" });
    expect((await windshiftError(publish)).code).toBe(ErrorCode.UnboundSubject);
  });
});

describeEngines("operations: consumers", (env) => {
  it("reports a consumer's lag, unacked and redelivered events, last delivered and acked ids", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 60_000 });
    for (let i = 1; i <= 5; i++) await env.events.publish(`${stream}.a`, TestEventSchema, { text: String(i) });
    const fresh = await env.events.consumerInfo(stream, consumer);
    expect(fresh).toMatchObject({
      stream,
      name: consumer,
      config: { from: { start: true }, processingTimeoutMs: 60_000 },
      state: { pending: 5, unsettled: 0, redelivered: 0, lastDeliveredId: 0, lastAckedId: 0 },
    });
    await using sub = await env.events.subscribe(stream, consumer, { prefetch: 2 });
    const it = sub[Symbol.asyncIterator]();
    const first = await nextOf(it);
    const second = await nextOf(it);
    expect([first.id, second.id]).toEqual([1, 2]);
    await first.ack();
    await second.reject();
    // Others may come first (prefetched); they stay unacked.
    for (let event = await nextOf(it); event.id !== 2; event = await nextOf(it)) {
      expect(event.deliveryAttempt).toBe(1);
    }
    const state = await env.eventually(async () => {
      const s = (await env.events.consumerInfo(stream, consumer)).state;
      return s.redelivered === 1 && s.lastAckedId === 1 ? s : undefined;
    });
    // Everything delivered is unacked but 1; what was not delivered is the lag.
    expect(state.lastDeliveredId).toBeGreaterThanOrEqual(2);
    expect(state).toEqual({
      pending: 5 - state.lastDeliveredId,
      unsettled: state.lastDeliveredId - 1,
      redelivered: 1,
      lastDeliveredId: state.lastDeliveredId,
      lastAckedId: 1,
    });
  });

  it("lists and deletes consumers; a deleted consumer's subscribers end with NOT_FOUND", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await env.events.ensureConsumer(stream, { name: "audit", subjects: [`${stream}.b`] });
    const listed = await env.events.listConsumers(stream);
    const ephemeral = await env.events.ensureConsumer(stream, {});
    expect(listed.map((c) => [c.name, c.durable, c.config.subjects])).toEqual([
      ["audit", true, [`${stream}.b`]],
      [consumer, true, []],
    ]);
    expect((await env.events.consumerInfo(stream, ephemeral.name)).durable).toBe(false);
    await env.events.deleteConsumer(stream, ephemeral.name);
    await using sub = await env.events.subscribe(stream, "audit");
    const it = sub[Symbol.asyncIterator]();
    await env.events.deleteConsumer(stream, "audit");
    const ended = await windshiftError(async () => {
      for (;;) await nextOf(it);
    });
    expect(ended.code).toBe(ErrorCode.NotFound);
    expect((await env.events.listConsumers(stream)).map((c) => c.name)).toEqual([consumer]);
    expect((await windshiftError(env.events.consumerInfo(stream, "audit"))).code).toBe(ErrorCode.NotFound);
    expect((await windshiftError(env.events.deleteConsumer(stream, "audit"))).code).toBe(ErrorCode.NotFound);
    expect((await windshiftError(env.events.listConsumers(uniqueName("none")))).code).toBe(ErrorCode.NotFound);
  });
});

describeEngines("operations: events read back", (env) => {
  it("reads an event by id and the last one on a subject, typed and with its headers", async () => {
    const name = uniqueName();
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    const occurredAt = new Date("2026-01-02T03:04:05.678Z");
    await env.events.publish(`${name}.a`, TestEventSchema, { text: "first" }, { idempotencyKey: "k1", occurredAt });
    await env.events.publish(`${name}.b`, OtherEventSchema, {});
    await env.events.publish(`${name}.a`, TestEventSchema, { text: "second" }, { headers: { "X-Tenant": "t1" } });

    const first = await env.events.getEvent(name, 1, { schema: TestEventSchema });
    expect(first).toMatchObject({ id: 1, subject: `${name}.a`, stream: name, type: "windshift.test.v1.TestEvent" });
    expect(first.data.text).toBe("first");
    expect(first.headers.idempotencyKey).toBe("k1");
    expect(first.headers.occurredAt).toEqual(occurredAt);
    expect(first.storedAt).toBeInstanceOf(Date);

    const last = await env.events.getLastEvent(name, `${name}.a`, {
      registry: createRegistry(TestEventSchema, OtherEventSchema),
    });
    expect(last.id).toBe(3);
    expect((last.data as { text?: string }).text).toBe("second");
    expect(last.headers.get("x-tenant")).toBe("t1");
    expect(last.rawHeaders).toContainEqual(["X-Tenant", "t1"]);
    expect(last.is(TestEventSchema)).toBe(true);

    const other = await env.events.getEvent(name, 2);
    expect((await windshiftError(() => other.data)).code).toBe(ErrorCode.Validation);
    expect((await windshiftError(() => other.decode(TestEventSchema))).code).toBe(ErrorCode.InvalidData);
    expect(other.decode(OtherEventSchema).$typeName).toBe("windshift.test.v1.OtherEvent");

    expect((await windshiftError(env.events.getEvent(name, 99))).code).toBe(ErrorCode.NotFound);
    expect((await windshiftError(env.events.getLastEvent(name, `${name}.none`))).code).toBe(ErrorCode.NotFound);
    await env.events.purgeStream(name, { upToId: 2 });
    expect((await windshiftError(env.events.getEvent(name, 1))).code).toBe(ErrorCode.NotFound);
    expect((await windshiftError(env.events.getEvent(uniqueName("none"), 1))).code).toBe(ErrorCode.NotFound);
  });

  it("refuses bad input before anything is sent", async () => {
    const invalid = async (work: () => unknown) => {
      const err = await windshiftError(async () => work());
      expect(err.code).toBe(ErrorCode.Validation);
      return err.message;
    };
    expect(await invalid(() => env.events.streamInfo("bad name"))).toContain("stream:");
    expect(await invalid(() => env.events.getEvent("s", 0))).toContain("id: 0 is not a whole number");
    expect(await invalid(() => env.events.getLastEvent("s", "s.*"))).toContain("without wildcards");
    expect(await invalid(() => env.events.purgeStream("s", { keepLast: 1, upToId: 2 }))).toBe(
      "keepLast: cannot be given with upToId",
    );
    expect(await invalid(() => env.events.purgeStream("s", { keepLast: -1 }))).toContain("keepLast");
    expect(await invalid(() => env.events.listStreams({ timeoutMs: 0 }))).toContain("timeoutMs");
    expect(await invalid(() => env.events.consumerInfo("s", "c", { wait: 1 } as never))).toContain(
      "options.wait: is not a known option",
    );
    expect(
      await invalid(() => env.events.getEvent("s", 1, { schema: TestEventSchema, registry: createRegistry() })),
    ).toContain("give schema or registry, not both");
    const aborted = await windshiftError(env.events.listStreams({ signal: AbortSignal.abort() }));
    expect(aborted.code).toBe(ErrorCode.Aborted);
  });
});
