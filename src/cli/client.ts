/** A thin REST client: every CLI command except `serve` and offline `token create` goes through it. */
export class CliError extends Error {
  override name = 'CliError';
}

export interface ClientOptions {
  url: string;
  token?: string;
}

export class ApiClient {
  constructor(private readonly opts: ClientOptions) {}

  get baseUrl(): string {
    return this.opts.url.replace(/\/+$/, '');
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}), ...extra };
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: this.headers(body !== undefined ? { 'content-type': contentType } : {}),
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach livery at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message} (set --url or LIVERY_URL)`);
    }
    return parseResponse<T>(res);
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
}

export async function parseResponse<T>(res: Response): Promise<T> {
  const text = await res.text();
  const json = text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text;
  if (!res.ok) {
    const problems = Array.isArray(json?.problems)
      ? '\n' + json.problems.map((p: { line: number; error: string }) => `  line ${p.line}: ${p.error}`).join('\n')
      : '';
    throw new CliError(`${res.status} ${json?.error ?? res.statusText}${problems}`);
  }
  return json as T;
}
