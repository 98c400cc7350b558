// Checks the user-facing Markdown: README.md and docs/*.md (run `npm run build` first).
//
// 1. Type-checks their ```ts snippets against the built package. Each snippet
//    becomes a module of its own in .build/readme/, named after its file and
//    the line it starts on (README-line-12.ts, docs-guide-line-40.ts), so two
//    snippets of one page never see each other; `nc` and `events` are in scope
//    for the snippets that do not create their own, and the repository's gen/
//    is reachable as ./gen/ through `rootDirs`.
// 2. Checks that a block under `<!-- file: path -->` is that file's text.
// 3. Checks their relative links: the file must exist, and an anchor
//    (`page.md#anchor`, `#anchor`) must name a heading of that page, as GitHub
//    makes anchors from headings.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, ".build", "readme");

const pages = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`),
];

/** The line (from 1) at `index` of `text`. */
function lineAt(text, index) {
  return text.slice(0, index).split("\n").length;
}

/** `text` with fenced code blocks blanked out (line numbers kept), for headings and links. */
function withoutCode(text) {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, (block) => block.replace(/[^\n]/g, ""));
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens. */
function anchorsOf(text) {
  const anchors = new Set();
  const seen = new Map();
  for (const match of withoutCode(text).matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const base = match[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

const problems = [];
const snippets = [];
for (const page of pages) {
  const text = readFileSync(join(root, page), "utf8");
  const prefix = page.replace(/\.md$/, "").replace(/\//g, "-");
  // A block under `<!-- file: path -->` shows that file of the repository: it must match it exactly
  // (the file is compiled and run by its own test, so it is not type-checked here).
  const shown = new Set();
  for (const match of text.matchAll(/^<!-- file: (\S+) -->\n```[a-z]*\n([\s\S]*?)^```$/gm)) {
    shown.add(match.index + match[0].indexOf("```"));
    const where = `${page}:${lineAt(text, match.index)}`;
    const file = join(root, match[1]);
    if (!existsSync(file)) problems.push(`${where}: shows ${match[1]}, which does not exist`);
    else if (readFileSync(file, "utf8") !== match[2])
      problems.push(`${where}: differs from ${match[1]}; copy it again`);
  }
  for (const match of text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    if (shown.has(match.index)) continue;
    snippets.push({ page, file: `${prefix}-line-${lineAt(text, match.index) + 1}.ts`, code: match[1] });
  }

  // Inline code cannot hold a link; dropping it also drops brackets quoted in it.
  const prose = withoutCode(text).replace(/`[^`\n]*`/g, (code) => code.replace(/[[\]()]/g, " "));
  for (const match of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = match[1];
    if (/^[a-z][a-z+.-]*:/i.test(target)) continue; // https:, mailto:
    const where = `${page}:${lineAt(prose, match.index)}`;
    const [path, anchor] = target.split("#", 2);
    const file = path === "" ? join(root, page) : join(root, dirname(page), path);
    if (!existsSync(file)) {
      problems.push(`${where}: ${target}: no such file`);
      continue;
    }
    if (anchor !== undefined) {
      if (!file.endsWith(".md")) {
        problems.push(`${where}: ${target}: an anchor into a file that is not Markdown`);
      } else if (!anchorsOf(readFileSync(file, "utf8")).has(anchor)) {
        problems.push(`${where}: ${target}: ${relative(root, file)} has no heading for #${anchor}`);
      }
    }
  }
}
if (!snippets.some((s) => s.page === "README.md")) problems.push("README.md has no ```ts snippets");
if (problems.length > 0) {
  for (const problem of problems) console.error(problem);
  console.error(`${problems.length} broken link(s) or missing snippet(s)`);
  process.exit(1);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const { file, code } of snippets) {
  writeFileSync(join(out, file), `${code}export {};\n`);
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
  console.error(`a snippet does not type-check (files in ${out}, named by their page and line)`);
  process.exit(1);
}
console.log(`${pages.join(", ")}: ${snippets.length} TypeScript snippets type-check, links resolve`);
