import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{protocol,lib,command-center,node-agent,cli,views,test,systemd}/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**', 'test/reliability/**', 'test/package/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
