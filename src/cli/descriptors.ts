/**
 * Message types from `--descriptors` (a Buf image or a `FileDescriptorSet`,
 * as `buf build -o image.binpb` writes them), and events shown with them:
 * their data as Protobuf JSON when the type is known, else base64.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import {
  createFileRegistry,
  type DescMessage,
  fromBinary,
  type JsonValue,
  type Registry,
  toJson,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { EventHeaders } from "../index.js";

/** Reads a Buf image or a binary `FileDescriptorSet` into a registry of its types. */
export async function loadDescriptors(path: string): Promise<Registry> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new Error(`--descriptors ${path}: ${code === "ENOENT" ? "no such file" : String(code ?? err)}`);
  }
  try {
    return createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `--descriptors ${path}: not a Buf image or FileDescriptorSet (build one with "buf build -o image.binpb"): ${reason}`,
    );
  }
}

/** The message type `type` in `registry`, or an error that says where types come from. */
export function messageType(registry: Registry | undefined, type: string, path: string | undefined): DescMessage {
  if (registry === undefined) throw new Error(`--descriptors is needed to encode ${type}`);
  const schema = registry.getMessage(type);
  if (schema === undefined) throw new Error(`--descriptors ${path}: no message type "${type}"`);
  return schema;
}

/** An event's data as shown: Protobuf JSON when its type is known, else its bytes in base64. */
export interface ShownData {
  /** The Protobuf JSON form; `undefined` when not decoded. */
  readonly json: JsonValue | undefined;
  /** The payload in base64. */
  readonly base64: string;
  /** Why the data was not decoded although its type is known. */
  readonly error: string | undefined;
}

/** Decodes `payload` as `type` when `registry` knows it. */
export function showData(registry: Registry | undefined, type: string, payload: Uint8Array): ShownData {
  const base64 = Buffer.from(payload).toString("base64");
  const schema = type === "" ? undefined : registry?.getMessage(type);
  if (registry === undefined || schema === undefined) return { json: undefined, base64, error: undefined };
  try {
    return { json: toJson(schema, fromBinary(schema, payload), { registry }), base64, error: undefined };
  } catch (err) {
    return { json: undefined, base64, error: err instanceof Error ? err.message : String(err) };
  }
}

/** What an event printed by `tail` and `get` has: a delivered `Event` and a `StoredEvent` alike. */
export interface ShownEvent {
  readonly id: number;
  readonly subject: string;
  readonly type: string;
  readonly headers: EventHeaders;
  readonly payload: Uint8Array;
}

/** The event as one JSON object (one line of `tail --json`, the output of `get --json`). */
export function eventJson(
  event: ShownEvent,
  data: ShownData,
  headers: Readonly<Record<string, string>>,
  extra: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> {
  return {
    id: event.id,
    subject: event.subject,
    type: event.type,
    occurredAt: event.headers.occurredAt?.toISOString() ?? null,
    idempotencyKey: event.headers.idempotencyKey ?? null,
    ...extra,
    data: data.json ?? data.base64,
    decoded: data.json !== undefined,
    ...(data.error === undefined ? {} : { decodeError: data.error }),
    headers,
  };
}

/** The data as one line of text: compact Protobuf JSON, or `base64:…`. */
export function dataText(data: ShownData): string {
  if (data.json !== undefined) return JSON.stringify(data.json);
  return data.error === undefined ? `base64:${data.base64}` : `base64:${data.base64} (${data.error})`;
}

/** Raw headers as an object; a repeated name's values joined by `, `. */
export function headerObject(raw: readonly (readonly [string, string])[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of raw) out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  return out;
}
