/**
 * Key-value buckets on PostgreSQL: revisions per bucket, compare-and-set
 * decided once among racing sessions, ttl on the database's clock with lazy
 * cleanup, the open / create / ensure modes, any string as a key, and the
 * errors the other engines give (NOT_FOUND, WRONG_SEQUENCE, ABORTED, CLOSED).
 */
import { describe, expect, it } from "vitest";
import type { KeyValueOptions } from "../../src/engines/key-value.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { openKeyValue } from "../../src/engines/postgres/key-value.js";
import { ErrorCode } from "../../src/errors.js";
import { waitFor, windshiftError } from "../helpers.js";
import { uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

const FOREVER: KeyValueOptions = { ttlMs: 0, replicas: 1 };
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));

/** A new bucket in the file's schema. */
function bucket(options: KeyValueOptions = FOREVER, name = uniqueStream("kv")) {
  return openKeyValue(env.pool, env.schema, name, { mode: "create", options });
}

/** The bucket's stored options and how many entry rows it has (live or not). */
async function stored(name: string) {
  const s = quoted(env.schema);
  const result = await env.pool.query<{ options: KeyValueOptions; rows: number }>(
    `SELECT b.options, (SELECT count(*)::int FROM ${s}.entries e WHERE e.bucket = b.id) AS rows
       FROM ${s}.buckets b WHERE b.name = $1`,
    [name],
  );
  return result.rows[0];
}

describe("put, get and delete", () => {
  it("stores a value, reads it back with its revision, and deletes it", async () => {
    const kv = await bucket();
    expect(await kv.get("a")).toBeUndefined();
    const revision = await kv.put("a", bytes("one"));
    expect(revision).toBe(1);
    expect(await kv.get("a")).toEqual({ value: bytes("one"), revision: 1 });
    expect(await kv.put("a", bytes("two"))).toBe(2);
    expect(text((await kv.get("a"))?.value)).toBe("two");
    await kv.delete("a");
    expect(await kv.get("a")).toBeUndefined();
    // A delete of an absent key is a no-op.
    await kv.delete("a");
    await kv.delete("never");
  });

  it("gives revisions from one counter across the bucket's keys; a delete of a live key takes one", async () => {
    const kv = await bucket();
    expect(await kv.put("a", bytes("1"))).toBe(1);
    expect(await kv.put("b", bytes("2"))).toBe(2);
    expect(await kv.put("a", bytes("3"))).toBe(3);
    await kv.delete("b");
    await kv.delete("b");
    expect(await kv.put("c", bytes("4"))).toBe(5);
    // Another bucket counts on its own.
    expect(await (await bucket()).put("a", bytes("x"))).toBe(1);
  });

  it("copies values both ways and keeps zero bytes", async () => {
    const kv = await bucket();
    const value = new Uint8Array([0, 1, 0, 255, 0]);
    await kv.put("z", value);
    value[1] = 9;
    const first = await kv.get("z");
    expect(first?.value).toEqual(new Uint8Array([0, 1, 0, 255, 0]));
    expect(first?.value).toBeInstanceOf(Uint8Array);
    (first?.value as Uint8Array)[0] = 7;
    expect((await kv.get("z"))?.value).toEqual(new Uint8Array([0, 1, 0, 255, 0]));
    await kv.put("empty", new Uint8Array());
    expect(await kv.get("empty")).toEqual({ value: new Uint8Array(), revision: 2 });
  });

  it("takes bucket names and keys with quotes, unicode, dots, slashes and U+0000", async () => {
    const name = `it's "odd" ${uniqueStream()}.ü/日本`;
    const kv = await bucket(FOREVER, name);
    const keys = ["a'b", 'q"q', "ключ.日本/ü", "a.b/c", "x\u0000y", "x", "🙂", " "];
    for (const [i, key] of keys.entries()) expect(await kv.put(key, bytes(`v${i}`))).toBe(i + 1);
    for (const [i, key] of keys.entries())
      expect(await kv.get(key)).toEqual({ value: bytes(`v${i}`), revision: i + 1 });
    // "x\u0000y" and "x" are different keys.
    await kv.delete("x");
    expect(text((await kv.get("x\u0000y"))?.value)).toBe("v4");
    const reopened = await openKeyValue(env.pool, env.schema, name, { mode: "open" });
    expect(text((await reopened.get("ключ.日本/ü"))?.value)).toBe("v2");
  });
});

describe("compare-and-set", () => {
  it("writes when expectedRevision is the key's revision (0: absent or deleted)", async () => {
    const kv = await bucket();
    expect(await kv.put("k", bytes("a"), { expectedRevision: 0 })).toBe(1);
    expect(await kv.put("k", bytes("b"), { expectedRevision: 1 })).toBe(2);
    await kv.delete("k", { expectedRevision: 2 });
    expect(await kv.put("k", bytes("c"), { expectedRevision: 0 })).toBe(4);
    await kv.delete("gone", { expectedRevision: 0 });
  });

  it("refuses another revision with WRONG_SEQUENCE naming the expected and actual revisions", async () => {
    const kv = await bucket();
    await kv.put("other", bytes("x"));
    await kv.put("k", bytes("a"));

    const stale = await windshiftError(kv.put("k", bytes("b"), { expectedRevision: 1 }));
    expect(stale.code).toBe(ErrorCode.WrongSequence);
    expect(stale.message).toContain("expectedRevision 1, but its revision is 2");
    expect(stale.details).toMatchObject({ key: "k", expected: 1, actual: 2 });

    const exists = await windshiftError(kv.put("k", bytes("b"), { expectedRevision: 0 }));
    expect(exists.details).toMatchObject({ expected: 0, actual: 2 });

    const absent = await windshiftError(kv.put("new", bytes("b"), { expectedRevision: 3 }));
    expect(absent.code).toBe(ErrorCode.WrongSequence);
    expect(absent.message).toContain("expectedRevision 3, but it does not exist");

    const deleting = await windshiftError(kv.delete("k", { expectedRevision: 1 }));
    expect(deleting.details).toMatchObject({ expected: 1, actual: 2 });

    // Nothing refused was written, and no revision was used up.
    expect(await kv.get("k")).toEqual({ value: bytes("a"), revision: 2 });
    expect(await kv.get("new")).toBeUndefined();
    expect(await kv.put("k", bytes("c"), { expectedRevision: 2 })).toBe(3);
  });

  it("lets exactly one of 8 sessions racing on one revision win; the others see the winner's revision", async () => {
    const name = uniqueStream("kv");
    const first = await bucket(FOREVER, name);
    const base = await first.put("k", bytes("start"));
    // Eight sessions, each connected before the race starts.
    const pools = Array.from({ length: 8 }, () => env.createPool({ max: 1 }));
    await Promise.all(pools.map(async (p) => (await p.connect()).release()));
    const handles = await Promise.all(pools.map((p) => openKeyValue(p, env.schema, name, { mode: "open" })));

    const results = await Promise.allSettled(
      handles.map((kv, i) => kv.put("k", bytes(`writer ${i}`), { expectedRevision: base })),
    );

    const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [{ i, revision: r.value }] : []));
    expect(won).toHaveLength(1);
    const winner = won[0] as { i: number; revision: number };
    expect(winner.revision).toBe(base + 1);
    for (const r of results) {
      if (r.status === "rejected") {
        expect(r.reason).toMatchObject({
          code: ErrorCode.WrongSequence,
          details: { expected: base, actual: base + 1 },
        });
      }
    }
    expect(await first.get("k")).toEqual({ value: bytes(`writer ${winner.i}`), revision: base + 1 });
  });

  it("gives every write of racing sessions its own revision, increasing per writer", async () => {
    const name = uniqueStream("kv");
    await bucket(FOREVER, name);
    const pools = Array.from({ length: 8 }, () => env.createPool({ max: 1 }));
    const handles = await Promise.all(pools.map((p) => openKeyValue(p, env.schema, name, { mode: "open" })));
    const perWriter = await Promise.all(
      handles.map(async (kv, i) => {
        const revisions: number[] = [];
        for (let n = 0; n < 10; n++) revisions.push(await kv.put(`key ${n % 3} of ${i % 2}`, bytes(`${i}.${n}`)));
        return revisions;
      }),
    );
    for (const revisions of perWriter) expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
    const all = perWriter.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
  });
});

describe("ttl", () => {
  it("drops an entry ttlMs after its last write: get misses it, expectedRevision 0 takes it", async () => {
    const name = uniqueStream("kv");
    const kv = await bucket({ ttlMs: 1_000, replicas: 1 }, name);
    const revision = await kv.put("short", bytes("lived"));
    expect(await kv.get("short")).toMatchObject({ revision });
    await waitFor(async () => (await kv.get("short")) === undefined, { timeoutMs: 5_000, what: "the entry to expire" });

    expect(await kv.put("short", bytes("again"), { expectedRevision: 0 })).toBe(revision + 1);
    expect(text((await kv.get("short"))?.value)).toBe("again");
  });

  it("takes no revision for deleting an expired key, and cleans expired rows on the next write", async () => {
    const name = uniqueStream("kv");
    const kv = await bucket({ ttlMs: 300, replicas: 1 }, name);
    for (const key of ["a", "b", "c"]) await kv.put(key, bytes(key));
    await waitFor(async () => (await kv.get("c")) === undefined, { timeoutMs: 5_000, what: "the entries to expire" });
    // Expired rows stay until a write of the bucket.
    expect((await stored(name))?.rows).toBe(3);
    await kv.delete("a", { expectedRevision: 0 });
    expect((await stored(name))?.rows).toBe(0);
    expect(await kv.put("d", bytes("d"))).toBe(4);
  });

  it("keeps entries forever with a ttlMs of 0 or less", async () => {
    const name = uniqueStream("kv");
    const kv = await bucket({ ttlMs: -1, replicas: 1 }, name);
    await kv.put("k", bytes("v"));
    // Written a while ago on the database's clock: still there.
    await env.pool.query(
      `UPDATE ${quoted(env.schema)}.entries e SET written_at = e.written_at - interval '1 day'
         FROM ${quoted(env.schema)}.buckets b WHERE b.id = e.bucket AND b.name = $1`,
      [name],
    );
    expect(await kv.get("k")).toMatchObject({ revision: 1 });
    expect(await kv.put("k", bytes("w"), { expectedRevision: 1 })).toBe(2);
  });
});

describe("open, create and ensure", () => {
  it("opens only an existing bucket: NOT_FOUND naming it otherwise", async () => {
    const name = uniqueStream("kv");
    const missing = await windshiftError(openKeyValue(env.pool, env.schema, name, { mode: "open" }));
    expect(missing.code).toBe(ErrorCode.NotFound);
    expect(missing.message).toContain(`key-value bucket "${name}" not found`);
    expect(missing.details).toEqual({ bucket: name });
    await bucket(FOREVER, name);
    await (await openKeyValue(env.pool, env.schema, name, { mode: "open" })).put("k", bytes("v"));
    expect(await (await bucket(FOREVER, name)).get("k")).toMatchObject({ revision: 1 });
  });

  it("create keeps an existing bucket's settings; ensure updates them, for every handle", async () => {
    const name = uniqueStream("kv");
    const kv = await bucket(FOREVER, name);
    await kv.put("k", bytes("v"));
    await bucket({ ttlMs: 300, replicas: 3 }, name);
    expect((await stored(name))?.options).toEqual(FOREVER);

    await openKeyValue(env.pool, env.schema, name, { mode: "ensure", options: { ttlMs: 300, replicas: 3 } });
    expect((await stored(name))?.options).toEqual({ ttlMs: 300, replicas: 3 });
    // The first handle follows: its entry now expires.
    await waitFor(async () => (await kv.get("k")) === undefined, { timeoutMs: 5_000, what: "the entry to expire" });
  });

  it("ensure creates a missing bucket; racing creates make one bucket", async () => {
    const ensured = uniqueStream("kv");
    const kv = await openKeyValue(env.pool, env.schema, ensured, { mode: "ensure", options: FOREVER });
    expect(await kv.put("k", bytes("v"))).toBe(1);

    const raced = uniqueStream("kv");
    const pools = Array.from({ length: 6 }, () => env.createPool({ max: 1 }));
    await Promise.all(pools.map(async (p) => (await p.connect()).release()));
    const handles = await Promise.all(
      pools.map((p) => openKeyValue(p, env.schema, raced, { mode: "create", options: FOREVER })),
    );
    const revisions = await Promise.all(handles.map((h, i) => h.put(`k${i}`, bytes("v"))));
    expect([...revisions].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    const count = await env.pool.query(`SELECT 1 FROM ${quoted(env.schema)}.buckets WHERE name = $1`, [raced]);
    expect(count.rowCount).toBe(1);
  });

  it("fails a call on a bucket removed since it was opened with NOT_FOUND", async () => {
    const name = uniqueStream("kv");
    const kv = await bucket(FOREVER, name);
    await env.pool.query(`DELETE FROM ${quoted(env.schema)}.buckets WHERE name = $1`, [name]);
    // One call at a time: a call made before the one before it is awaited would reject unobserved.
    for (const call of [() => kv.get("k"), () => kv.put("k", bytes("v")), () => kv.delete("k")]) {
      expect(await windshiftError(call())).toMatchObject({ code: ErrorCode.NotFound, details: { bucket: name } });
    }
  });
});

describe("failures", () => {
  it("rejects every call whose signal is already aborted, changing nothing", async () => {
    const name = uniqueStream("kv");
    const kv = await bucket(FOREVER, name);
    const signal = AbortSignal.abort(new Error("stop"));
    const calls = [
      () => openKeyValue(env.pool, env.schema, uniqueStream("kv"), { mode: "create", options: FOREVER }, signal),
      () => kv.get("k", signal),
      () => kv.put("k", bytes("v"), { signal }),
      () => kv.delete("k", { signal }),
    ];
    for (const call of calls) expect((await windshiftError(call())).code).toBe(ErrorCode.Aborted);
    expect(await kv.get("k")).toBeUndefined();
    expect(await kv.put("k", bytes("v"))).toBe(1);
  });

  it("fails calls with CLOSED once the host is closed, before looking at the signal", async () => {
    let closed = false;
    const host = { isClosed: () => closed };
    const name = uniqueStream("kv");
    const kv = await openKeyValue(env.pool, env.schema, name, { mode: "create", options: FOREVER }, undefined, host);
    await kv.put("k", bytes("v"));
    closed = true;
    const signal = AbortSignal.abort();
    for (const call of [
      () => kv.get("k"),
      () => kv.put("k", bytes("w"), { signal }),
      () => kv.delete("k"),
      () => openKeyValue(env.pool, env.schema, name, { mode: "open" }, undefined, host),
    ]) {
      const err = await windshiftError(call());
      expect(err.code).toBe(ErrorCode.Closed);
      expect(err.message).toContain("closed");
    }
    closed = false;
    expect(await kv.get("k")).toEqual({ value: bytes("v"), revision: 1 });
  });

  it("reports a schema without the key-value tables as SERVER, naming ensureSchema", async () => {
    const err = await windshiftError(
      openKeyValue(env.pool, "ws_no_such_schema", "b", { mode: "create", options: FOREVER }),
    );
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toContain("ensureSchema");
  });
});
