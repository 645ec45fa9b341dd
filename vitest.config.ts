import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start brokers and child processes; two cores, so keep it modest.
    maxWorkers: 2,
    // skip-report: one line per missing system tool at the end (test/helpers/system-tools.ts).
    reporters: ['default', './test/helpers/skip-report.ts'],
  },
});
