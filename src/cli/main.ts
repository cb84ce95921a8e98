#!/usr/bin/env node
import { CommanderError } from 'commander';
import { CliError } from './client.js';
import { buildProgram } from './program.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  console.error(`livery: ${err instanceof CliError || err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
