import { defineConfig } from 'vitest/config';

// `npm run test:reliability`: the long fault, fuzz and load suite (test/reliability/); runs against dist/ and
// real child processes, one file at a time so their timings do not disturb each other.
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    testTimeout: 900_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
