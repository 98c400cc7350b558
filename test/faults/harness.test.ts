/**
 * The fault harness itself: the cluster's per-node controls and the proxy's
 * faults do what the scenarios rely on.
 */
import { createServer, type Socket, connect as tcpConnect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { holdFor, waitFor } from "../helpers.js";
import { type Cluster, startCluster } from "./cluster.js";
import { startProxy } from "./proxy.js";

describe("cluster", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it("stops, continues, kills and restarts single nodes on the same ports", async () => {
    expect(cluster.nodes.map((n) => n.name)).toEqual(["n1", "n2", "n3"]);
    const leader = cluster.node(await cluster.waitForMetaLeader());
    const other = cluster.nodes.find((n) => n !== leader)!;
    await other.stop();
    expect(other.stopped).toBe(true);
    expect(await cluster.waitForMetaLeader()).toBe(leader.name);
    other.cont();
    expect(other.stopped).toBe(false);
    const pid = other.pid;
    await other.kill();
    expect([other.running, other.pid]).toEqual([false, -1]);
    await other.restart();
    expect(other.running).toBe(true);
    expect(other.pid).not.toBe(pid);
    expect(await cluster.waitForMetaLeader()).toBeTruthy();
  }, 60_000);

  it("close() leaves no process behind", async () => {
    const pids = cluster.nodes.map((n) => n.pid);
    await cluster.close();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});

describe("proxy", () => {
  /** An echo server: whatever a client sends comes back. */
  async function echo(): Promise<{ port: number; close(): Promise<void> }> {
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
      s.pipe(s);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    return {
      port,
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }

  function client(port: number): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
    return new Promise((resolve, reject) => {
      let data = "";
      let closed = false;
      const socket = tcpConnect({ host: "127.0.0.1", port }, () =>
        resolve({ socket, received: () => data, closed: () => closed }),
      );
      socket.on("data", (chunk) => {
        data += chunk.toString();
      });
      socket.on("error", () => {});
      socket.on("close", () => {
        closed = true;
      });
      socket.once("error", reject);
    });
  }

  it("forwards both ways, cuts connections, and swallows traffic in a black hole", async () => {
    const target = await echo();
    const proxy = await startProxy({ port: target.port });
    try {
      const a = await client(proxy.port);
      a.socket.write("hello");
      await waitFor(() => a.received() === "hello", { what: "the echo" });
      expect(proxy.connections).toBe(1);

      proxy.cut();
      await waitFor(() => a.closed(), { what: "the cut connection to close" });
      expect(proxy.connections).toBe(0);

      const b = await client(proxy.port);
      proxy.blackhole(true);
      b.socket.write("lost");
      // Nothing comes back, and the connection stays open (bounded observation window).
      await holdFor(300);
      expect([b.received(), b.closed()]).toEqual(["", false]);
      // Lifting the black hole resets what lost bytes; fresh connections work.
      proxy.blackhole(false);
      await waitFor(() => b.closed(), { what: "the broken connection to be reset" });
      const c = await client(proxy.port);
      c.socket.write("again");
      await waitFor(() => c.received() === "again", { what: "the echo after the black hole" });
      expect(proxy.accepted).toBe(3);
      c.socket.destroy();
    } finally {
      await proxy.close();
      await target.close();
    }
  });
});
