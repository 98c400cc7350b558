import { validationError } from "../errors.js";
import { describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import { type Retry, resolveRetry } from "../internal/retry.js";
import * as v from "../internal/validate.js";
import type { Event, RejectOptions, SettleOptions } from "./event.js";

/** The defaults of {@link SettleOptions}. */
export const settleDefaults: Defaults<SettleOptions> = Object.freeze({
  retry: undefined,
  timeoutMs: 2_000,
  signal: undefined,
});

/** The defaults of {@link RejectOptions}. */
export const rejectDefaults: Defaults<RejectOptions> = Object.freeze({
  ...settleDefaults,
  delayMs: undefined,
  permanent: undefined,
  decider: undefined,
});

/** How one settlement is sent. */
export interface SettleSettings {
  readonly retry: Retry | undefined;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

/** What a rejection asks for. */
export interface Rejection {
  readonly kind: "nak" | "term";
  readonly delayMs: number;
}

/** Validates ack / ping options over the subscription's `retry`. */
export function resolveSettleOptions(options: unknown, retry: Retry | undefined): SettleSettings {
  const o = mergeOptions<SettleOptions>("options", options, settleDefaults);
  return readSettle(o, retry);
}

/** Validates reject options: how to send it, and what it asks for (the decider runs on `event`). */
export function resolveRejectOptions(
  options: unknown,
  retry: Retry | undefined,
  event: Event,
): SettleSettings & Rejection {
  const o = mergeOptions<RejectOptions>("options", options, rejectDefaults);
  const delayMs = v.durationMs("delayMs", o.delayMs);
  const permanent = v.boolean("permanent", o.permanent);
  const decider = o.decider;
  if (decider !== undefined && typeof decider !== "function") {
    throw validationError("decider", `${describe(decider)} is not a function`);
  }
  const given = [delayMs !== undefined, permanent !== undefined, decider !== undefined].filter(Boolean).length;
  if (given > 1) throw validationError("options", "give at most one of delayMs, permanent and decider");
  const settle = readSettle(o, retry);
  if (permanent === true) return { ...settle, kind: "term", delayMs: 0 };
  if (decider !== undefined) {
    const decided = (decider as (e: Event) => unknown)(event);
    if (typeof decided !== "number" || Number.isNaN(decided)) {
      throw validationError("decider", `returned ${describe(decided)}, not a number of milliseconds`);
    }
    if (decided < 0) return { ...settle, kind: "term", delayMs: 0 };
    return { ...settle, kind: "nak", delayMs: Math.min(Math.round(decided), v.MAX_DURATION_MS) };
  }
  return { ...settle, kind: "nak", delayMs: delayMs ?? 0 };
}

function readSettle(
  o: { readonly retry: unknown; readonly timeoutMs: unknown; readonly signal: unknown },
  retry: Retry | undefined,
) {
  return {
    retry: o.retry === undefined ? retry : resolveRetry("retry", o.retry, retry),
    timeoutMs: v.durationMs("timeoutMs", o.timeoutMs, 1) as number,
    signal: v.signal("signal", o.signal),
  };
}
