import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { SERVED_PLANS } from '../../cmdb/events.js';
import { hardwareDrift } from '../../facts/drift.js';
import { flattenFacts } from '../../facts/flat.js';
import { FactsError, parseFactsReport } from '../../facts/parse.js';
import { recordFacts } from '../../facts/record.js';
import type { FactsReport } from '../../facts/types.js';
import { HttpError, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { RefParams } from '../schemas.js';
import { AUTH_ERRORS, errors, json, OPEN } from '../openapi.js';
import { FactsRecord, FactsRecorded } from '../response-schemas.js';

const KiB = 1024;
/** livery-facts' sections, each bounded: a 256-thread server's cpuinfo lines and 64 DIMMs fit with room. */
const Report = Type.Object(
  {
    format: Type.Literal(1),
    cpuinfo: Type.String({ maxLength: 512 * KiB }),
    meminfo: Type.String({ maxLength: 4 * KiB }),
    sysfs: Type.String({ maxLength: 128 * KiB }),
    dmidecode: Type.Optional(Type.String({ maxLength: 512 * KiB })),
    'ipmi-lan': Type.Optional(Type.String({ maxLength: 16 * KiB })),
  },
  { additionalProperties: false },
);

/** A yes/no query parameter: `?diff=1` or `?diff=true`. */
const Flag = Type.Union([Type.Boolean(), Type.Literal(1), Type.Literal(0)]);

/**
 * Hardware facts: the agent's report at every boot (machine-facing, for the machine's own current
 * boot only), and the facts an operator reads, with what changed since the boot before.
 */
export const machineFactsRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, config, machineDoor }) => {
  app.post(
    '/v1/machines/:ref/facts',
    {
      bodyLimit: 2 * 1024 * KiB,
      schema: {
        tags: ['machine-facing'],
        operationId: 'reportFacts',
        summary: "The agent's hardware facts report, for the machine's running boot",
        security: OPEN,
        // Named as on the routes beside it (a machine gives its MAC), or the document would have two identical paths.
        params: Type.Object({ ref: Type.String({ maxLength: 64, description: "the calling machine's MAC" }) }),
        response: { 200: json(FactsRecorded, 'the facts as recorded, and what changed since the boot before'), ...errors(400, 403, 404, 409, 429) },
        body: Type.Object({ imageId: Type.String({ maxLength: 64 }), report: Report }, { additionalProperties: false }),
      },
    },
    async (req) => {
      const { mac, machine } = machineDoor.machineCalling(req, req.params.ref, 'a facts report');
      const { imageId } = req.body;
      // Facts belong to a boot: the one whose phone-home is the machine's newest, if it is still running.
      const booted = cmdb.events.latestOf(machine.macs, ['booted']);
      if (!booted) throw new HttpError(409, `imageId: machine ${mac} has not phoned home since it booted; report facts after POST /v1/machines/${mac}/booted`);
      if (booted.imageId !== imageId) throw new HttpError(409, `imageId: machine ${mac} booted image ${booted.imageId}, not ${imageId}`);
      if (cmdb.events.latestOf(machine.macs, SERVED_PLANS, booted.id)) throw new HttpError(409, `machine ${mac} is booting again since its last phone-home; facts are taken for the running boot only`);
      machineDoor.requireEvent(req, mac, true);
      const report = req.body.report as FactsReport;
      let facts;
      try {
        facts = parseFactsReport(report);
      } catch (err) {
        if (err instanceof FactsError) throw new HttpError(400, `body.${err.message}`);
        throw err;
      }
      const image = cmdb.images.find(imageId);
      const { changes, commissioned } = recordFacts(cmdb, config, machine, booted, facts, report, image?.name ?? null, req.ip);
      return { facts: flattenFacts(facts), changes, commissioned };
    },
  );

  app.get(
    '/v1/machines/:ref/facts',
    {
      onRequest: requireRole(cmdb, 'reader'),
      schema: {
        tags: ['machines'],
        operationId: 'getMachineFacts',
        summary: "A machine's hardware facts from its latest boot, with what changed (diff) or as reported (raw)",
        params: RefParams,
        querystring: Type.Object({ diff: Type.Optional(Flag), raw: Type.Optional(Flag) }, { additionalProperties: false }),
        response: { 200: json(Type.Union([FactsRecord, Report]), 'the facts'), ...errors(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (req) => {
      const machine = cmdb.machines.get(req.params.ref);
      const latest = cmdb.facts.latest(machine.id);
      if (!latest) throw new HttpError(404, `machine ${machine.hostname ?? machine.macs[0]} has reported no facts yet (the agent reports them at every boot)`);
      // The report as livery-facts sent it: for a parser fix, or a fixture of a new kind of machine.
      if (req.query.raw) {
        const report = cmdb.facts.latestReport(machine.id);
        if (!report) throw new HttpError(404, `machine ${machine.hostname ?? machine.macs[0]} has no stored facts report`);
        return report;
      }
      const out = { machine: { id: machine.id, macs: machine.macs, hostname: machine.hostname }, ...latest, flat: flattenFacts(latest.facts) };
      if (!req.query.diff) return out;
      const previous = cmdb.facts.latest(machine.id, latest.bootEventId);
      return {
        ...out,
        previous: previous ? { bootEventId: previous.bootEventId, imageId: previous.imageId, at: previous.at } : null,
        changes: previous ? hardwareDrift(previous.facts, latest.facts) : [],
      };
    },
  );
};
