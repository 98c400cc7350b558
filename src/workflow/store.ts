import type { KeyValue, KeyValueOpen } from "../engines/engine.js";
import { ErrorCode, isWindshiftError, WindshiftError } from "../errors.js";
import type { Runtime } from "../runtime.js";
import type { WorkflowTable } from "./definition.js";
import { bucketName } from "./layout.js";
import { decodeRun, encodeRun, type RunState } from "./run-state.js";

/** How often a change is tried again when another worker changed the run first. */
const MAX_CONFLICTS = 100;

/** A run as read, with the revision a write must expect. */
export interface StoredRun {
  readonly state: RunState;
  readonly revision: number;
}

/**
 * The runs of one workflow, in its key-value bucket: one entry per run,
 * changed only by compare-and-set.
 */
export class RunStore {
  readonly #kv: KeyValue;
  readonly #maxBytes: number | undefined;

  constructor(kv: KeyValue, maxBytes: number | undefined) {
    this.#kv = kv;
    this.#maxBytes = maxBytes;
  }

  /** The run, or `undefined` when there is none (never started, or expired). */
  async read(runId: string, signal?: AbortSignal): Promise<StoredRun | undefined> {
    const entry = await this.#kv.get(runId, signal);
    return entry === undefined ? undefined : { state: decodeRun(entry.value, runId), revision: entry.revision };
  }

  /** Stores a new run; `false` when a run with its id exists already. */
  async create(run: RunState, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.#kv.put(run.runId, this.#encode(run), { expectedRevision: 0, ...(signal ? { signal } : {}) });
      return true;
    } catch (err) {
      if (isWindshiftError(err, ErrorCode.WrongSequence)) return false;
      throw err;
    }
  }

  /**
   * Applies `change` to the run and writes it back unless another write came
   * first; then reads again and applies it again. `change` returns whether
   * it changed anything (nothing is written when it did not) and must be a
   * pure function of the state it is given. `known` is the run as this
   * process last wrote or read it: the first try starts from a copy of it
   * instead of a read (a stale copy costs one failed write). Returns the run
   * as written (or as read, when unchanged); `NOT_FOUND` when it does not
   * exist.
   */
  async update(
    runId: string,
    change: (run: RunState) => boolean,
    options: { readonly known?: StoredRun; readonly signal?: AbortSignal } = {},
  ): Promise<StoredRun> {
    const { signal } = options;
    let known = options.known;
    for (let conflicts = 0; ; conflicts++) {
      const stored =
        known === undefined
          ? await this.read(runId, signal)
          : { state: structuredClone(known.state), revision: known.revision };
      known = undefined;
      if (stored === undefined) {
        throw new WindshiftError(ErrorCode.NotFound, `workflow run "${runId}" not found (never started, or expired)`, {
          details: { runId },
        });
      }
      if (!change(stored.state)) return stored;
      try {
        const revision = await this.#kv.put(runId, this.#encode(stored.state), {
          expectedRevision: stored.revision,
          ...(signal ? { signal } : {}),
        });
        return { state: stored.state, revision };
      } catch (err) {
        if (!isWindshiftError(err, ErrorCode.WrongSequence) || conflicts >= MAX_CONFLICTS) throw err;
      }
    }
  }

  #encode(run: RunState): Uint8Array {
    const bytes = encodeRun(run);
    if (this.#maxBytes !== undefined && bytes.length > this.#maxBytes) {
      throw new WindshiftError(
        ErrorCode.InvalidData,
        `the state of run "${run.runId}" would be ${bytes.length} bytes, more than the server's max payload of ${this.#maxBytes}: ` +
          "keep task and event data small (store large data elsewhere and pass references)",
        { details: { runId: run.runId, bytes: bytes.length } },
      );
    }
    return bytes;
  }
}

/** Opened stores, per client and bucket: opening a bucket costs a round trip. */
const opened = new WeakMap<Runtime, Map<string, Promise<RunStore>>>();

/**
 * The run store in `bucket`. `open` opens it once per client (`NOT_FOUND`
 * when it does not exist); `ensure` creates or updates it, every time.
 */
export function openRunStore(rt: Runtime, bucket: string, how: KeyValueOpen): Promise<RunStore> {
  let buckets = opened.get(rt);
  if (buckets === undefined) {
    buckets = new Map();
    opened.set(rt, buckets);
  }
  const cached = buckets.get(bucket);
  if (cached !== undefined && how.mode === "open") return cached;
  const store = rt.engine.keyValue(bucket, how, undefined).then((kv) => new RunStore(kv, rt.engine.maxPayload()));
  buckets.set(bucket, store);
  // A failed open is tried again next time.
  store.catch(() => {
    if (buckets?.get(bucket) === store) buckets.delete(bucket);
  });
  return store;
}

/**
 * The run store of a workflow that `ensureWorkflow` has set up (here or in
 * another service); `NOT_FOUND` with what to do when it has not.
 */
export async function storeOf(rt: Runtime, table: WorkflowTable): Promise<RunStore> {
  try {
    return await openRunStore(rt, bucketName(table.name), { mode: "open" });
  } catch (err) {
    if (!isWindshiftError(err, ErrorCode.NotFound)) throw err;
    throw new WindshiftError(
      ErrorCode.NotFound,
      `workflow "${table.name}" is not set up (its bucket ${bucketName(table.name)} does not exist): call ensureWorkflow first`,
      { cause: err, details: { workflow: table.name } },
    );
  }
}
