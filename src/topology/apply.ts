import { ErrorCode, WindshiftError } from "../errors.js";
import { throwIfAborted } from "../internal/abort.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import type { Runtime } from "../runtime.js";
import { planTopology, type TopologyChange, type TopologyPlan } from "./plan.js";
import { resolveTopology, type Topology } from "./topology.js";

/** Options for `plan`. */
export interface PlanOptions {
  /**
   * Also delete the streams (not those windshift manages: `KV_…` buckets,
   * `WORKFLOW_…` streams) and the durable consumers of declared streams
   * that the topology does not declare.
   * @default false
   */
  readonly prune?: boolean;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

/** Options for `apply`. */
export interface ApplyOptions extends PlanOptions {
  /**
   * Only plan: return the changes without making them.
   * @default false
   */
  readonly dryRun?: boolean;
}

/** The defaults of {@link ApplyOptions} (and of {@link PlanOptions}, without `dryRun`). */
export const applyDefaults: Defaults<ApplyOptions> = Object.freeze({ prune: false, dryRun: false, signal: undefined });
const planDefaults: Defaults<PlanOptions> = Object.freeze({ prune: false, signal: undefined });

/** See `Events.plan`. */
export async function plan(rt: Runtime, topology: Topology, options?: PlanOptions): Promise<TopologyPlan> {
  const resolved = resolveTopology(topology);
  const o = mergeOptions<PlanOptions>("options", options, planDefaults);
  const signal = v.signal("signal", o.signal);
  throwIfAborted(signal);
  return planTopology(rt, resolved, v.boolean("prune", o.prune) as boolean, signal);
}

/** See `Events.apply`. */
export async function apply(rt: Runtime, topology: Topology, options?: ApplyOptions): Promise<TopologyPlan> {
  const resolved = resolveTopology(topology);
  const o = mergeOptions<ApplyOptions>("options", options, applyDefaults);
  const prune = v.boolean("prune", o.prune) as boolean;
  const dryRun = v.boolean("dryRun", o.dryRun) as boolean;
  const signal = v.signal("signal", o.signal);
  throwIfAborted(signal);
  const planned = await planTopology(rt, resolved, prune, signal);
  const impossible = planned.changes.filter((c) => c.action === "replace");
  if (impossible.length > 0) {
    throw new WindshiftError(
      ErrorCode.Validation,
      `nothing was changed: ${impossible.map((c) => `${describeChange(c)}: ${c.reason}`).join("; ")}`,
      { details: { changes: impossible } },
    );
  }
  if (dryRun) return planned;
  const streams = new Map(resolved.streams.map((s) => [s.name, s]));
  const consumers = new Map(resolved.consumers.map((c) => [`${c.stream}/${c.name}`, c]));
  for (const change of planned.changes) {
    throwIfAborted(signal);
    const stream = change.stream ?? change.name;
    switch (change.action) {
      case "create":
      case "update":
        if (change.kind === "stream") await rt.engine.ensureStream(declared(streams, change.name), signal);
        else await rt.engine.ensureConsumer(stream, declared(consumers, `${stream}/${change.name}`), signal);
        break;
      case "delete":
        if (change.kind === "stream") await rt.engine.deleteStream(change.name, signal);
        else await rt.engine.deleteConsumer(stream, change.name, signal);
        break;
      default:
        break;
    }
  }
  return planned;
}

/** What the plan's change was made from: always there, as the plan came from the same declarations. */
function declared<T>(map: ReadonlyMap<string, T>, key: string): T {
  const found = map.get(key);
  if (found === undefined) throw new WindshiftError(ErrorCode.Server, `no declaration for "${key}"`);
  return found;
}

/** `stream "orders"` or `consumer "orders"/"billing"`. */
export function describeChange(change: TopologyChange): string {
  return change.kind === "stream" ? `stream "${change.name}"` : `consumer "${change.stream}"/"${change.name}"`;
}
