import {
  type Context,
  createTraceState,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from "@opentelemetry/api";
import type { HeaderMap } from "../internal/headers.js";
import { Headers } from "../wire.js";

/** Headers being built for a publish: names as sent, in order. */
export type HeaderList = [name: string, value: string][];

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

const setter: TextMapSetter<HeaderList> = {
  set(carrier, key, value) {
    setHeader(carrier, key, value);
  },
};

/** Sets header `name` in `list`, replacing a value of the same name (any case). */
export function setHeader(list: HeaderList, name: string, value: string): void {
  const lower = name.toLowerCase();
  for (const entry of list) {
    if (entry[0].toLowerCase() === lower) {
      entry[1] = value;
      return;
    }
  }
  list.push([name, value]);
}

const TRACEPARENT_KEY = "traceparent";
const TRACESTATE_KEY = "tracestate";
const WS_TRACEPARENT_KEY = Headers.TraceParent.toLowerCase();
const WS_TRACESTATE_KEY = Headers.TraceState.toLowerCase();

const getter: TextMapGetter<HeaderMap> = {
  keys(carrier) {
    return [...carrier.keys()];
  },
  get(carrier, key) {
    const lower = key.toLowerCase();
    const value = carrier.get(lower);
    if (value !== undefined) return value;
    // windshift-go writes the W3C values under its own names.
    if (lower === TRACEPARENT_KEY) return carrier.get(WS_TRACEPARENT_KEY);
    if (lower === TRACESTATE_KEY) return carrier.get(WS_TRACESTATE_KEY);
    return undefined;
  },
};

/**
 * Writes `ctx`'s trace context into `headers`: through the global propagator
 * (W3C, B3 or whatever the application registered) and, for windshift-go,
 * as W3C values under `WS-Trace-Parent` / `WS-Trace-State`. Writes nothing when
 * `ctx` holds no valid span context.
 */
export function injectTraceContext(ctx: Context, headers: HeaderList): void {
  const sc = trace.getSpanContext(ctx);
  if (sc === undefined || !isSpanContextValid(sc)) return;
  propagation.inject(ctx, headers, setter);
  setHeader(headers, Headers.TraceParent, formatTraceParent(sc));
  const state = sc.traceState?.serialize();
  if (state) setHeader(headers, Headers.TraceState, state);
}

/**
 * Extracts the producer's trace context from `headers`, reading either the
 * standard names or windshift-go's. Works without a registered propagator.
 */
export function extractTraceContext(headers: HeaderMap): Context {
  if (headers.size === 0) return ROOT_CONTEXT;
  const ctx = propagation.extract(ROOT_CONTEXT, headers, getter);
  if (trace.getSpanContext(ctx) !== undefined) return ctx;
  const parent = getter.get(headers, TRACEPARENT_KEY);
  const sc = typeof parent === "string" ? parseTraceParent(parent, getter.get(headers, TRACESTATE_KEY)) : undefined;
  return sc === undefined ? ctx : trace.setSpanContext(ctx, sc);
}

function formatTraceParent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

function parseTraceParent(value: string, state: string | string[] | undefined): SpanContext | undefined {
  const m = TRACEPARENT.exec(value.trim());
  if (m === null || m[1] === "ff") return undefined;
  const sc: SpanContext = {
    traceId: m[2] as string,
    spanId: m[3] as string,
    traceFlags: Number.parseInt(m[4] as string, 16),
    isRemote: true,
  };
  if (typeof state === "string" && state !== "") sc.traceState = createTraceState(state);
  return isSpanContextValid(sc) ? sc : undefined;
}
