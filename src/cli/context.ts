import type { Command } from 'commander';
import { ApiClient } from './client.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Global options every client command shares; read from the root program. */
export interface GlobalOptions {
  url: string;
  token?: string;
  json: boolean;
}

export function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Partial<GlobalOptions>;
  return { url: o.url ?? process.env.LIVERY_URL ?? DEFAULT_URL, token: o.token ?? process.env.LIVERY_TOKEN, json: Boolean(o.json) };
}

export function clientFor(cmd: Command): ApiClient {
  const g = globals(cmd);
  return new ApiClient({ url: g.url, token: g.token });
}
