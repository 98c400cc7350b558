/**
 * A 3-node JetStream cluster on loopback for fault-injection tests: one
 * `nats-server` process per node (the binary `findNatsServer()` picks), each
 * with its own client, route and monitoring port and its own store, and
 * per-node kill (SIGKILL), stop (SIGSTOP), cont (SIGCONT) and restart (same
 * ports and store).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JetStreamManager } from "@nats-io/jetstream";
import { findNatsServer } from "../../src/testing/index.js";
import { holdFor } from "../helpers.js";

/** One server of a {@link Cluster}. */
export interface ClusterNode {
  /** The configured `server_name`; what `cluster.leader` reports. */
  readonly name: string;
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  /** The monitoring port (`/jsz`, `/varz`). */
  readonly httpPort: number;
  readonly storeDir: string;
  /** The current process id, -1 when it is not running. */
  readonly pid: number;
  /** Whether the process exists (it may be stopped). */
  readonly running: boolean;
  /** Whether the process is frozen by {@link ClusterNode.stop}. */
  readonly stopped: boolean;
  /** SIGKILL; resolves once the process has exited. Keeps the store. */
  kill(): Promise<void>;
  /** SIGSTOP; resolves once the kernel reports the process stopped. */
  stop(): Promise<void>;
  /** SIGCONT after {@link ClusterNode.stop}. */
  cont(): void;
  /** Kills the node if it runs, then starts it on the same ports and store. */
  restart(): Promise<void>;
  /** The last lines the server wrote to stderr. */
  log(): string;
}

/** A running cluster; {@link Cluster.close} stops every node and removes the stores. */
export interface Cluster {
  readonly name: string;
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL, for a client's `servers`. */
  readonly urls: string[];
  /** The node with this `server_name`. */
  node(name: string): ClusterNode;
  /**
   * Waits until every running, unstopped node reports the same meta leader
   * (through `/jsz`) and that leader is one of them; resolves with its name.
   */
  waitForMetaLeader(options?: WaitOptions): Promise<string>;
  /** The node that leads `stream` now (asked through `jsm`). */
  streamLeader(jsm: JetStreamManager, stream: string): Promise<ClusterNode>;
  /** The node that leads `consumer` on `stream` now. */
  consumerLeader(jsm: JetStreamManager, stream: string, consumer: string): Promise<ClusterNode>;
  /**
   * Waits until `stream` has a leader among the running nodes (other than
   * `not`, when given) and, with `current`, every replica is online and current.
   */
  waitForStreamLeader(
    jsm: JetStreamManager,
    stream: string,
    options?: WaitOptions & { not?: ClusterNode; current?: boolean },
  ): Promise<ClusterNode>;
  /** As {@link Cluster.waitForStreamLeader}, for a consumer. */
  waitForConsumerLeader(
    jsm: JetStreamManager,
    stream: string,
    consumer: string,
    options?: WaitOptions & { not?: ClusterNode; current?: boolean },
  ): Promise<ClusterNode>;
  /** Kills every node and removes the stores. Safe to call more than once. */
  close(): Promise<void>;
}

export interface WaitOptions {
  /** @default 20_000 */
  readonly timeoutMs?: number;
}

export interface ClusterOptions {
  /** @default 3 */
  readonly size?: number;
  /** @default what `findNatsServer()` finds */
  readonly binary?: string;
  /** How long each node may take to accept connections. @default 10_000 */
  readonly startTimeoutMs?: number;
}

/** Pids of every node process this module started, for the exit hook. */
const live = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // If the test process dies without afterAll, no node must outlive it.
  process.once("exit", () => {
    for (const pid of live) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Starts a JetStream cluster on loopback and waits for a meta leader.
 *
 * @example
 * ```ts
 * const cluster = await startCluster();
 * const nc = await connect({ servers: cluster.urls });
 * // ...
 * await cluster.close();
 * ```
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const size = options.size ?? 3;
  const binary = findNatsServer(options.binary);
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const root = await mkdtemp(join(tmpdir(), "windshift-faults-"));
  const name = `wsf_${root.slice(-6).replace(/[^A-Za-z0-9]/g, "x")}`;
  const ports = await freePorts(size * 3);
  installExitHook();

  const specs = Array.from({ length: size }, (_, i) => ({
    name: `n${i + 1}`,
    port: ports[i * 3] as number,
    clusterPort: ports[i * 3 + 1] as number,
    httpPort: ports[i * 3 + 2] as number,
    storeDir: join(root, `n${i + 1}`),
    config: join(root, `n${i + 1}.conf`),
  }));
  const routes = specs.map((s) => `nats-route://127.0.0.1:${s.clusterPort}`);
  for (const s of specs) {
    await mkdir(s.storeDir, { recursive: true });
    await writeFile(
      s.config,
      [
        `server_name: ${s.name}`,
        `listen: 127.0.0.1:${s.port}`,
        `http: 127.0.0.1:${s.httpPort}`,
        "jetstream {",
        `  store_dir: ${JSON.stringify(s.storeDir)}`,
        "  max_memory_store: 256MB",
        "  max_file_store: 4GB",
        "}",
        "cluster {",
        `  name: ${name}`,
        `  listen: 127.0.0.1:${s.clusterPort}`,
        `  routes: [${routes.filter((r) => !r.endsWith(`:${s.clusterPort}`)).join(", ")}]`,
        "}",
        "",
      ].join("\n"),
    );
  }

  const nodes = specs.map((s) => new Node(binary, s, startTimeoutMs));
  let closed = false;
  const cluster: Cluster = {
    name,
    nodes,
    urls: nodes.map((n) => n.url),
    node(serverName) {
      const n = nodes.find((x) => x.name === serverName);
      if (n === undefined) throw new Error(`no node named ${JSON.stringify(serverName)}`);
      return n;
    },
    async waitForMetaLeader(opts = {}) {
      return poll(opts.timeoutMs ?? 20_000, "a meta leader all running nodes agree on", async () => {
        const up = nodes.filter((n) => n.running && !n.stopped);
        if (up.length === 0) return undefined;
        const leaders = await Promise.all(up.map((n) => n.metaLeader()));
        const first = leaders[0];
        if (!first || leaders.some((l) => l !== first)) return undefined;
        return up.some((n) => n.name === first) ? first : undefined;
      });
    },
    async streamLeader(jsm, stream) {
      const leader = (await jsm.streams.info(stream)).cluster?.leader;
      if (!leader) throw new Error(`stream ${stream} has no leader`);
      return cluster.node(leader);
    },
    async consumerLeader(jsm, stream, consumer) {
      const leader = (await jsm.consumers.info(stream, consumer)).cluster?.leader;
      if (!leader) throw new Error(`consumer ${stream}/${consumer} has no leader`);
      return cluster.node(leader);
    },
    async waitForStreamLeader(jsm, stream, opts = {}) {
      return poll(opts.timeoutMs ?? 20_000, `a leader for stream ${stream}`, async () => {
        const info = await jsm.streams.info(stream).catch(() => undefined);
        return pickLeader(nodes, info?.cluster, opts);
      });
    },
    async waitForConsumerLeader(jsm, stream, consumer, opts = {}) {
      return poll(opts.timeoutMs ?? 20_000, `a leader for consumer ${stream}/${consumer}`, async () => {
        const info = await jsm.consumers.info(stream, consumer).catch(() => undefined);
        return pickLeader(nodes, info?.cluster, opts);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(nodes.map((n) => n.kill()));
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await cluster.waitForMetaLeader();
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

interface ClusterInfoLike {
  leader?: string;
  replicas?: { name: string; current: boolean; offline?: boolean }[];
}

function pickLeader(
  nodes: readonly Node[],
  info: ClusterInfoLike | undefined,
  opts: { not?: ClusterNode; current?: boolean },
): Node | undefined {
  const leader = nodes.find((n) => n.name === info?.leader);
  if (leader === undefined || !leader.running || leader.stopped || leader === opts.not) return undefined;
  if (opts.current) {
    const replicas = info?.replicas ?? [];
    if (replicas.length !== nodes.length - 1) return undefined;
    if (replicas.some((r) => !r.current || r.offline)) return undefined;
  }
  return leader;
}

interface NodeSpec {
  name: string;
  port: number;
  clusterPort: number;
  httpPort: number;
  storeDir: string;
  config: string;
}

class Node implements ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly httpPort: number;
  readonly storeDir: string;
  readonly #binary: string;
  readonly #config: string;
  readonly #startTimeoutMs: number;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stderr = "";
  #stopped = false;

  constructor(binary: string, spec: NodeSpec, startTimeoutMs: number) {
    this.#binary = binary;
    this.#config = spec.config;
    this.#startTimeoutMs = startTimeoutMs;
    this.name = spec.name;
    this.port = spec.port;
    this.clusterPort = spec.clusterPort;
    this.httpPort = spec.httpPort;
    this.storeDir = spec.storeDir;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.running ? (this.#child?.pid ?? -1) : -1;
  }

  get running(): boolean {
    const c = this.#child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  log(): string {
    return this.#stderr;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const proc = spawn(this.#binary, ["-c", this.#config], { stdio: ["ignore", "ignore", "pipe"] });
    this.#child = proc;
    this.#stopped = false;
    const pid = proc.pid;
    if (pid !== undefined) live.add(pid);
    proc.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-16_000);
    });
    this.#exited = new Promise((resolve) =>
      proc.once("exit", () => {
        if (pid !== undefined) live.delete(pid);
        resolve();
      }),
    );
    await poll(this.#startTimeoutMs, `${this.name} to accept connections on ${this.port}`, async () => {
      if (!this.running) throw new Error(`${this.name} exited at start: ${this.#stderr}`);
      return (await canConnect(this.port)) || undefined;
    });
  }

  async kill(): Promise<void> {
    const proc = this.#child;
    if (proc === undefined || !this.running) return;
    proc.kill("SIGKILL");
    await this.#exited;
    this.#stopped = false;
  }

  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid < 0) throw new Error(`${this.name} is not running`);
    process.kill(pid, "SIGSTOP");
    this.#stopped = true;
    await poll(5_000, `${this.name} to stop`, async () => {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      return /^\d+ \(.*\) T/.test(stat) || undefined;
    });
  }

  cont(): void {
    const pid = this.pid;
    if (pid < 0) throw new Error(`${this.name} is not running`);
    process.kill(pid, "SIGCONT");
    this.#stopped = false;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** The meta leader this node reports through `/jsz`, or undefined. */
  async metaLeader(): Promise<string | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.httpPort}/jsz`, { signal: AbortSignal.timeout(1_000) });
      const jsz = (await res.json()) as { meta_cluster?: { leader?: string } };
      return jsz.meta_cluster?.leader || undefined;
    } catch {
      return undefined;
    }
  }
}

/** Polls `check` every 50 ms until it returns a value, or fails at the deadline. */
async function poll<T>(timeoutMs: number, what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await holdFor(50); // the poll interval
  }
}

/** Ports the kernel says are free, all distinct (held open together while picked). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
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
