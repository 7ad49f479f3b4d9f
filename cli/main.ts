#!/usr/bin/env node
/** `vaultmesh`: the operator CLI. Exit codes: 0 ok, 1 failure, 2 usage. */
import { cac } from 'cac';
import { isVaultMeshError } from '../protocol/errors.js';
import { renderCliError } from './output.js';
import { registerCommands } from './command-table.js';
import { VERSION } from '../lib/version.js';

async function main(argv: string[]): Promise<void> {
  const cli = cac('vaultmesh');
  // Every command is declared from the table; only the one that runs loads its module.
  registerCommands(cli);
  cli.help();
  cli.version(VERSION);
  cli.parse(argv, { run: false });
  if (!cli.matchedCommand) {
    if (cli.options.help || cli.options.version) return;
    if (cli.args.length) {
      console.error(`vaultmesh: unknown command ${JSON.stringify(cli.args.join(' '))}; see vaultmesh --help`);
      process.exitCode = 2;
      return;
    }
    cli.outputHelp();
    return;
  }
  await cli.runMatchedCommand();
}

main(process.argv).catch((err) => {
  if (isVaultMeshError(err)) {
    const { text, exitCode } = renderCliError('vaultmesh', err);
    process.stderr.write(text);
    process.exitCode = exitCode;
  } else if (err && typeof err === 'object' && (err as Error).name === 'CACError') {
    console.error(`vaultmesh: ${(err as Error).message} (see --help)`);
    process.exitCode = 2;
  } else {
    console.error('vaultmesh: unexpected error:', err);
    process.exitCode = 1;
  }
});
