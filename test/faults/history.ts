/**
 * A history checker: records what publishers were told (acked, or failed with
 * an unknown outcome) and what handlers saw, and judges the two against each
 * other: nothing acked lost, nothing unexpected, duplicates counted, order
 * per subject.
 *
 * Events are matched by their idempotency key (`Nats-Msg-Id`), which every
 * publish in the fault tests carries.
 *
 * @module
 */

/** What a publisher was told. */
export interface PublishRecord {
  readonly key: string;
  readonly subject: string;
  /** The stream sequence from the ack. */
  readonly id: number;
  /** Whether the stream reported the key as seen before. */
  readonly duplicate?: boolean;
}

/** One delivery a handler saw. */
export interface HandledRecord {
  readonly key: string | undefined;
  readonly subject: string;
  readonly id: number;
  readonly deliveryAttempt: number;
}

/** What {@link History.check} found. */
export interface HistoryReport {
  /** Acked publishes (distinct keys). */
  readonly acked: number;
  /** Publishes whose outcome is unknown (a timeout, a lost connection). */
  readonly unknown: number;
  /** Deliveries handled, duplicates included. */
  readonly deliveries: number;
  /** Distinct events handled. */
  readonly distinct: number;
  /** Deliveries of an event already handled before (`deliveries - distinct`). */
  readonly duplicates: number;
  /** Deliveries with `deliveryAttempt > 1`. */
  readonly redeliveries: number;
  /** Acked keys never handled. */
  readonly lost: readonly string[];
  /** Handled events that were never published (no key, or a key nobody sent). */
  readonly unexpected: readonly string[];
  /** Handled events whose id or subject differs from the publish ack. */
  readonly mismatched: readonly string[];
  /** Acked publishes of one subject whose ids do not grow in publish order. */
  readonly publishOrderViolations: readonly string[];
  /** First deliveries of one subject whose ids do not grow in delivery order. */
  readonly deliveryOrderViolations: readonly string[];
  /** Events handled more than once, with how often. */
  readonly duplicated: ReadonlyMap<string, number>;
}

/** The record of one fault scenario. */
export class History {
  readonly #acked = new Map<string, PublishRecord>();
  /** Acks per subject, in the order the publisher was told. */
  readonly #ackOrder = new Map<string, number[]>();
  readonly #unknown = new Map<string, string>();
  readonly #handled: HandledRecord[] = [];
  readonly #seen = new Map<string, number>();
  /** `performance.now()` of every first handling, by key. */
  readonly #firstAt = new Map<string, number>();

  /** A publish was acked by the stream. */
  published(record: PublishRecord): void {
    const before = this.#acked.get(record.key);
    if (before !== undefined) {
      if (before.id !== record.id) {
        throw new Error(`key ${record.key} acked twice with different ids: ${before.id} and ${record.id}`);
      }
      return;
    }
    this.#acked.set(record.key, record);
    this.#unknown.delete(record.key);
    const order = this.#ackOrder.get(record.subject);
    if (order === undefined) this.#ackOrder.set(record.subject, [record.id]);
    else order.push(record.id);
  }

  /** A publish failed in a way that leaves its outcome unknown: it may or may not be stored. */
  unknownOutcome(key: string, subject: string): void {
    if (!this.#acked.has(key)) this.#unknown.set(key, subject);
  }

  /** A handler received a delivery. */
  handled(record: HandledRecord): void {
    this.#handled.push(record);
    const key = record.key ?? `<no key: id ${record.id}>`;
    const n = (this.#seen.get(key) ?? 0) + 1;
    this.#seen.set(key, n);
    if (n === 1) this.#firstAt.set(key, performance.now());
  }

  /** How many acked publishes there are. */
  get ackedCount(): number {
    return this.#acked.size;
  }

  /** How many distinct events were handled. */
  get distinctHandled(): number {
    return this.#seen.size;
  }

  /** Every delivery handled so far. */
  get deliveries(): readonly HandledRecord[] {
    return this.#handled;
  }

  /** Every acked key. */
  ackedKeys(): string[] {
    return [...this.#acked.keys()];
  }

  /** Acked keys not handled yet. */
  missing(): string[] {
    const out: string[] = [];
    for (const key of this.#acked.keys()) if (!this.#seen.has(key)) out.push(key);
    return out;
  }

  /** Whether every acked publish has been handled at least once. */
  allHandled(): boolean {
    for (const key of this.#acked.keys()) if (!this.#seen.has(key)) return false;
    return true;
  }

  /** The acked publish with this key, if any. */
  ack(key: string): PublishRecord | undefined {
    return this.#acked.get(key);
  }

  /** When the event with this key was first handled (`performance.now()`). */
  firstHandledAt(key: string): number | undefined {
    return this.#firstAt.get(key);
  }

  /**
   * Compares the stream's content (sequences by idempotency key, as
   * `readStreamKeys` returns them) with the acks: every acked event stored
   * exactly once, under the acked sequence, and nothing else but events of
   * unknown outcome.
   */
  compareStored(stored: ReadonlyMap<string, readonly number[]>): StoredReport {
    let messages = 0;
    const storedTwice: string[] = [];
    const unexpected: string[] = [];
    const mismatched: string[] = [];
    for (const [key, seqs] of stored) {
      messages += seqs.length;
      if (seqs.length > 1) storedTwice.push(`${key}: ${seqs.join(",")}`);
      const acked = this.#acked.get(key);
      if (acked === undefined && !this.#unknown.has(key)) unexpected.push(key);
      if (acked !== undefined && !seqs.includes(acked.id)) mismatched.push(`${key}: acked ${acked.id}, stored ${seqs}`);
    }
    const lost = [...this.#acked.keys()].filter((k) => !stored.has(k));
    return { messages, storedTwice, unexpected, lost, mismatched };
  }

  /** Judges the record; see {@link HistoryReport}. */
  check(): HistoryReport {
    const lost = this.missing();
    const unexpected: string[] = [];
    const mismatched: string[] = [];
    const duplicated = new Map<string, number>();
    for (const [key, n] of this.#seen) {
      if (n > 1) duplicated.set(key, n);
      if (!this.#acked.has(key) && !this.#unknown.has(key)) unexpected.push(key);
    }
    const checkedIds = new Set<string>();
    for (const h of this.#handled) {
      const key = h.key;
      if (key === undefined || checkedIds.has(`${key}@${h.id}`)) continue;
      checkedIds.add(`${key}@${h.id}`);
      const acked = this.#acked.get(key);
      if (acked !== undefined && (acked.id !== h.id || acked.subject !== h.subject)) {
        mismatched.push(`${key}: acked as ${acked.id} on ${acked.subject}, handled as ${h.id} on ${h.subject}`);
      }
    }
    const publishOrderViolations: string[] = [];
    for (const [subject, ids] of this.#ackOrder) {
      for (let i = 1; i < ids.length; i++) {
        if ((ids[i] as number) <= (ids[i - 1] as number)) {
          publishOrderViolations.push(`${subject}: ${ids[i - 1]} then ${ids[i]}`);
        }
      }
    }
    const deliveryOrderViolations: string[] = [];
    const lastFirst = new Map<string, number>();
    const firstSeen = new Set<string>();
    for (const h of this.#handled) {
      const key = h.key ?? `<no key: id ${h.id}>`;
      if (firstSeen.has(key)) continue;
      firstSeen.add(key);
      const last = lastFirst.get(h.subject);
      if (last !== undefined && h.id <= last) deliveryOrderViolations.push(`${h.subject}: ${last} then ${h.id}`);
      lastFirst.set(h.subject, Math.max(h.id, last ?? 0));
    }
    return {
      acked: this.#acked.size,
      unknown: this.#unknown.size,
      deliveries: this.#handled.length,
      distinct: this.#seen.size,
      duplicates: this.#handled.length - this.#seen.size,
      redeliveries: this.#handled.filter((h) => h.deliveryAttempt > 1).length,
      lost,
      unexpected,
      mismatched,
      publishOrderViolations,
      deliveryOrderViolations,
      duplicated,
    };
  }
}

/** How the stream's content compares with what publishers were told; see {@link History.compareStored}. */
export interface StoredReport {
  /** Messages in the stream. */
  readonly messages: number;
  /** Keys stored more than once. */
  readonly storedTwice: readonly string[];
  /** Keys stored that were neither acked nor of unknown outcome. */
  readonly unexpected: readonly string[];
  /** Acked keys not in the stream. */
  readonly lost: readonly string[];
  /** Acked keys stored under another sequence than the ack said. */
  readonly mismatched: readonly string[];
}

/** A one-line summary of a report for the `[faults]` log. */
export function summarize(report: HistoryReport): string {
  return [
    `acked=${report.acked}`,
    `unknown=${report.unknown}`,
    `deliveries=${report.deliveries}`,
    `distinct=${report.distinct}`,
    `duplicates=${report.duplicates}`,
    `redeliveries=${report.redeliveries}`,
    `lost=${report.lost.length}`,
    `unexpected=${report.unexpected.length}`,
  ].join(" ");
}
