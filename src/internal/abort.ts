import { ErrorCode, WindshiftError } from "../errors.js";

/** The error an aborted call rejects with; keeps the signal's reason as `cause`. */
export function abortError(signal: AbortSignal): WindshiftError {
  return new WindshiftError(ErrorCode.Aborted, "the operation was aborted", { cause: signal.reason });
}

/** Throws {@link abortError} if `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * Races `promise` against `signal`. The listener is always removed. The
 * underlying work is not cancelled, only no longer awaited.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.catch(() => {});
      reject(abortError(signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
