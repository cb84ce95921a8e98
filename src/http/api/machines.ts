import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parse as parseCsv } from 'csv-parse/sync';
import { Type } from '@sinclair/typebox';
import { CmdbError } from '../../cmdb/errors.js';
import { parseKeyValueLists } from '../../cmdb/key-values.js';
import { csvRecordToInput, importMachines, ImportError, type ImportRow } from '../../cmdb/import.js';
import { bmcOfJson, takeBmcColumns } from '../../cmdb/import-bmc.js';
import { SecretBox, secretKeyPath } from '../../cmdb/secret-box.js';
import type { MachineInput } from '../../cmdb/types.js';
import { parseFactFilter } from '../../facts/filter.js';
import { actorOf, HttpError, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { schemaProblem } from '../errors.js';
import { ListQuery, MachineBody, RefParams } from '../schemas.js';
import { withWarnings } from './machine-warnings.js';

/** /v1/machines: the machine inventory, keyed by MAC, hostname or id. */
export const machineRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, config }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const write = { onRequest: requireRole(cmdb, 'operator') };
  const tags = ['machines'];

  app.get('/v1/machines', { ...read, schema: { tags, querystring: ListQuery } }, async (req) => {
    const q = req.query;
    const labels = parseKeyValueLists('querystring.label', [q.label ?? []].flat());
    const facts = [q.fact ?? []].flat().map((f) => parseFactFilter(f, 'querystring.fact'));
    const limit = q.limit ?? 100;
    const items = cmdb.machines.list({ state: q.state, site: q.site, labels, facts, limit, after: q.after });
    return { items, next: items.length === limit ? items[items.length - 1]!.id : null };
  });

  app.get('/v1/machines/:ref', { ...read, schema: { tags, params: RefParams } }, async (req) => cmdb.machines.get(req.params.ref));

  app.post('/v1/machines', { ...write, schema: { tags, body: MachineBody } }, async (req, reply) => {
    const input = req.body as MachineInput;
    const m = cmdb.change(actorOf(req), 'machine.create', (r) => r.macs[0]!, () => cmdb.machines.create({ state: 'registered', ...input }), { ...input });
    return reply.code(201).send(withWarnings(cmdb, m));
  });

  app.patch('/v1/machines/:ref', { ...write, schema: { tags, params: RefParams, body: MachineBody } }, async (req) => {
    const input = req.body as MachineInput;
    return withWarnings(cmdb, cmdb.change(actorOf(req), 'machine.update', (r) => r.macs[0]!, () => cmdb.machines.update(req.params.ref, input), { ...input }));
  });

  app.delete(
    '/v1/machines/:ref',
    { ...write, schema: { tags, params: RefParams, querystring: Type.Object({ purge: Type.Optional(Type.Boolean()) }) } },
    async (req) => {
      const purge = req.query.purge === true;
      return cmdb.change(actorOf(req), purge ? 'machine.purge' : 'machine.retire', (r) => r.macs[0] ?? String(r.id), () =>
        purge ? cmdb.machines.purge(req.params.ref) : cmdb.machines.retire(req.params.ref),
      );
    },
  );

  // Bulk import: CSV (text/csv) or a JSON array of machine objects. All or nothing.
  app.post('/v1/machines/import', { ...write, bodyLimit: config.http.bodyLimitBytes, config: { bodyStream: true }, schema: { tags } }, async (req, reply) => {
    const rows = importRows(req.headers['content-type'] ?? '', req.body);
    try {
      return await importMachines(cmdb, actorOf(req), rows, new SecretBox(secretKeyPath(config.dataDir)));
    } catch (err) {
      if (err instanceof ImportError) return reply.code(400).send({ error: err.message, problems: err.problems });
      throw err;
    }
  });
};

function importRows(contentType: string, body: unknown): ImportRow[] {
  if (contentType.startsWith('text/csv')) {
    if (typeof body !== 'string') throw new HttpError(400, 'body: expected CSV text');
    let records: { record: Record<string, string>; info: { lines: number } }[];
    try {
      records = parseCsv(body, { columns: true, skip_empty_lines: true, trim: true, info: true, bom: true });
    } catch (err) {
      throw new HttpError(400, `body: CSV does not parse: ${(err as Error).message}`);
    }
    return records.map(({ record, info }) => {
      try {
        const { rest, bmc } = takeBmcColumns(record);
        return { line: info.lines, input: csvRecordToInput(rest), bmc };
      } catch (err) {
        if (err instanceof CmdbError) return { line: info.lines, error: err.message };
        throw err;
      }
    });
  }
  if (!Array.isArray(body)) throw new HttpError(400, 'body: expected a JSON array of machines, or text/csv');
  return body.map((input, i) => {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) return { line: i + 1, error: 'expected a machine object' };
    const { bmc, ...machine } = input as Record<string, unknown>;
    const problem = schemaProblem(MachineBody, machine);
    if (problem) return { line: i + 1, error: problem };
    try {
      return { line: i + 1, input: machine as MachineInput, bmc: bmc === undefined ? null : bmcOfJson(bmc) };
    } catch (err) {
      if (err instanceof CmdbError) return { line: i + 1, error: err.message };
      throw err;
    }
  });
}
