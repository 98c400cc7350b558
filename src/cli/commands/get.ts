import { integerArg, stringOption } from "../args.js";
import type { CommandContext } from "../command.js";
import { eventJson, headerObject, loadDescriptors, showData } from "../descriptors.js";
import { table } from "../format.js";

/** `windshift get STREAM ID`. */
export async function get(ctx: CommandContext): Promise<void> {
  const [stream, idText] = ctx.args as [string, string];
  const id = integerArg(idText, "ID");
  const descriptors = stringOption(ctx.values, "descriptors");
  const registry = descriptors === undefined ? undefined : await loadDescriptors(descriptors);
  const event = await (await ctx.events()).getEvent(stream, id);
  const data = showData(registry, event.type, event.payload);
  const headers = headerObject(event.rawHeaders);
  if (ctx.json) {
    ctx.out.json(eventJson(event, data, headers, { stream, storedAt: event.storedAt.toISOString() }));
    return;
  }
  const rows = [
    ["id", String(event.id)],
    ["stream", stream],
    ["subject", event.subject],
    ["type", event.type || "-"],
    ["stored", event.storedAt.toISOString()],
    ["occurred", event.headers.occurredAt?.toISOString() ?? "-"],
    ["key", event.headers.idempotencyKey ?? "-"],
    ...Object.entries(headers).map(([name, value], i) => [i === 0 ? "headers" : "", `${name}: ${value}`]),
  ];
  for (const line of table([{ heading: "" }, { heading: "" }], rows)) ctx.out.line(line);
  if (data.json !== undefined) {
    ctx.out.line("data");
    for (const line of JSON.stringify(data.json, null, 2).split("\n")) ctx.out.line(`  ${line}`);
  } else {
    ctx.out.line(`data (base64${data.error === undefined ? "" : `, not decoded: ${data.error}`})`);
    ctx.out.line(`  ${data.base64}`);
  }
}
