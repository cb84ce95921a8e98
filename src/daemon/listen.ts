/** Splits "host:port" or "[v6]:port" as used by every *.listen config key. */
export function hostPort(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:([0-9]+)$/.exec(listen);
  if (!m) throw new Error(`expected HOST:PORT, got ${listen}`);
  return { host: m[1]!, port: Number(m[2]) };
}
