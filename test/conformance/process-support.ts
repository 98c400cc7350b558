/**
 * What the processor, dead-letter and idempotent conformance tests share:
 * stats polled on the engine's clock, an engine-clock timestamp, a schema
 * whose events the processor cannot decode, and a reader of what a stream
 * holds, all through `Events` and the harness.
 */
import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { expect } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import type { EngineEnv } from "./harness.js";

/**
 * Asserts that `target.stats` comes to match `expected`: a processor counts a
 * settlement once the engine confirmed it, a moment after the consumer's
 * progress shows it.
 */
export async function expectStats(
  env: EngineEnv,
  target: { readonly stats: object },
  expected: Record<string, number>,
): Promise<void> {
  const current = () => target.stats as Record<string, unknown>;
  await env
    .eventually(() => Object.entries(expected).every(([k, v]) => current()[k] === v), {
      what: `stats ${JSON.stringify(expected)}`,
    })
    .catch(() => undefined);
  expect(current()).toMatchObject(expected);
}

/** Publishes one TestEvent per text to `<stream>.<subject>`, in order. */
export async function publishTexts(
  env: EngineEnv,
  stream: string,
  texts: readonly string[],
  subject = "a",
): Promise<void> {
  for (const text of texts) await env.events.publish(`${stream}.${subject}`, TestEventSchema, { text });
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Lets other work run for a random number of turns: handlers that take different times. */
export async function jiggle(): Promise<void> {
  const turns = Math.floor(Math.random() * 4);
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

/**
 * An incompatible version of `windshift.test.v1.TestEvent`, as a publisher
 * with a broken schema change would have it: field 1 is a number instead of
 * the text. Its events carry TestEvent's type name, and a payload that cannot
 * be decoded as the TestEvent the processor knows (`text: 1000` encodes as
 * field 1, varint 1000, which reads as a string 1000 bytes long).
 */
export const IncompatibleTestEventSchema: DescMessage = (() => {
  const file = create(FileDescriptorProtoSchema, {
    name: "incompatible/windshift/test/v1/events.proto",
    package: "windshift.test.v1",
    syntax: "proto3",
    messageType: [
      {
        name: "TestEvent",
        field: [
          {
            name: "text",
            jsonName: "text",
            number: 1,
            label: FieldDescriptorProto_Label.OPTIONAL,
            type: FieldDescriptorProto_Type.UINT32,
          },
        ],
      },
    ],
  });
  const schema = createFileRegistry(file, () => undefined).getMessage(TestEventSchema.typeName);
  if (schema === undefined) throw new Error("the incompatible TestEvent was not built");
  return schema;
})();

/** Publishes an event of TestEvent's type whose payload TestEvent cannot decode. */
export async function publishUndecodable(env: EngineEnv, subject: string): Promise<void> {
  await env.events.publish(subject, IncompatibleTestEventSchema, { text: 1000 } as never);
}
