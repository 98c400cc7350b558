/**
 * PostgreSQL engine: eight publishers, each with its own client and pool,
 * racing to append with `expectedLastId`. Every id must have exactly one
 * winner, the ids must be gapless, and every refusal must be a
 * `WRONG_SEQUENCE`, never a second event under one id or a lost one.
 */
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { type Events, isWindshiftError } from "../../src/index.js";
import { createPostgresEvents, ensureSchema } from "../../src/postgres/index.js";
import { uniqueName } from "../helpers.js";
import { uniqueSchema } from "../postgres/harness.js";
import { type PostgresServer, startPostgres } from "./postgres-server.js";
import { codeOf, report, since, Tally } from "./support.js";

const PUBLISHERS = 8;
const ROUNDS = 200;
const PER_PUBLISHER = 25;

let server: PostgresServer;
let admin: pg.Pool;
const schema = uniqueSchema("ws_race");
const clients: Events[] = [];

beforeAll(async () => {
  server = await startPostgres();
  report("postgres-racing-publishers", { serverStartMs: server.startMs });
  admin = new pg.Pool({ connectionString: server.url, max: 2 });
  admin.on("error", () => {});
  await ensureSchema(admin, { schema });
  for (let k = 0; k < PUBLISHERS; k++) {
    clients.push(createPostgresEvents({ connectionString: server.url, schema, migrate: false }));
  }
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await admin?.end().catch(() => {});
  await server?.stop();
});

/** What the stream holds, by id: the event's idempotency key and its text. */
async function stored(stream: string): Promise<{ id: number; key: string | null }[]> {
  const s = quoted(schema);
  const { rows } = await admin.query<{ id: string; msg_id: string | null }>(
    `SELECT e.id, e.msg_id FROM ${s}.events e JOIN ${s}.streams st ON st.id = e.stream WHERE st.name = $1 ORDER BY e.id`,
    [stream],
  );
  return rows.map((r) => ({ id: Number(r.id), key: r.msg_id }));
}

/** Lets `n` racers through together, again and again. */
class Barrier {
  readonly #n: number;
  #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#n = n;
  }
  arrive(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      if (this.#waiting.length === this.#n) {
        const all = this.#waiting;
        this.#waiting = [];
        for (const r of all) r();
      }
    });
  }
}

it("eight publishers racing on expectedLastId: one winner per id, gapless ids, every loser told WRONG_SEQUENCE", async () => {
  const stream = uniqueName("race");
  await clients[0]?.ensureStream(stream, { subjects: [`${stream}.>`] });

  // Phase 1: lock-step rounds. All eight read the same last id, then all
  // append on it: exactly one wins, exactly seven are refused.
  const winners = new Map<number, string>();
  const refusals = new Tally();
  const other = new Tally();
  const barrier = new Barrier(PUBLISHERS);
  const lockStep = performance.now();
  await Promise.all(
    clients.map(async (events, k) => {
      for (let round = 1; round <= ROUNDS; round++) {
        const { state } = await events.streamInfo(stream);
        await barrier.arrive();
        const key = `round${round}-p${k}`;
        try {
          const ack = await events.publish(
            `${stream}.p${k}`,
            TestEventSchema,
            { text: key, number: BigInt(round) },
            { expectedLastId: state.lastId, idempotencyKey: key },
          );
          const before = winners.get(ack.id);
          if (before !== undefined) other.add(`second winner of ${ack.id}: ${before} and ${key}`);
          winners.set(ack.id, key);
        } catch (err) {
          if (isWindshiftError(err, "WRONG_SEQUENCE")) refusals.add(`round${round}`);
          else other.add(codeOf(err));
        }
        // Nobody reads the next round's last id before every append of this one is answered.
        await barrier.arrive();
      }
    }),
  );
  const lockStepMs = since(lockStep);

  // Phase 2: free for all. Each publisher appends PER_PUBLISHER events,
  // reading the last id again after every refusal.
  const mine = new Map<number, number[]>();
  let freeRefusals = 0;
  const free = performance.now();
  await Promise.all(
    clients.map(async (events, k) => {
      const ids: number[] = [];
      mine.set(k, ids);
      let attempt = 0;
      while (ids.length < PER_PUBLISHER) {
        const { state } = await events.streamInfo(stream);
        const key = `free-p${k}-a${attempt++}`;
        try {
          const ack = await events.publish(
            `${stream}.p${k}`,
            TestEventSchema,
            { text: key, number: BigInt(ids.length) },
            { expectedLastId: state.lastId, idempotencyKey: key },
          );
          expect(ack.id, `${key} appended on ${state.lastId}`).toBe(state.lastId + 1);
          const before = winners.get(ack.id);
          if (before !== undefined) other.add(`second winner of ${ack.id}: ${before} and ${key}`);
          winners.set(ack.id, key);
          ids.push(ack.id);
        } catch (err) {
          if (isWindshiftError(err, "WRONG_SEQUENCE")) freeRefusals++;
          else other.add(codeOf(err));
        }
      }
    }),
  );
  const freeMs = since(free);

  const total = ROUNDS + PUBLISHERS * PER_PUBLISHER;
  const content = await stored(stream);
  const { state } = await clients[0]!.streamInfo(stream);
  report("postgres-racing-publishers", {
    publishers: PUBLISHERS,
    rounds: ROUNDS,
    lockStepRefusals: refusals.total,
    lockStepMs,
    lockStepRoundsPerSecond: (ROUNDS * 1000) / lockStepMs,
    freeRefusals,
    freeMs,
    freeEventsPerSecond: (PUBLISHERS * PER_PUBLISHER * 1000) / freeMs,
    attemptsPerSecond: ((PUBLISHERS * PER_PUBLISHER + freeRefusals) * 1000) / freeMs,
    other: other.toString(),
  });

  expect(other.toString()).toBe("none");
  // Each lock-step round: one winner, seven refused.
  expect(refusals.total).toBe(ROUNDS * (PUBLISHERS - 1));
  for (const [round, n] of refusals.counts) expect(n, round).toBe(PUBLISHERS - 1);
  for (let round = 1; round <= ROUNDS; round++) expect(winners.get(round), `winner of id ${round}`).toMatch(/^round/);
  // Every publisher got its share in the free-for-all.
  for (const ids of mine.values()) expect(ids).toHaveLength(PER_PUBLISHER);
  // The stream: ids 1..total, no gaps, each holding exactly the event its winner was acked for.
  expect(state.events).toBe(total);
  expect(state.lastId).toBe(total);
  expect(content.map((e) => e.id)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  expect(winners.size).toBe(total);
  for (const e of content) expect(e.key, `event ${e.id}`).toBe(winners.get(e.id));
}, 120_000);
