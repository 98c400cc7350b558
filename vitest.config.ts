import { fileURLToPath } from "node:url";
import { configDefaults, defineConfig } from "vitest/config";

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  // The examples import the package by name, as a service does; the tests run them against the sources.
  resolve: {
    alias: [
      { find: /^windshift\/testing$/, replacement: src("testing/index.ts") },
      { find: /^windshift\/topology$/, replacement: src("topology/index.ts") },
      { find: /^windshift$/, replacement: src("index.ts") },
    ],
  },
  test: {
    globals: false,
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // The fault-injection suite runs on its own: npm run test:faults (vitest.faults.config.ts).
    exclude: [...configDefaults.exclude, "test/faults/**"],
    // Each file starts its own nats-server; two cores do not gain from more.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
