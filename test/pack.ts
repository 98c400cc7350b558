/**
 * `npm pack` of this repository, one pack at a time across test files. Its
 * `prepack` build empties `dist/` and writes it anew, so two packs at once
 * (the package test and the tutorial test run side by side) could each ship
 * the other's half-written `dist/`. A lock directory beside the system's
 * temporary files keeps them apart.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { root } from "./child.js";
import { waitFor } from "./helpers.js";

const run = promisify(execFile);

/** How long a pack may wait for another's. */
const WAIT_MS = 300_000;
/** A lock older than this was left by a pack that died: it is taken over. */
const STALE_MS = 600_000;

/** What `npm pack` made: the tarball's path and the files it holds. */
export interface Packed {
  readonly tarball: string;
  readonly files: readonly string[];
}

/** Packs the repository into `destination`, after any other pack of it in progress ends. */
export async function packPackage(destination: string): Promise<Packed> {
  const lock = join(tmpdir(), `windshift-pack-${createHash("sha256").update(root).digest("hex").slice(0, 12)}.lock`);
  await acquire(lock);
  try {
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", destination], {
      cwd: root,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 180_000,
    });
    const [info] = JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
    if (info === undefined) throw new Error(`npm pack printed no package: ${stdout}`);
    return { tarball: join(destination, info.filename), files: info.files.map((f) => f.path) };
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Takes the lock directory `lock` (mkdir is atomic), polling while another pack holds it. */
async function acquire(lock: string): Promise<void> {
  await waitFor(
    async () => {
      try {
        await mkdir(lock);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const since = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (since > STALE_MS) await rm(lock, { recursive: true, force: true });
      return false;
    },
    { timeoutMs: WAIT_MS, intervalMs: 200, what: `another npm pack of ${root} to give up ${lock}` },
  );
}
