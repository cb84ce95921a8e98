import { availableParallelism } from 'node:os';

/** Processes serving HTTP for `http.workers` (0 = one per core). */
export function httpProcessCount(configured: number): number {
  return configured === 0 ? availableParallelism() : configured;
}
