import { readFileSync } from 'node:fs';

/** The version in livery's package.json, which ships beside src/ and dist/ in every install. */
export const liveryVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
