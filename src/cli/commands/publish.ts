import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { requiredOption, stringOption } from "../args.js";
import type { CommandContext } from "../command.js";
import { loadDescriptors, messageType } from "../descriptors.js";

/** `windshift publish SUBJECT`. */
export async function publish(ctx: CommandContext): Promise<void> {
  const [subject] = ctx.args as [string];
  const typeName = requiredOption(ctx.values, "type", "publish");
  const text = requiredOption(ctx.values, "data", "publish");
  const descriptors = requiredOption(ctx.values, "descriptors", "publish");
  const key = stringOption(ctx.values, "key");
  const registry = await loadDescriptors(descriptors);
  const schema = messageType(registry, typeName, descriptors);
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new Error(`--data: not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  let message: ReturnType<typeof fromJson>;
  try {
    message = fromJson(schema, json, { registry });
  } catch (err) {
    throw new Error(`--data: not a ${typeName}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const events = await ctx.events();
  const published = await events.publish(subject, schema, message, key === undefined ? {} : { idempotencyKey: key });
  if (ctx.json) {
    ctx.out.json({ id: published.id, stream: published.stream, duplicate: published.duplicate });
    return;
  }
  ctx.out.line(
    published.duplicate
      ? `duplicate: ${published.stream} already has id ${published.id} with key "${key}"; nothing stored`
      : `published id ${published.id} to ${published.stream}`,
  );
}
