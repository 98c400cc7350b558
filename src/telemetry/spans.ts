import {
  type Attributes,
  type Context,
  type Link,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { Attr, errorType } from "./attributes.js";
import type { Telemetry } from "./telemetry.js";

/** Marks `span` failed with `err`, per the conventions. */
export function failSpan(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  span.setAttribute(Attr.ErrorType, errorType(err));
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Seconds since `start` (a `performance.now()` reading). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}

/** Starts the CONSUMER `process` span of an event handed to the user. */
export function startProcessSpan(
  t: Telemetry,
  producer: Context,
  attributes: Attributes,
  subject: string,
): { span: Span; context: Context } {
  const producerSpan = trace.getSpanContext(producer);
  const links: Link[] | undefined = producerSpan ? [{ context: producerSpan }] : undefined;
  const parent = t.traceProcessing === "child" ? producer : trace.deleteSpan(producer);
  const span = t.startSpan(
    `process ${subject}`,
    links === undefined ? { kind: SpanKind.CONSUMER, attributes } : { kind: SpanKind.CONSUMER, attributes, links },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/** Runs a management call (ensureStream, ensureConsumer) inside a CLIENT span. */
export async function withManagementSpan<T>(
  t: Telemetry,
  operation: string,
  parent: Context,
  attributes: Attributes,
  work: () => Promise<T>,
): Promise<T> {
  if (!t.tracing()) return work();
  const span = t.startSpan(
    `${operation} ${String(attributes[Attr.Stream])}`,
    { kind: SpanKind.CLIENT, attributes: { ...t.connection(), [Attr.OperationName]: operation, ...attributes } },
    parent,
  );
  try {
    return await work();
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}
