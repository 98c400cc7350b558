import { createRegistry, type DescMessage, type Message, type MessageShape, type Registry } from "@bufbuild/protobuf";
import type { Event } from "../consume/event.js";
import { validationError } from "../errors.js";
import { assertSchema } from "../internal/codec.js";
import { describe } from "../internal/names.js";

/**
 * Handles one event of a known type. Return (or resolve) to have the event
 * acked; throw (or reject) to have it retried, or dead-lettered when the error
 * is a {@link PermanentError} or the attempts are used up.
 *
 * `signal` is aborted when the processor closes without waiting any longer
 * for this handler: its event has been given back for redelivery, so stop
 * the work (pass the signal on to `fetch` and the like).
 *
 * @typeParam T - the decoded message type.
 */
export type Handler<T extends Message = Message> = (data: T, event: Event<T>, signal: AbortSignal) => unknown;

/**
 * Handles an event of a type no route is for, or every event of a processor
 * given a function instead of a router. It gets the undecoded event, and
 * `signal` as a {@link Handler} does.
 */
export type FallbackHandler = (event: Event, signal: AbortSignal) => unknown;

/**
 * What happens to an event whose type no route handles: `"reject"` rejects it
 * permanently (dead-lettering it when the processor has a dead-letter
 * subject); `"nak"` gives it back for redelivery with the retry delay, as a
 * failure (for rolling deploys where another instance may know the type);
 * a function handles it.
 */
export type UnknownTypePolicy = "reject" | "nak" | FallbackHandler;

/**
 * Maps message types to handlers, each typed by its schema. Build one with
 * {@link router} or {@link handle}.
 *
 * @example
 * ```ts
 * const handlers = router()
 *   .on(OrderCreatedSchema, async (order) => reserveStock(order.orderId))
 *   .on(OrderShippedSchema, async (shipped) => notify(shipped.orderId))
 *   .otherwise("nak");
 * ```
 */
export interface Router {
  /**
   * Routes events of `schema`'s type to `handler`, which receives them
   * decoded. One handler per type.
   */
  on<Desc extends DescMessage>(schema: Desc, handler: Handler<MessageShape<Desc>>): Router;
  /**
   * What to do with events of types no route handles.
   * @default "reject"
   */
  otherwise(policy: UnknownTypePolicy): Router;
  /** The handled message types, by full name. */
  readonly types: readonly string[];
}

/** What a processor reads from a router. */
export interface RouteTable {
  /** The handled message types, by full name. */
  readonly types: readonly string[];
  /** The route for a type name. */
  route(type: string): { readonly schema: DescMessage; readonly handler: Handler } | undefined;
  /** The unknown-type policy. */
  readonly unknown: UnknownTypePolicy;
  /** A registry of the routed schemas, for decoding `event.data`. */
  registry(): Registry;
}

/** Where a router keeps its table; `Symbol.for`, so that routers from another loaded copy of windshift work too. */
const ROUTES = Symbol.for("windshift.router.routes");

class RouterImpl implements Router {
  readonly #routes = new Map<string, { schema: DescMessage; handler: Handler }>();
  #unknown: UnknownTypePolicy = "reject";
  #registry: Registry | undefined;

  on<Desc extends DescMessage>(schema: Desc, handler: Handler<MessageShape<Desc>>): this {
    assertSchema("schema", schema);
    if (typeof handler !== "function") throw validationError("handler", `${describe(handler)} is not a function`);
    if (this.#routes.has(schema.typeName)) {
      throw validationError("schema", `${schema.typeName} already has a handler`);
    }
    this.#routes.set(schema.typeName, { schema, handler: handler as unknown as Handler });
    this.#registry = undefined;
    return this;
  }

  otherwise(policy: UnknownTypePolicy): this {
    if (policy !== "reject" && policy !== "nak" && typeof policy !== "function") {
      throw validationError("policy", `${describe(policy)} is not "reject", "nak" or a function`);
    }
    this.#unknown = policy;
    return this;
  }

  get types(): readonly string[] {
    return [...this.#routes.keys()];
  }

  [ROUTES](): RouteTable {
    const routes = this.#routes;
    return {
      types: this.types,
      route: (type) => routes.get(type),
      unknown: this.#unknown,
      registry: () => {
        this.#registry ??= createRegistry(...[...routes.values()].map((r) => r.schema));
        return this.#registry;
      },
    };
  }
}

/** Starts an empty {@link Router}; add routes with {@link Router.on}. */
export function router(): Router {
  return new RouterImpl();
}

/**
 * A router with the one route `schema` → `handler`: the handlers of a
 * processor whose consumer carries a single type.
 *
 * @example
 * ```ts
 * await events.process("orders", "billing", handle(OrderCreatedSchema, async (order, event) => {
 *   await bill(order, { idempotencyKey: event.headers.idempotencyKey });
 * }));
 * ```
 */
export function handle<Desc extends DescMessage>(schema: Desc, handler: Handler<MessageShape<Desc>>): Router {
  return new RouterImpl().on(schema, handler);
}

/** Whether `value` is a {@link Router} (from any loaded copy of windshift). */
export function isRouter(value: unknown): value is Router {
  return routeTableOf(value) !== undefined;
}

/** The route table of a router (from any loaded copy of windshift), or `undefined` for anything else. */
export function routeTableOf(value: unknown): RouteTable | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const table = (value as { [ROUTES]?: unknown })[ROUTES];
  return typeof table === "function" ? (table.call(value) as RouteTable) : undefined;
}

const PERMANENT_NAME = "PermanentError";

/**
 * Thrown by a handler to say that retrying cannot help (the event is wrong,
 * not the moment): the event is rejected permanently, and dead-lettered when
 * the processor has a dead-letter subject.
 *
 * @example
 * ```ts
 * if (order.amount < 0) throw new PermanentError("negative amount");
 * ```
 */
export class PermanentError extends Error {
  /** Always `"PermanentError"`: recognised by it across loaded copies of windshift. */
  override name = PERMANENT_NAME;

  /**
   * Recognises a permanent error by name, so one from another loaded copy of
   * windshift (or a subclass) counts too.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      value instanceof Error &&
      (value.name === PERMANENT_NAME || Function.prototype[Symbol.hasInstance].call(PermanentError, value))
    );
  }
}
