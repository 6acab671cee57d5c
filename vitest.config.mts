import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // After each file: fail it if it left a namespace, /etc/netns entry or link behind.
    setupFiles: ['test/fixtures/leak-check.ts'],
    // Integration tests create namespaces and run real daemons: run files one at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
