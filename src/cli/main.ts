#!/usr/bin/env node
/**
 * The `windshift` command (the package's `bin`): operates streams,
 * consumers and events on NATS JetStream. `windshift --help` lists its
 * commands.
 *
 * @module
 */

import { runCli } from "./run.js";

// `windshift tail … | head` closes the pipe early: that ends the command, it is no failure. A
// command that follows a stream is stopped as by Ctrl-C, so that it removes its consumer.
let piped = false;
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  if (piped) return;
  piped = true;
  if (process.listenerCount("SIGINT") > 0) process.emit("SIGINT", "SIGINT");
  else process.exit(0);
});

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
process.exitCode = code;
// Whatever a finished command left behind (a timer, a socket) must not keep the process alive.
setTimeout(() => process.exit(code), 2_000).unref();
