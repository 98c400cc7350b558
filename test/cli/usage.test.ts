/** The `windshift` CLI's help, version, exit codes and error lines, as a user runs it. */
import { describe, expect, it } from "vitest";
import { uniqueName } from "../helpers.js";
import { useCli } from "./support.js";

const env = useCli();

describe("windshift: help, version and exit codes", () => {
  it("prints help and the version with exit code 0", async () => {
    const [help, tail, version] = await Promise.all([
      env.cli(["--help"]),
      env.cli(["tail", "--help"]),
      env.cli(["--version"]),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: windshift <command>/m);
    for (const command of ["apply FILE", "streams", "consumers STREAM", "tail STREAM", "dlq replay STREAM", "top"]) {
      expect(help.stdout).toContain(`  ${command} `);
    }
    expect(tail.code).toBe(0);
    expect(tail.stdout).toMatch(/^Usage: windshift tail STREAM \[--subject SUBJECT\] \[--from start\|end\|ID\|TIME\]/);
    expect(version).toEqual({ code: 0, stdout: "0.1.0\n", stderr: "" });
  });

  it("exits with 2 and one line on stderr for a wrong command line", async () => {
    const cases: [string[], string][] = [
      [["nonsense"], 'windshift: unknown command "nonsense" (see windshift --help)'],
      [[], "windshift: missing command (see windshift --help)"],
      [["streams", "--verbose"], 'windshift: unknown option --verbose for "streams"'],
      [["consumers"], "windshift: consumers: missing STREAM (see windshift consumers --help)"],
      [["consumers", "a", "b"], 'windshift: consumers: unexpected argument "b"'],
      [["get", "orders", "one"], 'windshift: ID: "one" is not a whole number of at least 1'],
      [["tail", "orders", "--limit"], "windshift: --limit needs a value"],
      [
        ["tail", "orders", "--from", "yesterday"],
        'windshift: --from: "yesterday" is not start, end, an event id or a time (2025-01-31T12:00:00Z)',
      ],
      [["publish", "orders.created", "--type", "a.B"], "windshift: publish: --data is required"],
      [["dlq"], "windshift: dlq: missing command (replay)"],
      [["streams", "--user", "ada"], "windshift: --user and --password go together"],
    ];
    const results = await Promise.all(cases.map(([args]) => env.cli(args)));
    expect(results).toEqual(cases.map(([, line]) => ({ code: 2, stdout: "", stderr: `${line}\n` })));
  });

  it("exits with 1 and one line for a missing stream", async () => {
    const result = await env.cli(["consumers", uniqueName("missing")]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^windshift: stream "missing_\w+" not found: create it with ensureStream\(.*\)\n$/);
  });

  it("says which server it cannot reach, without the credentials", async () => {
    const [url, token] = await Promise.all([
      env.cli(["streams", "--server", "nats://ada:s3cret-pw@127.0.0.1:1"]),
      env.cli(["streams", "--server", "127.0.0.1:1", "--token", "t0ken-value"]),
    ]);
    expect(url.code).toBe(1);
    expect(url.stderr).toMatch(/^windshift: cannot connect to nats:\/\/127\.0\.0\.1:1: .+\n$/);
    expect(url.stderr).not.toContain("s3cret-pw");
    expect(token.code).toBe(1);
    expect(token.stderr).toMatch(/^windshift: cannot connect to 127\.0\.0\.1:1: .+\n$/);
    expect(token.stderr).not.toContain("t0ken-value");
  });
});
