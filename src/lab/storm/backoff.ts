import { setTimeout as delay } from 'node:timers/promises';

/**
 * How long to wait after each try: first, 2×first, 4×first… — the doubling PXE ROMs use for
 * DHCP (4, 8, 16, 32 s). The number of tries bounds the whole wait.
 */
export function backoff(firstMs: number, tries: number): number[] {
  return Array.from({ length: tries }, (_, i) => firstMs * 2 ** i);
}

/**
 * Runs `attempt` until it succeeds, pausing `waitsMs[i]` after the i-th failure: at most
 * waitsMs.length + 1 attempts, each pause cut short when `signal` aborts. The last failure is
 * rethrown; `onRetry` hears the others.
 */
export async function retrying<T>(waitsMs: number[], signal: AbortSignal, attempt: () => Promise<T>, onRetry: (err: Error) => void): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (i === waitsMs.length || signal.aborted) throw err;
      onRetry(err as Error);
      await delay(waitsMs[i]!, undefined, { signal });
    }
  }
}
