/**
 * Helpers for testing services that use windshift: the in-memory engine with
 * a test clock (no server, no I/O), and a real `nats-server` to start and stop.
 *
 * @module
 */

export type { MemoryEventsOptions, MemoryStore, MemoryStoreOptions } from "./memory.js";
export { createMemoryEvents, createMemoryStore } from "./memory.js";
export type { NatsServer, NatsServerOptions } from "./nats-server.js";
export { findNatsServer, startNatsServer } from "./nats-server.js";
export type { TestClock, TestClockOptions } from "./test-clock.js";
export { createTestClock } from "./test-clock.js";
