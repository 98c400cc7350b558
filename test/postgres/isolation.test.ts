/**
 * The PostgreSQL engine stays behind its entry: `pg` is imported only under
 * `src/engines/postgres/` and by `src/postgres/` (the `windshift/postgres`
 * entry), and nothing else in `src/` imports either, so `import "windshift"`
 * never loads the driver.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const src = fileURLToPath(new URL("../../src/", import.meta.url));
const OWN = "engines/postgres/";
const ENTRY = "postgres/";

/** The module specifiers a file imports or re-exports (static and dynamic). */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) found.push(m[1] as string);
  return found;
}

it("imports pg only from src/engines/postgres/ and the windshift/postgres entry, which nothing else in src/ imports", async () => {
  const files = (await readdir(src, { recursive: true })).filter((f) => f.endsWith(".ts"));
  const offences: string[] = [];
  for (const file of files) {
    const path = relative(src, join(src, file)).replaceAll("\\", "/");
    if (path.startsWith(OWN) || path.startsWith(ENTRY)) continue;
    for (const spec of specifiers(await readFile(join(src, file), "utf8"))) {
      if (spec === "pg" || spec.startsWith("pg/") || spec.includes("/postgres/") || spec.startsWith("./postgres")) {
        offences.push(`${path} imports ${spec}`);
      }
    }
  }
  expect(offences).toEqual([]);
  // The check can see an import: the engine's own files do import pg.
  const own = await readFile(join(src, OWN, "database.ts"), "utf8");
  expect(specifiers(own)).toContain("pg");
});
