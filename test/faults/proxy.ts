/**
 * A small TCP proxy to put between a client and a server: it forwards bytes
 * both ways, and on request resets every connection (`cut`) or swallows
 * traffic without closing anything (`blackhole`).
 *
 * @module
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

/** A running proxy; see {@link startProxy}. */
export interface TcpProxy {
  /** The port clients connect to. */
  readonly port: number;
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** How many client connections are open through the proxy. */
  readonly connections: number;
  /** How many client connections the proxy has accepted so far. */
  readonly accepted: number;
  /**
   * Resets every current connection (RST on both sides): the client sees its
   * connection die and reconnects, through the proxy again.
   */
  cut(): void;
  /**
   * `true`: swallow all traffic both ways, for current and new connections,
   * without closing any. `false`: forward again. A connection that lost bytes
   * has a broken byte stream (the protocol cannot resynchronise), so turning
   * the black hole off resets those connections.
   */
  blackhole(on: boolean): void;
  /** Resets every connection and stops listening. */
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Bytes were swallowed: the streams are out of step. */
  tainted: boolean;
}

/** Starts a proxy on a free loopback port that forwards to `target`. */
export async function startProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const host = target.host ?? "127.0.0.1";
  const pairs = new Set<Pair>();
  let holes = false;
  let accepted = 0;

  const reset = (pair: Pair): void => {
    pairs.delete(pair);
    for (const s of [pair.client, pair.upstream]) {
      if (s.destroyed) continue;
      // A socket still connecting cannot send a RST; destroying it is enough.
      if (s.connecting || s.pending) s.destroy();
      else s.resetAndDestroy();
    }
  };

  const forward = (pair: Pair, from: Socket, to: Socket): void => {
    from.on("data", (chunk: Buffer) => {
      if (holes) {
        pair.tainted = true;
        return;
      }
      if (!to.write(chunk)) {
        from.pause();
        to.once("drain", () => from.resume());
      }
    });
  };

  const server: Server = createServer({ noDelay: true }, (client) => {
    accepted++;
    const upstream = tcpConnect({ host, port: target.port, noDelay: true });
    const pair: Pair = { client, upstream, tainted: false };
    pairs.add(pair);
    const end = (): void => {
      if (!pairs.has(pair)) return;
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on("error", end);
      s.on("close", end);
    }
    forward(pair, client, upstream);
    forward(pair, upstream, client);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no port");
  const port = address.port;

  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    get connections() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    cut() {
      for (const pair of [...pairs]) reset(pair);
    },
    blackhole(on) {
      holes = on;
      if (!on) for (const pair of [...pairs]) if (pair.tainted) reset(pair);
    },
    async close() {
      for (const pair of [...pairs]) reset(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
