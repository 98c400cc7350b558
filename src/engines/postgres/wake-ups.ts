/**
 * Wake-ups of the PostgreSQL engine's feeds: one connection of the pool kept
 * aside, `LISTEN`ing on the channel `windshift`, where every stored append
 * notifies `"<schema> <stream id>"` (migration 003). A notification only
 * wakes feeds early: each feed polls every `pollIntervalMs` as well, so a
 * lost notification (or a listener reconnecting) costs at most that long.
 *
 * @module
 */

import type { Notification, Pool, PoolClient } from "pg";
import { realClock, type TimerHandle } from "../../internal/clock.js";
import type { Logger } from "../../internal/logger.js";

/** The channel appends notify. */
export const CHANNEL = "windshift";

/** What the listener tells its engine. */
export interface WakeUpTarget {
  /** An event was stored in the stream with this row id. */
  stored(streamId: number): void;
  /** The listener (re)connected: notifications may have been missed until now. */
  listening(): void;
}

/** Keeps one connection listening while the engine has feeds. */
export class WakeUps {
  readonly #pool: Pool;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #target: WakeUpTarget;
  readonly #retryMs: number;
  #client: PoolClient | undefined;
  #connecting: Promise<void> | undefined;
  #retry: TimerHandle | undefined;
  #closed = false;

  constructor(pool: Pool, schema: string, target: WakeUpTarget, options: { logger: Logger; retryMs: number }) {
    this.#pool = pool;
    this.#prefix = `${schema} `;
    this.#target = target;
    this.#logger = options.logger;
    this.#retryMs = options.retryMs;
  }

  /** Starts listening, unless it already does (or is connecting). */
  start(): void {
    if (this.#closed || this.#client !== undefined || this.#connecting !== undefined || this.#retry !== undefined)
      return;
    this.#connecting = this.#connect().finally(() => {
      this.#connecting = undefined;
    });
  }

  /** Stops listening and gives the connection back. */
  async close(): Promise<void> {
    this.#closed = true;
    realClock.clearTimeout(this.#retry);
    await this.#connecting;
    const client = this.#client;
    this.#client = undefined;
    if (client === undefined) return;
    await client.query(`UNLISTEN ${CHANNEL}`).catch(() => {});
    this.#drop(client, undefined);
  }

  async #connect(): Promise<void> {
    let client: PoolClient | undefined;
    try {
      client = await this.#pool.connect();
      const held = client;
      client.on("notification", this.#onNotification);
      client.on("error", (err) => this.#lost(held, err));
      client.on("end", () => this.#lost(held, new Error("the connection ended")));
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      if (client !== undefined) this.#drop(client, err);
      this.#logger.warn("cannot listen for new events; polling until it can", { error: String(err) });
      this.#scheduleRetry();
      return;
    }
    if (this.#closed) {
      this.#drop(client, undefined);
      return;
    }
    this.#client = client;
    this.#target.listening();
  }

  readonly #onNotification = (message: Notification): void => {
    if (message.channel !== CHANNEL || message.payload === undefined) return;
    if (!message.payload.startsWith(this.#prefix)) return;
    const id = Number(message.payload.slice(this.#prefix.length));
    if (Number.isInteger(id)) this.#target.stored(id);
  };

  #lost(client: PoolClient, err: unknown): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#drop(client, err);
    if (this.#closed) return;
    this.#logger.warn("lost the connection listening for new events; reconnecting", { error: String(err) });
    this.#scheduleRetry();
  }

  /** Gives the connection back (destroyed when it failed), without the listeners this class added. */
  #drop(client: PoolClient, err: unknown): void {
    client.removeAllListeners("notification");
    client.removeAllListeners("end");
    // A failed connection may report more errors: keep one listener that ignores them.
    client.removeAllListeners("error");
    if (err !== undefined) client.on("error", () => {});
    try {
      client.release(err instanceof Error ? err : err === undefined ? undefined : new Error(String(err)));
    } catch {
      // Released already (the pool saw the error first).
    }
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retry !== undefined) return;
    this.#retry = realClock.setTimeout(() => {
      this.#retry = undefined;
      this.start();
    }, this.#retryMs);
  }
}
