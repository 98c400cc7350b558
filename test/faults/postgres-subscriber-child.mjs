/**
 * The subscriber process of `postgres-killed-subscriber.test.ts`: opens a
 * subscription on the PostgreSQL engine (from a build of `src/` the test
 * made), takes events without settling them, and says on stdout, one JSON
 * line at a time, when it is ready and what it holds. The test SIGKILLs it.
 *
 * Arguments: <dist dir> <url> <schema> <stream> <consumer> <hold count>.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [dist, url, schema, stream, consumer, count] = process.argv.slice(2);
const hold = Number(count);
const { createPostgresEvents } = await import(pathToFileURL(join(dist, "postgres", "index.js")).href);
const events = createPostgresEvents({ connectionString: url, schema, migrate: false, pollIntervalMs: 100 });
// No auto-ping: the leases of what it holds run from the moment they were claimed.
const sub = await events.subscribe(stream, consumer, { prefetch: hold, autoPing: false });
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
say({ type: "ready", pid: process.pid });
const held = [];
for await (const event of sub) {
  held.push({ id: event.id, attempt: event.deliveryAttempt });
  if (held.length === hold) say({ type: "holding", events: held });
}
