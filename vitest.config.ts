import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["shared/**/*.test.ts", "functions/**/*.test.ts", "tests/**/*.test.ts"],
    globalSetup: ["tests/setup/postgres.global.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Two cores: more workers only queue on the one Postgres.
    maxWorkers: 2,
  },
});
