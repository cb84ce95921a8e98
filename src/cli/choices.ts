import { Option } from 'commander';

/** An option whose value must be one of the domain's own list: refused before anything is sent. */
export const choice = (flags: string, description: string, values: readonly string[]) => new Option(flags, description).choices(values);
