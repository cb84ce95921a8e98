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
import { AUTH_ERRORS, errors, json } from '../openapi.js';
import { ImportFailure, ImportReport, MachineRecord, MachineWritten, Page } from '../response-schemas.js';
import { BmcBody, ListQuery, MachineBody, RefParams } from '../schemas.js';
import { withWarnings } from './machine-warnings.js';

const ImportBody = {
  'application/json': Type.Array(Type.Composite([MachineBody, Type.Object({ bmc: Type.Optional(BmcBody) })]), { description: 'machines to create or update, as the machine body plus an optional bmc' }),
  'text/csv': Type.String({ description: 'a header row (macs, hostname, ip, site, labels, vars, image, bmc_* ...), then a machine per row' }),
};

/** /v1/machines: the machine inventory, keyed by MAC, hostname or id. */
export const machineRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, config }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const write = { onRequest: requireRole(cmdb, 'operator') };
  const tags = ['machines'];

  app.get('/v1/machines', { ...read, schema: { tags, operationId: 'listMachines', summary: 'List machines, filtered by state, site, labels and facts', querystring: ListQuery, response: { 200: json(Page(MachineRecord), 'a page of machines'), ...errors(400, ...AUTH_ERRORS) } } }, async (req) => {
    const q = req.query;
    const labels = parseKeyValueLists('querystring.label', [q.label ?? []].flat());
    const facts = [q.fact ?? []].flat().map((f) => parseFactFilter(f, 'querystring.fact'));
    const limit = q.limit ?? 100;
    const items = cmdb.machines.list({ state: q.state, site: q.site, labels, facts, limit, after: q.after });
    return { items, next: items.length === limit ? items[items.length - 1]!.id : null };
  });

  app.get('/v1/machines/:ref', { ...read, schema: { tags, operationId: 'getMachine', summary: 'Show a machine by MAC, hostname or id', params: RefParams, response: { 200: json(MachineRecord, 'the machine'), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req) => cmdb.machines.get(req.params.ref));

  app.post('/v1/machines', { ...write, schema: { tags, operationId: 'createMachine', summary: 'Add a machine', body: MachineBody, response: { 201: json(MachineWritten, 'the machine as stored'), ...errors(400, ...AUTH_ERRORS, 409) } } }, async (req, reply) => {
    const input = req.body as MachineInput;
    const m = cmdb.change(actorOf(req), 'machine.create', (r) => r.macs[0]!, () => cmdb.machines.create({ state: 'registered', ...input }), { ...input });
    return reply.code(201).send(withWarnings(cmdb, m));
  });

  app.patch('/v1/machines/:ref', { ...write, schema: { tags, operationId: 'updateMachine', summary: 'Change some fields of a machine', params: RefParams, body: MachineBody, response: { 200: json(MachineWritten, 'the machine as stored'), ...errors(400, ...AUTH_ERRORS, 404, 409) } } }, async (req) => {
    const input = req.body as MachineInput;
    return withWarnings(cmdb, cmdb.change(actorOf(req), 'machine.update', (r) => r.macs[0]!, () => cmdb.machines.update(req.params.ref, input), { ...input }));
  });

  app.delete(
    '/v1/machines/:ref',
    {
      ...write,
      schema: {
        tags,
        operationId: 'deleteMachine',
        summary: 'Retire a machine, or delete it and its history with purge',
        params: RefParams,
        querystring: Type.Object({ purge: Type.Optional(Type.Boolean()) }),
        response: { 200: json(MachineRecord, 'the machine retired or purged'), ...errors(400, ...AUTH_ERRORS, 404, 409) },
      },
    },
    async (req) => {
      const purge = req.query.purge === true;
      return cmdb.change(actorOf(req), purge ? 'machine.purge' : 'machine.retire', (r) => r.macs[0] ?? String(r.id), () =>
        purge ? cmdb.machines.purge(req.params.ref) : cmdb.machines.retire(req.params.ref),
      );
    },
  );

  // Bulk import: CSV (text/csv) or a JSON array of machine objects. All or nothing.
  app.post('/v1/machines/import', { ...write, bodyLimit: config.http.bodyLimitBytes, config: { bodyStream: true, documentedBody: ImportBody }, schema: {
        tags,
        operationId: 'importMachines',
        summary: 'Import machines from CSV or a JSON array, all or nothing',
        response: { 200: json(ImportReport, 'what was created and updated'), 400: json(ImportFailure, 'rows that do not import; nothing was changed'), ...errors(...AUTH_ERRORS, 413, 415) },
      },
    },
    async (req, reply) => {
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
