import type { Logger } from "../../internal/logger.js";
import { parseDelivery } from "./ack-subject.js";
import { type Denial, permissionViolation } from "./errors.js";

/**
 * Told about a denial (`cause` is nats.js's error); returns whether it was
 * about something of its own.
 */
export type DenialListener = (denial: Denial, cause: Error) => boolean;

/**
 * Hands the permission violations the server reports on a connection to
 * whoever sent what was refused.
 *
 * nats-server answers a forbidden publish or subscription with an
 * asynchronous `-ERR 'Permissions Violation for Publish to "…"'`, and sends
 * nothing else: no reply ever comes. nats.js fails its own requests with it,
 * but our publishes, pull requests and acks are plain messages with a reply
 * subject, which it knows nothing about; it reports the error on the
 * connection's status, which the engine reads once and passes here. Without
 * this, a forbidden publish waited out its whole timeout and a forbidden pull
 * was sent again forever.
 */
export class Denials {
  readonly #logger: Logger;
  readonly #listeners = new Set<DenialListener>();
  /** The consumers whose fire-and-forget settlements were reported denied. */
  readonly #warned = new Set<string>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Tells `listener` about every denial until the returned function is called. */
  listen(listener: DenialListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Passes on a status error of the connection, if it is a permission violation. */
  dispatch(err: unknown): void {
    const denial = permissionViolation(err);
    if (denial === undefined) return;
    let claimed = false;
    for (const listener of [...this.#listeners]) if (listener(denial, err as Error)) claimed = true;
    if (!claimed) this.#unclaimed(denial);
  }

  /**
   * Nobody waits for it: a fire-and-forget ack, nak, term or progress ping
   * (or something the application sent itself, which is not ours to report).
   * Warned about once per consumer, not once per event.
   */
  #unclaimed(denial: Denial): void {
    if (denial.operation !== "publish" || !denial.subject.startsWith("$JS.ACK.")) return;
    const delivery = parseDelivery(denial.subject);
    const key =
      delivery === undefined ? denial.subject.split(".", 4).join(".") : `${delivery.stream}/${delivery.consumer}`;
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#logger.warn(
      "settlements are denied: the user may not publish to the consumer's ack subjects; its events are redelivered after their processing timeout",
      {
        ...(delivery === undefined ? {} : { stream: delivery.stream, consumer: delivery.consumer }),
        subject: denial.subject,
        operation: denial.operation,
      },
    );
  }
}
