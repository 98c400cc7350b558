import { integerOption } from "../args.js";
import type { CommandContext } from "../command.js";

/** `windshift dlq replay STREAM`. */
export async function replayDeadLetters(ctx: CommandContext): Promise<void> {
  const [stream] = ctx.args as [string];
  const limit = integerOption(ctx.values, "limit");
  const events = await ctx.events();
  const result = await events.replayDeadLetters(stream, limit === undefined ? {} : { limit });
  if (ctx.json) {
    ctx.out.json(result);
    return;
  }
  ctx.out.line(`replayed ${result.replayed} dead letter${result.replayed === 1 ? "" : "s"} from ${stream}`);
  if (result.duplicates.length > 0) {
    ctx.out.line(
      `left in place, their idempotency key is still inside the original stream's duplicate window: ids ${result.duplicates.join(", ")}`,
    );
  }
  if (result.skipped.length > 0) ctx.out.line(`not dead letters, left alone: ids ${result.skipped.join(", ")}`);
}
