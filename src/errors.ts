/**
 * Stable error codes carried by every {@link WindshiftError}.
 *
 * Codes never change between releases; messages may.
 */
export const ErrorCode = {
  /** A name, subject, option or argument failed validation. Nothing was sent. */
  Validation: "VALIDATION",
  /** No stream captures the subject an event was published to. */
  UnboundSubject: "UNBOUND_SUBJECT",
  /**
   * The stream exists but did not answer: it has no leader (an election, or a
   * lost quorum). The event was not stored; retrying later can succeed.
   */
  Unavailable: "UNAVAILABLE",
  /**
   * An `expectedLastId` (or `expectedLastSubjectId`, or a key-value
   * `expectedRevision`) check failed: another event was stored first.
   * `details` names the `option`, the `expected` id and the `actual` one
   * (the id to publish with after reading what was stored).
   */
  WrongSequence: "WRONG_SEQUENCE",
  /** The server did not acknowledge a publish in time; the outcome is unknown. */
  PublishTimeout: "PUBLISH_TIMEOUT",
  /** Data could not be encoded or decoded, or is not of the expected type. */
  InvalidData: "INVALID_DATA",
  /**
   * A message breaks its `buf.validate` rules (checked with the `validate`
   * option). `details.violations` lists them (read them with `violationsOf`);
   * nothing was sent.
   */
  InvalidMessage: "INVALID_MESSAGE",
  /** The connected server is too old for a requested feature. */
  UnsupportedFeature: "UNSUPPORTED_FEATURE",
  /**
   * The stream or consumer (or event, or key-value bucket) does not exist.
   * The message names it and the call that creates it; `details` has the
   * `stream` (and the `consumer`).
   */
  NotFound: "NOT_FOUND",
  /** The event was already acked or rejected by this process. */
  AlreadySettled: "ALREADY_SETTLED",
  /** The operation was cancelled through an `AbortSignal`. */
  Aborted: "ABORTED",
  /** The subscription or connection is closed. */
  Closed: "CLOSED",
  /** A settle or management call timed out. */
  Timeout: "TIMEOUT",
  /**
   * The user the connection authenticated as may not do this: the server
   * refused to let it publish to a subject (an event, a pull request, an ack,
   * a management call under `$JS.API`) or to subscribe to one. `details`
   * names the `operation` (`"publish"` or `"subscribe"`) and the `subject`.
   * Nothing was stored or changed, and retrying does not help until the
   * permissions change. JetStream only.
   */
  PermissionDenied: "PERMISSION_DENIED",
  /** The server refused the request for another reason (see `cause`). */
  Server: "SERVER",
} as const;

/** The union of all {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const ERROR_NAME = "WindshiftError";

/**
 * The one error class thrown by windshift. Branch on {@link WindshiftError.code}.
 *
 * @example
 * ```ts
 * try {
 *   await events.publish("orders.created", OrderCreatedSchema, order, { expectedLastId: 41 });
 * } catch (err) {
 *   if (isWindshiftError(err, ErrorCode.WrongSequence)) {
 *     // someone else wrote first: reload and try again
 *   }
 * }
 * ```
 */
export class WindshiftError extends Error {
  /** Always `"WindshiftError"`: {@link isWindshiftError} recognises errors of any loaded copy by it. */
  override name = ERROR_NAME;

  /** The stable code of this error. */
  readonly code: ErrorCode;

  /**
   * Extra facts about the failure, such as the server's error code
   * (`jsErrorCode`), the field that failed validation (`field`), the
   * `stream` and `consumer` not found, or the `expected` and `actual` ids of
   * a `WRONG_SEQUENCE`.
   */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze({ ...options.details });
  }

  /**
   * Checks by name and shape, so an error from another loaded copy of windshift
   * is recognised too.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isWindshiftError(value);
  }
}

/**
 * Whether `value` is a {@link WindshiftError} (from any loaded copy of the package),
 * optionally with the given code.
 */
export function isWindshiftError(value: unknown, code?: ErrorCode): value is WindshiftError {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as { name?: unknown; code?: unknown };
  if (candidate.name !== ERROR_NAME || typeof candidate.code !== "string") return false;
  return code === undefined || candidate.code === code;
}

/** Shorthand for a validation error about one field. */
export function validationError(field: string, message: string): WindshiftError {
  return new WindshiftError(ErrorCode.Validation, `${field}: ${message}`, { details: { field } });
}
