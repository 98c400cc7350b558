/**
 * Helpers for testing services that use windshift against a real server.
 *
 * @module
 */

export type { NatsServer, NatsServerOptions } from "./nats-server.js";
export { findNatsServer, startNatsServer } from "./nats-server.js";
