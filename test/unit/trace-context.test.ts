import {
  context,
  createTraceState,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headerMap } from "../../src/internal/headers.js";
import {
  extractTraceContext,
  type HeaderList,
  injectTraceContext,
  setHeader,
} from "../../src/telemetry/trace-context.js";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID = "b7ad6b7169203331";
const PARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;
const STATELESS: SpanContext = { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED };

const SAMPLED: SpanContext = {
  traceId: TRACE_ID,
  spanId: SPAN_ID,
  traceFlags: TraceFlags.SAMPLED,
  traceState: createTraceState("vendor=value,other=1"),
};

/** A context holding a span with `sc`, as a producer's publish would have. */
const within = (sc: SpanContext) => trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext(sc));

/** The remote span context extracted from raw headers, as an event delivers them. */
function extracted(raw: [string, string][]) {
  const sc = trace.getSpanContext(extractTraceContext(headerMap(raw)));
  return sc === undefined ? undefined : { ...sc, traceState: sc.traceState?.serialize() };
}

describe("setHeader", () => {
  it("appends a new header", () => {
    const list: HeaderList = [["A", "1"]];
    setHeader(list, "B", "2");
    expect(list).toEqual([
      ["A", "1"],
      ["B", "2"],
    ]);
  });

  it("replaces the value of a header of the same name in any case, keeping its spelling", () => {
    const list: HeaderList = [
      ["X", "0"],
      ["TraceParent", "old"],
    ];
    setHeader(list, "traceparent", "new");
    expect(list).toEqual([
      ["X", "0"],
      ["TraceParent", "new"],
    ]);
  });
});

describe("injectTraceContext without a registered propagator", () => {
  it("writes windshift-go's headers", () => {
    const list: HeaderList = [];
    injectTraceContext(within(SAMPLED), list);
    expect(list).toEqual([
      ["WS-Trace-Parent", PARENT],
      ["WS-Trace-State", "vendor=value,other=1"],
    ]);
  });

  it("writes the trace flags as two hex digits and no state when there is none", () => {
    const list: HeaderList = [];
    injectTraceContext(within({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.NONE }), list);
    expect(list).toEqual([["WS-Trace-Parent", `00-${TRACE_ID}-${SPAN_ID}-00`]]);
  });

  it("writes nothing without a valid span context", () => {
    for (const ctx of [
      ROOT_CONTEXT,
      context.active(),
      within({ ...SAMPLED, traceId: "0".repeat(32) }),
      within({ ...SAMPLED, spanId: "0".repeat(16) }),
    ]) {
      const list: HeaderList = [["X", "1"]];
      injectTraceContext(ctx, list);
      expect(list).toEqual([["X", "1"]]);
    }
  });
});

describe("with the W3C propagator registered", () => {
  beforeAll(() => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(() => {
    propagation.disable();
  });

  it("injects the W3C headers and windshift-go's", () => {
    const list: HeaderList = [];
    injectTraceContext(within(SAMPLED), list);
    expect(list).toEqual([
      ["traceparent", PARENT],
      ["tracestate", "vendor=value,other=1"],
      ["WS-Trace-Parent", PARENT],
      ["WS-Trace-State", "vendor=value,other=1"],
    ]);
  });

  it("replaces trace headers already in the list, whatever their case", () => {
    const list: HeaderList = [
      ["TraceParent", "stale"],
      ["ws-trace-parent", "stale"],
      ["Other", "kept"],
    ];
    injectTraceContext(within(STATELESS), list);
    expect(list).toEqual([
      ["TraceParent", PARENT],
      ["ws-trace-parent", PARENT],
      ["Other", "kept"],
    ]);
  });

  it("writes nothing without a valid span context", () => {
    const list: HeaderList = [];
    injectTraceContext(ROOT_CONTEXT, list);
    expect(list).toEqual([]);
  });

  it.each<[string, [string, string][]]>([
    [
      "the standard names",
      [
        ["traceparent", PARENT],
        ["tracestate", "vendor=value"],
      ],
    ],
    [
      "windshift-go's names",
      [
        ["WS-Trace-Parent", PARENT],
        ["WS-Trace-State", "vendor=value"],
      ],
    ],
  ])("extracts %s", (_, raw) => {
    expect(extracted(raw)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: "vendor=value",
    });
  });

  it("round-trips through inject and extract", () => {
    const list: HeaderList = [];
    injectTraceContext(within(SAMPLED), list);
    expect(extracted(list)).toMatchObject({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED });
  });
});

describe("extractTraceContext without a registered propagator", () => {
  it("returns the root context for no headers", () => {
    expect(extractTraceContext(headerMap([]))).toBe(ROOT_CONTEXT);
  });

  it.each<[string, [string, string][]]>([
    [
      "the standard names",
      [
        ["traceparent", PARENT],
        ["tracestate", "vendor=value"],
      ],
    ],
    [
      "windshift-go's names",
      [
        ["WS-Trace-Parent", PARENT],
        ["WS-Trace-State", "vendor=value"],
      ],
    ],
    [
      "names in another case",
      [
        ["TRACEPARENT", PARENT],
        ["TraceState", "vendor=value"],
      ],
    ],
  ])("extracts %s as a remote span context", (_, raw) => {
    expect(extracted(raw)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: "vendor=value",
    });
  });

  it("prefers the standard names over windshift-go's", () => {
    const other = `00-${"1".repeat(32)}-${"2".repeat(16)}-00`;
    expect(
      extracted([
        ["WS-Trace-Parent", other],
        ["traceparent", PARENT],
      ]),
    ).toMatchObject({ traceId: TRACE_ID, spanId: SPAN_ID });
  });

  it("reads a traceparent without a tracestate", () => {
    expect(extracted([["traceparent", `00-${TRACE_ID}-${SPAN_ID}-00`]])).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: TraceFlags.NONE,
      isRemote: true,
      traceState: undefined,
    });
  });

  it.each([
    ["garbage", "not a traceparent"],
    ["version ff", `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ["a zero trace id", `00-${"0".repeat(32)}-${SPAN_ID}-01`],
    ["a zero span id", `00-${TRACE_ID}-${"0".repeat(16)}-01`],
    ["upper-case hex", `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ["a short trace id", `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ["an empty value", ""],
  ])("ignores a traceparent with %s", (_, value) => {
    expect(extracted([["traceparent", value]])).toBeUndefined();
    expect(extracted([["WS-Trace-Parent", value]])).toBeUndefined();
  });

  it("ignores unrelated headers", () => {
    expect(extracted([["WS-Data-Type", "x.v1.Y"]])).toBeUndefined();
  });
});
