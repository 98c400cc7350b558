// Type-checks the TypeScript snippets of README.md against the built package
// (run `npm run build` first). Each ```ts block becomes a module of its own in
// .build/readme/, named after the README line it starts on; `nc` and `events`
// are in scope for the snippets that do not create their own, and the
// repository's gen/ is reachable as ./gen/ through `rootDirs`.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, ".build", "readme");
const readme = readFileSync(join(root, "README.md"), "utf8");

const snippets = [];
for (const match of readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
  const line = readme.slice(0, match.index).split("\n").length + 1;
  snippets.push({ line, code: match[1] });
}
if (snippets.length === 0) throw new Error("README.md has no ```ts snippets");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const { line, code } of snippets) {
  writeFileSync(join(out, `readme-line-${line}.ts`), `${code}export {};\n`);
}
writeFileSync(
  join(out, "scope.d.ts"),
  `import type { NatsConnection } from "@nats-io/nats-core";
import type { Events } from "windshift";

declare global {
  const nc: NatsConnection;
  const events: Events;
}
`,
);
writeFileSync(
  join(out, "tsconfig.json"),
  `${JSON.stringify(
    {
      extends: "../../tsconfig.json",
      compilerOptions: { noEmit: true, rootDirs: [".", "../.."], noUnusedLocals: false, noUnusedParameters: false },
      include: ["*.ts"],
    },
    null,
    2,
  )}\n`,
);

try {
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", out], {
    stdio: "inherit",
  });
} catch {
  console.error(`README.md: a snippet does not type-check (files in ${out}, named by their README line)`);
  process.exit(1);
}
console.log(`README.md: ${snippets.length} TypeScript snippets type-check`);
