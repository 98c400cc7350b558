/**
 * The NATS connection of a CLI run, from `--server`, `--creds`, `--user` /
 * `--password`, `--token` and `--tls-ca`. The only module of the package
 * that imports `@nats-io/transport-node`, when it connects.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import type { NatsConnection } from "@nats-io/nats-core";
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import { type OptionValues, stringOption, UsageError } from "./args.js";

/** The server used when neither `--server` nor `$NATS_URL` names one. */
export const DEFAULT_SERVER = "nats://127.0.0.1:4222";

/** Where to connect and how to authenticate, read from the command line and the environment. */
export interface ConnectionSettings {
  /** The server URLs, without the user information they were given with. */
  readonly servers: readonly string[];
  readonly creds: string | undefined;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly token: string | undefined;
  readonly tlsCa: string | undefined;
}

/** `nats://user:password@host:4222` → the URL without them, and them (decoded). */
function splitUserInfo(server: string): { url: string; user?: string; password?: string } {
  const match = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(server);
  if (match === null) return { url: server };
  const [, scheme, info = "", rest] = match;
  const colon = info.indexOf(":");
  const user = decodeURIComponent(colon < 0 ? info : info.slice(0, colon));
  const password = colon < 0 ? undefined : decodeURIComponent(info.slice(colon + 1));
  return { url: `${scheme}${rest}`, user, ...(password === undefined ? {} : { password }) };
}

/**
 * Reads the connection options; conflicting credentials are a usage error.
 * A user and password (or a token alone) in a server URL count as
 * `--user`/`--password` (or `--token`).
 */
export function connectionSettings(values: OptionValues, env: NodeJS.ProcessEnv): ConnectionSettings {
  const server = stringOption(values, "server") ?? (env.NATS_URL || undefined) ?? DEFAULT_SERVER;
  const given = server
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(splitUserInfo);
  if (given.length === 0) throw new UsageError("--server: no server given");
  const inUrl = given.find((g) => g.user !== undefined);
  let user = stringOption(values, "user");
  let password = stringOption(values, "password");
  let token = stringOption(values, "token");
  const creds = stringOption(values, "creds");
  if (inUrl !== undefined && user === undefined && token === undefined && creds === undefined) {
    if (inUrl.password === undefined) token = inUrl.user;
    else [user, password] = [inUrl.user, inUrl.password];
  }
  const settings: ConnectionSettings = {
    servers: given.map((g) => g.url),
    creds,
    user,
    password,
    token,
    tlsCa: stringOption(values, "tls-ca"),
  };
  if ((settings.user === undefined) !== (settings.password === undefined)) {
    throw new UsageError("--user and --password go together");
  }
  const ways = [settings.creds, settings.user, settings.token].filter((w) => w !== undefined).length;
  if (ways > 1) throw new UsageError("give one of --creds, --user/--password and --token");
  return settings;
}

/** The values that must never be printed: passwords and tokens, from the options or the server URLs. */
export function secretsOf(settings: ConnectionSettings): string[] {
  return [settings.password, settings.token].filter((s): s is string => s !== undefined && s !== "");
}

/** The servers, as they are printed (without the user information their URLs had). */
export function displayServers(settings: ConnectionSettings): string {
  return settings.servers.join(",");
}

async function readFileFor(option: string, path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new Error(`${option} ${path}: ${code === "ENOENT" ? "no such file" : String(code ?? err)}`);
  }
}

/** Connects to the server; a failure says which server, without credentials. */
export async function openConnection(settings: ConnectionSettings): Promise<NatsConnection> {
  const { connect, credsAuthenticator } = await import("@nats-io/transport-node");
  const options: NodeConnectionOptions = {
    servers: [...settings.servers],
    name: "windshift-cli",
    ...(settings.user === undefined ? {} : { user: settings.user, pass: settings.password ?? "" }),
    ...(settings.token === undefined ? {} : { token: settings.token }),
  };
  if (settings.creds !== undefined) {
    options.authenticator = credsAuthenticator(await readFileFor("--creds", settings.creds));
  }
  if (settings.tlsCa !== undefined) {
    await readFileFor("--tls-ca", settings.tlsCa);
    options.tls = { caFile: settings.tlsCa };
  }
  try {
    return await connect(options);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot connect to ${displayServers(settings)}: ${reason}`, { cause: err });
  }
}
