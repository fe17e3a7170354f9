import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The CLI runs the bundle (bin/colo-proxy.js): build it from the sources under test first.
    globalSetup: ['test/support/build-bundle.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Namespace and QEMU suites take real resources: keep two workers on this two-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
