import type { NatsConnection } from "@nats-io/nats-core";
import { ErrorCode, WindshiftError } from "../../errors.js";

/** A server version as `[major, minor, patch]`. */
export type Version = readonly [number, number, number];

/** Parses `"2.9.10"` (or `"v2.10.0-beta.1"`) into a comparable triple. */
export function parseVersion(text: string): Version {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  if (m === null) return [0, 0, 0];
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Whether `a` is at least `b`. */
export function atLeast(a: Version, b: Version): boolean {
  for (let i = 0; i < 3; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x !== y) return x > y;
  }
  return true;
}

/** The version of the server `nc` is connected to right now. */
export function serverVersion(nc: NatsConnection): Version {
  return parseVersion(nc.info?.version ?? "0.0.0");
}

/**
 * Throws {@link ErrorCode.UnsupportedFeature} unless the connected server is at
 * least `needed`, naming the feature and both versions.
 */
export function requireServer(nc: NatsConnection, needed: Version, feature: string): void {
  const have = serverVersion(nc);
  if (atLeast(have, needed)) return;
  throw new WindshiftError(
    ErrorCode.UnsupportedFeature,
    `${feature} needs nats-server ${needed.join(".")} or newer; the connected server is ${have.join(".")}`,
    { details: { feature, needed: needed.join("."), server: have.join(".") } },
  );
}
