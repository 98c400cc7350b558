/**
 * windshift: strongly typed Protobuf event streams over NATS JetStream.
 *
 * @module
 */

export type { BackoffDecider, BackoffOptions } from "./backoff.js";
export type { ConsumerDescription, ConsumerOptions } from "./consumers.js";
export type { DeadLetterOptions, DeadLetterReason, ReplayOptions, ReplayResult } from "./dead-letter.js";
export { ErrorCode, isWindshiftError, WindshiftError } from "./errors.js";
export type { Event, EventHeaders, RejectOptions, SettleOptions } from "./event.js";
export type { Events, EventsOptions } from "./events.js";
export { createEvents } from "./events.js";
export type { FallbackHandler, Handler, UnknownTypePolicy } from "./handlers.js";
export { handle, isRouter, PermanentError, Router, router } from "./handlers.js";
export type { IdempotentOptions } from "./idempotent.js";
export type { Logger } from "./logger.js";
export { isValidName, isValidSubject } from "./names.js";
export type { ConsumerStart, FromEnd, FromId, FromStart, FromTime, SourceStart } from "./position.js";
export type { Middleware, ProcessOptions, Processor, ProcessorStats } from "./processor.js";
export type { PublishedEvent, PublishOptions } from "./publish.js";
export type { RetryOptions } from "./retry.js";
export type { SubscriptionStatus } from "./status.js";
export type { StreamDescription, StreamOptions, StreamSourceOptions } from "./streams.js";
export type { SubscribeOptions, Subscription } from "./subscription.js";
export { Headers } from "./wire.js";
