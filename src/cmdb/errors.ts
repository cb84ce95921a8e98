/**
 * Every rejected CMDB write is one of these, naming the field and the problem; the HTTP layer
 * maps them to 400/404/409 without knowing the rules behind them.
 */
export class CmdbError extends Error {
  override name = 'CmdbError';
  constructor(
    readonly kind: 'invalid' | 'not-found' | 'conflict',
    readonly field: string | null,
    message: string,
  ) {
    super(message);
  }
}

export const invalid = (field: string, message: string) => new CmdbError('invalid', field, `${field}: ${message}`);
export const notFound = (what: string) => new CmdbError('not-found', null, `${what} not found`);
export const conflict = (field: string, message: string) => new CmdbError('conflict', field, `${field}: ${message}`);
