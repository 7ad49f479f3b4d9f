import { defineConfig } from 'vitest/config';

// `npm run test:package`: what a user installs — the npm tarball installed globally, the single executables, and
// the Debian packages (dpkg -i into this machine when run as root, purged again). Slow (builds executables and
// packages), one file at a time; .ci/run runs it after `npm test`.
export default defineConfig({
  test: {
    include: ['test/package/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
