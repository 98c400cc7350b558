import type { CloudEventsSettings } from "./cloudevents/options.js";
import type { Engine } from "./engines/engine.js";
import type { Clock } from "./internal/clock.js";
import type { Logger } from "./internal/logger.js";
import type { Telemetry } from "./telemetry/telemetry.js";

/**
 * What every operation above the engine works with: the engine, the clock
 * its timers run on, the logger and the telemetry. One per events client.
 */
export interface Runtime {
  readonly engine: Engine;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  /** The client's `cloudEvents` option; `undefined` when off. */
  readonly cloudEvents?: CloudEventsSettings | undefined;
  /** The client's `validate` option: check messages against their rules unless a call says otherwise. */
  readonly validate?: boolean;
}
