import { defineConfig } from "vitest/config";

/**
 * The fault-injection suite (`npm run test:faults`): real nats-server
 * processes and clusters that are killed, frozen and cut off. The scenarios
 * fight over two cores and measure recovery times, so they run one file at a
 * time; `--expose-gc` lets the soak compare heaps after a full collection.
 */
export default defineConfig({
  test: {
    globals: false,
    include: ["test/faults/**/*.test.ts"],
    fileParallelism: false,
    maxWorkers: 1,
    pool: "forks",
    execArgv: ["--expose-gc"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // The [faults] lines are the measurements: print them as they come.
    silent: false,
  },
});
