/**
 * Key-value buckets with compare-and-set, as engines provide them (part of
 * the seam in `engine.ts`): what `idempotent` and workflow runs are kept in.
 *
 * @module
 */

/** A key-value entry. */
export interface KeyValueEntry {
  readonly value: Uint8Array;
  /** Changes with every write; `expectedRevision` compares against it. */
  readonly revision: number;
}

/** Options of a key-value write. */
export interface KeyValueWriteOptions {
  /**
   * Write only if the key's revision is this (0: the key does not exist or
   * was deleted); else `WRONG_SEQUENCE`.
   */
  readonly expectedRevision?: number;
  readonly signal?: AbortSignal;
}

/** A key-value bucket with compare-and-set. Keys are any non-empty strings. */
export interface KeyValue {
  /** The entry, or `undefined` when the key does not exist, was deleted or expired. */
  get(key: string, signal?: AbortSignal): Promise<KeyValueEntry | undefined>;
  /** Stores `value` and returns the new revision. */
  put(key: string, value: Uint8Array, options?: KeyValueWriteOptions): Promise<number>;
  /** Deletes the key (a no-op when absent, unless `expectedRevision` says otherwise). */
  delete(key: string, options?: KeyValueWriteOptions): Promise<void>;
}

/** A bucket's settings. */
export interface KeyValueOptions {
  /** Entries older than this (since their last write) are gone. */
  readonly ttlMs: number;
  readonly replicas: number;
}

/**
 * How a bucket is opened:
 * - `open`: only if it exists; `NOT_FOUND` otherwise.
 * - `create`: created with `options` when missing; an existing bucket keeps its settings.
 * - `ensure`: created with `options`, or updated to them.
 */
export type KeyValueOpen =
  | { readonly mode: "open" }
  | { readonly mode: "create" | "ensure"; readonly options: KeyValueOptions };
