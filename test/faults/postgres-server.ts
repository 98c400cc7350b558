/**
 * A private PostgreSQL server for one fault test file: its own data
 * directory and port, so that it can be killed and restarted without
 * touching the machine's shared server (127.0.0.1:5432), which other tests
 * use.
 *
 * PostgreSQL refuses to run as root, so `initdb` and `pg_ctl` run as the
 * `postgres` OS user (`runuser`), over a temporary directory owned by it.
 * Trust authentication, fsync off: a test server, fast to start and to
 * recover. Commits stay synchronous, so that a commit acknowledged before a
 * kill (of the processes, not of the machine) is in the WAL the restart
 * replays.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { waitFor } from "../helpers.js";

const run = promisify(execFile);

/** A running private server. */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  readonly port: number;
  /** How long the first start took (initdb included), in ms. */
  readonly startMs: number;
  /** Stops the server (if running) and removes its data directory. Safe to call twice. */
  stop(): Promise<void>;
  /**
   * SIGKILLs the postmaster: an unclean crash, no shutdown checkpoint. Its
   * backends are killed too (as they would die on their own once they see
   * the postmaster gone), so that a restart finds no old shared memory in use.
   */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory (crash recovery after a kill); resolves once it accepts queries. */
  restart(): Promise<void>;
}

/** The directory of PostgreSQL's binaries: the newest `/usr/lib/postgresql/<version>/bin` with `pg_ctl`. */
export function postgresBinaries(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(root, v, "bin", "pg_ctl")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new Error(`no PostgreSQL binaries under ${root}/<version>/bin (install postgresql-<version>)`);
  }
  return join(root, newest, "bin");
}

/** A TCP port on 127.0.0.1 that nothing listens on now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the `postgres` OS user. */
async function asPostgres(bin: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run("runuser", ["-u", "postgres", "--", bin, ...args], { timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${bin} ${args.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
}

function uidOf(user: string): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${user}:`));
  if (line === undefined) throw new Error(`no OS user "${user}" to run PostgreSQL as`);
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/** The pids of processes whose parent is `parent`. */
function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a private server: initdb into a fresh directory, then pg_ctl start on a free port. */
export async function startPostgres(): Promise<PostgresServer> {
  const started = performance.now();
  const bin = postgresBinaries();
  const { uid, gid } = uidOf("postgres");
  const dir = mkdtempSync(join(tmpdir(), "windshift-pg-"));
  chownSync(dir, uid, gid);
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  const port = await freePort();
  let postmaster: number | undefined;
  let removed = false;

  // Whatever happens to the test process, the server must not outlive it.
  const onExit = (): void => {
    if (postmaster !== undefined && alive(postmaster)) {
      for (const child of childrenOf(postmaster)) process.kill(child, "SIGKILL");
      process.kill(postmaster, "SIGKILL");
    }
    if (!removed) rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", onExit);

  const start = async (): Promise<void> => {
    const options = [
      `-p ${port}`,
      "-c listen_addresses=127.0.0.1",
      `-k ${dir}`,
      "-c fsync=off",
      "-c full_page_writes=off",
      "-c max_connections=200",
      "-c shared_buffers=32MB",
    ].join(" ");
    await asPostgres(join(bin, "pg_ctl"), ["-D", data, "-l", log, "-w", "-t", "30", "-o", options, "start"]);
    postmaster = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
    // pg_ctl -w waits for the server to accept connections; make sure a query works over TCP too.
    await waitFor(
      async () => {
        const client = new pg.Client({ connectionString: url });
        client.on("error", () => {});
        try {
          await client.connect();
          await client.query("SELECT 1");
          return true;
        } catch {
          return false;
        } finally {
          await client.end().catch(() => {});
        }
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `PostgreSQL on port ${port} to answer` },
    );
  };

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    await asPostgres(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
    await start();
  } catch (err) {
    onExit();
    removed = true;
    process.removeListener("exit", onExit);
    throw err;
  }

  const kill = async (): Promise<void> => {
    const pid = postmaster;
    if (pid === undefined || !alive(pid)) throw new Error("the private PostgreSQL server is not running");
    const children = childrenOf(pid);
    process.kill(pid, "SIGKILL");
    for (const child of children) {
      try {
        process.kill(child, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await waitFor(() => [pid, ...children].every((p) => !alive(p)), {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: "the killed PostgreSQL processes to be gone",
    });
    postmaster = undefined;
  };

  return {
    url,
    port,
    startMs: Math.round(performance.now() - started),
    kill,
    async restart() {
      if (postmaster !== undefined && alive(postmaster)) throw new Error("the private PostgreSQL server still runs");
      await start();
    },
    async stop() {
      if (removed) return;
      if (postmaster !== undefined && alive(postmaster)) {
        const pid = postmaster;
        await asPostgres(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]).catch(async () => {
          await kill();
        });
        await waitFor(() => !alive(pid), { timeoutMs: 10_000, intervalMs: 10, what: "PostgreSQL to stop" });
      }
      postmaster = undefined;
      rmSync(dir, { recursive: true, force: true });
      removed = true;
      process.removeListener("exit", onExit);
    },
  };
}
