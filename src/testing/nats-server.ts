import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { validationError } from "../errors.js";
import { describe } from "../internal/names.js";

/** Options for {@link startNatsServer}. */
export interface NatsServerOptions {
  /**
   * The `nats-server` binary.
   * @default `$NATS_SERVER_BIN`, else `nats-server` on `PATH`, else `/usr/sbin/nats-server`
   */
  readonly binary?: string;
  /**
   * The client port.
   * @default a free port chosen by the server
   */
  readonly port?: number;
  /**
   * JetStream's store directory.
   * @default a new temporary directory, removed by `stop()`
   */
  readonly storeDir?: string;
  /** Extra command-line arguments. */
  readonly args?: readonly string[];
  /**
   * The text of a nats-server configuration file (accounts, users and their
   * permissions, JetStream limits, ...), written to a temporary file and
   * passed with `-c`; removed by `stop()`, kept across `restart()`.
   *
   * The command line wins over the file: the server listens on 127.0.0.1 at
   * `port` (a `listen`, `host` or `port` in the file is overridden), and
   * JetStream is on, with its store in `storeDir` (a `jetstream` block keeps
   * its limits, but `jetstream: disabled` is overridden). Leave `store_dir`
   * out: with it, nats-server refuses to start ("Duplicate 'store_dir'
   * configuration"). With `accounts`, JetStream is available only to those
   * that enable it (`jetstream: enabled` in the account).
   *
   * @default none
   * @example
   * ```ts
   * const server = await startNatsServer({
   *   config: `
   *     accounts {
   *       APP {
   *         jetstream: enabled
   *         users: [
   *           { user: admin, password: admin-secret }
   *           { user: reader, password: reader-secret, permissions: {
   *               publish: { allow: ["$JS.API.>", "$JS.ACK.>"] }
   *               subscribe: { allow: ["_INBOX.>"] } } }
   *         ]
   *       }
   *     }`,
   * });
   * const nc = await connect({ servers: server.url, user: "reader", pass: "reader-secret" });
   * ```
   */
  readonly config?: string;
  /**
   * How long to wait for the server to accept connections.
   * @default 10_000
   */
  readonly startTimeoutMs?: number;
}

/** A running `nats-server -js` process. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** The client port; the same across restarts. */
  readonly port: number;
  /** The JetStream store directory; the same across restarts. */
  readonly storeDir: string;
  /** The server process id (changes on restart). */
  readonly pid: number;
  /** Stops the server gracefully (SIGTERM, then SIGKILL) and removes a temporary store. */
  stop(): Promise<void>;
  /** Kills the server (SIGKILL) without removing its store. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and store; kills it first if running. */
  restart(): Promise<void>;
}

/**
 * Finds the `nats-server` binary: `binary` when given, else
 * `$NATS_SERVER_BIN` when set, else `nats-server` on `PATH`, else
 * `/usr/sbin/nats-server`. A `binary` or `$NATS_SERVER_BIN` that is not an
 * executable file fails with a `VALIDATION` error naming it (never a silent
 * fall back to another binary); finding none throws an error that says how
 * to install one.
 */
export function findNatsServer(binary?: string): string {
  if (binary !== undefined && binary !== "")
    return executable("binary", binary, "pass the path of a nats-server binary");
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv !== undefined && fromEnv !== "") {
    return executable(
      "NATS_SERVER_BIN",
      fromEnv,
      "set it to the path of a nats-server binary, or unset it to use the one on PATH",
    );
  }
  const candidates: string[] = [];
  for (const dir of (process.env.PATH ?? "").split(delimiter)) if (dir) candidates.push(join(dir, "nats-server"));
  candidates.push("/usr/sbin/nats-server");
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    "nats-server not found: set NATS_SERVER_BIN, put nats-server on PATH, or install it (apt-get install nats-server)",
  );
}

/** `path`, given as `field`, if it is an executable file; else a validation error saying what it is and `fix`. */
function executable(field: string, path: string, fix: string): string {
  let problem: string;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) problem = "is a directory, not the nats-server binary";
    else {
      accessSync(path, constants.X_OK);
      return path;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problem = code === "ENOENT" || code === "ENOTDIR" ? "does not exist" : "is not executable (chmod +x it)";
  }
  throw validationError(field, `${describe(path)} ${problem}: ${fix}`);
}

/**
 * Starts `nats-server` with JetStream on loopback, for tests and demos.
 *
 * @example
 * ```ts
 * const server = await startNatsServer();
 * const nc = await connect({ servers: server.url });
 * // ...
 * await nc.close();
 * await server.stop();
 * ```
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = findNatsServer(options.binary);
  const ownStore = options.storeDir === undefined;
  const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), "windshift-nats-")));
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  let port = options.port ?? -1;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let configDir: string | undefined;
  const configArgs: string[] = [];
  if (options.config !== undefined) {
    configDir = await mkdtemp(join(tmpdir(), "windshift-conf-"));
    const file = join(configDir, "nats-server.conf");
    await writeFile(file, options.config, { mode: 0o600 });
    configArgs.push("-c", file);
  }

  const launch = async (): Promise<void> => {
    const portsDir = await mkdtemp(join(tmpdir(), "windshift-ports-"));
    try {
      // nats-server lets the command line override the file, whatever the order.
      const args = [
        ...configArgs,
        ...["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir, "--ports_file_dir", portsDir],
      ];
      const proc = spawn(binary, [...args, ...(options.args ?? [])], { stdio: ["ignore", "ignore", "pipe"] });
      child = proc;
      let stderr = "";
      proc.stderr?.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4_000);
      });
      exited = new Promise((resolve) => proc.once("exit", () => resolve()));
      const deadline = Date.now() + timeoutMs;
      while (port === -1) {
        if (proc.exitCode !== null) throw exitedAtStart(binary, proc.exitCode, stderr);
        if (Date.now() > deadline) {
          throw new Error(`${binary} did not start in ${timeoutMs} ms (raise startTimeoutMs?): ${stderr.trim()}`);
        }
        port = await readPort(portsDir);
        if (port === -1) await pause(20);
      }
      while (!(await canConnect(port))) {
        if (proc.exitCode !== null) throw exitedAtStart(binary, proc.exitCode, stderr);
        if (Date.now() > deadline) {
          throw new Error(`${binary} did not listen on port ${port} in ${timeoutMs} ms (raise startTimeoutMs?)`);
        }
        await pause(20);
      }
    } finally {
      await rm(portsDir, { recursive: true, force: true });
    }
  };

  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    if (signal === "SIGKILL") return exited;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      exited,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          proc.kill("SIGKILL");
          resolve(exited);
        }, 5_000);
      }),
    ]);
    clearTimeout(timer);
  };

  const removeConfig = async (): Promise<void> => {
    if (configDir !== undefined) await rm(configDir, { recursive: true, force: true });
  };
  try {
    await launch();
  } catch (err) {
    await signalAndWait("SIGKILL");
    await removeConfig();
    if (ownStore) await rm(storeDir, { recursive: true, force: true });
    throw err;
  }
  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    get pid() {
      return child?.pid ?? -1;
    },
    async stop() {
      await signalAndWait("SIGTERM");
      await removeConfig();
      if (ownStore) await rm(storeDir, { recursive: true, force: true });
    },
    async kill() {
      await signalAndWait("SIGKILL");
    },
    async restart() {
      await signalAndWait("SIGKILL");
      await launch();
    },
  };
}

/** The server quit before it listened: its exit code and the end of what it wrote to stderr (a bad config, a taken port). */
function exitedAtStart(binary: string, code: number, stderr: string): Error {
  const said = stderr.trim();
  return new Error(`${binary} exited at start with code ${code}${said === "" ? " and said nothing" : `: ${said}`}`);
}

async function readPort(dir: string): Promise<number> {
  const files = await readdir(dir).catch(() => [] as string[]);
  const file = files.find((f) => f.endsWith(".ports"));
  if (file === undefined) return -1;
  try {
    const { nats } = JSON.parse(await readFile(join(dir, file), "utf8")) as { nats?: string[] };
    const url = nats?.[0];
    const m = url === undefined ? null : /:(\d+)$/.exec(url);
    return m ? Number(m[1]) : -1;
  } catch {
    return -1; // written but not complete yet
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
