/**
 * The C client's column: bench/native/jsbench.c, compiled on demand against
 * libnats (`gcc -O2 … -lnats`, cached in .build/native/ by the source's hash)
 * and run as a child process for each of its rounds, which reads the round's
 * time (and in the latency scenario every event's latency) from the program's
 * one line of JSON. Without gcc or libnats the column is left out with a note:
 * `apt-get install -y libnats-dev` (Debian's libnats 3.x) brings it.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CEILING_PULL_BATCH, CEILING_ROUND_TIMEOUT_MS } from "./ceiling.js";
import type { Ceiling, CeilingLatencyRound, CeilingRound } from "./drivers.js";

const run = promisify(execFile);

/** The compiler and its flags; part of the cache key. */
const CC = "gcc";
const CFLAGS = ["-O2", "-Wall", "-pthread"];
const LIBS = ["-lnats"];

/** How to get the column, for the notes. */
export const NATIVE_INSTALL_HINT = "apt-get install -y gcc libnats-dev";

/** The C client, ready to run, or why not. */
export type NativeClient =
  | { readonly available: true; readonly ceiling: Ceiling; readonly description: string }
  | { readonly available: false; readonly note: string };

interface Output {
  readonly mode: string;
  readonly count: number;
  readonly seconds: number;
  readonly libnats: string;
  /** The latency mode's: publish call → handler for each event, in whole microseconds. */
  readonly latencyUs?: number[];
}

/** What a failed child process left: the `execFile` error's stderr and message. */
function failure(err: unknown): string {
  const e = err as { stderr?: string; message?: string; code?: unknown };
  const stderr = typeof e.stderr === "string" ? e.stderr.trim() : "";
  return stderr !== "" ? stderr : (e.message ?? String(err));
}

/**
 * Compiles bench/native/jsbench.c unless .build/native/ already holds a build
 * of the same source, checks that it runs, and returns the C client's
 * ceiling for `url`.
 */
export async function prepareNativeClient(url: string): Promise<NativeClient> {
  // This module runs from .build/bench/; the source stays in bench/native/.
  const source = fileURLToPath(new URL("../../bench/native/jsbench.c", import.meta.url));
  const buildDir = fileURLToPath(new URL("../native/", import.meta.url));
  let text: string;
  try {
    text = await readFile(source, "utf8");
  } catch {
    return { available: false, note: `${source} not found` };
  }
  const hash = createHash("sha256")
    .update([CC, ...CFLAGS, ...LIBS, text].join("\0"))
    .digest("hex")
    .slice(0, 16);
  const binary = join(buildDir, `jsbench-${hash}`);
  if (!existsSync(binary)) {
    await mkdir(buildDir, { recursive: true });
    const partial = `${binary}.${process.pid}.tmp`;
    try {
      await run(CC, [...CFLAGS, "-o", partial, source, ...LIBS]);
      await rename(partial, binary);
      // Builds of older sources are not needed any more.
      for (const name of await readdir(buildDir)) {
        if (name.startsWith("jsbench-") && !name.endsWith(".tmp") && join(buildDir, name) !== binary) {
          await rm(join(buildDir, name), { force: true });
        }
      }
    } catch (err) {
      await rm(partial, { force: true });
      if ((err as { code?: unknown }).code === "ENOENT") {
        return { available: false, note: `${CC} not found (${NATIVE_INSTALL_HINT})` };
      }
      const why = failure(err);
      if (/nats\.h|-lnats/.test(why)) return { available: false, note: `libnats not found (${NATIVE_INSTALL_HINT})` };
      return { available: false, note: `${CC} failed: ${why.split("\n")[0]}` };
    }
  }
  let version: string;
  try {
    const { stdout } = await run(binary, ["version"]);
    version = (JSON.parse(stdout) as { libnats: string }).libnats;
  } catch (err) {
    return { available: false, note: `${binary} does not run: ${failure(err).split("\n")[0]}` };
  }
  return {
    available: true,
    description: `libnats ${version}, ${CC} ${CFLAGS.join(" ")}`,
    ceiling: nativeCeiling(binary, url),
  };
}

function nativeCeiling(binary: string, url: string): Ceiling {
  const exec = async (args: string[], count: number, timeoutMs: number): Promise<Output> => {
    let stdout: string;
    try {
      ({ stdout } = await run(binary, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }));
    } catch (err) {
      throw new Error(`C client ${args[0]}: ${failure(err)}`);
    }
    const out = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as Output;
    if (out.count !== count || !(out.seconds > 0)) {
      throw new Error(`C client ${args[0]}: unexpected output ${stdout.trim().slice(0, 200)}`);
    }
    return out;
  };
  const round = async (args: string[], count: number): Promise<CeilingRound> => ({
    seconds: (await exec(args, count, CEILING_ROUND_TIMEOUT_MS)).seconds,
  });
  return {
    variant: "C client",
    external: true,
    publish(subject, count, window, payload) {
      const hex = Buffer.from(payload.blob).toString("hex");
      return round(["publish", url, subject, String(count), String(window), hex, String(payload.bytes)], count);
    },
    drain(stream, consumer, count) {
      return round(["consume", url, stream, consumer, String(count), String(CEILING_PULL_BATCH)], count);
    },
    async latency(stream, consumer, subject, count, rate, payload, confirmAcks, pending): Promise<CeilingLatencyRound> {
      const hex = Buffer.from(payload.blob).toString("hex");
      const args = [
        "latency",
        url,
        stream,
        consumer,
        subject,
        String(count),
        String(rate),
        String(pending),
        confirmAcks ? "confirmed" : "fire-and-forget",
        hex,
        String(payload.bytes),
      ];
      // The program bounds itself (the schedule plus 15 s, an alarm 30 s later); this is the backstop.
      const out = await exec(args, count, CEILING_ROUND_TIMEOUT_MS + (count * 1_000) / rate);
      const us = out.latencyUs;
      if (us === undefined || us.length !== count || !us.every((u) => Number.isInteger(u) && u >= 0)) {
        throw new Error(`C client latency: expected ${count} latencies, got ${us?.length ?? "none"}`);
      }
      return { seconds: out.seconds, latencies: us.map((u) => u / 1_000) };
    },
  };
}
