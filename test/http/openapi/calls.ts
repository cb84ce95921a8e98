/**
 * Real calls through a client typed by the API document: openapi-typescript writes
 * test/.tmp/openapi/livery-api.d.ts from the live document, and contract.test.ts type-checks this
 * file against it (tsconfig.json beside it) before running it. A route whose document loses a
 * field, a parameter or an enum used here fails that type-check; a route whose answer differs
 * from its document fails the test's response check.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from '../../.tmp/openapi/livery-api.js';

export type LiveryClient = ReturnType<typeof createClient<paths>>;

export function liveryClient(baseUrl: string, token: string, check: Middleware): LiveryClient {
  const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${token}` } });
  client.use(check);
  return client;
}

function must<T>(r: { data?: T; error?: unknown; response: Response }, what: string): T {
  if (r.data === undefined) throw new Error(`${what}: HTTP ${r.response.status} ${JSON.stringify(r.error)}`);
  return r.data;
}

/** Calls that need no image: machines, subnets, tokens, assignments, audit, errors. Returns what the test asserts on. */
export async function inventoryCalls(api: LiveryClient, bundle: Uint8Array) {
  const health = must(await api.GET('/healthz', { headers: { authorization: '' } }), 'healthz');
  const subnet = must(
    await api.POST('/v1/subnets', { body: { name: 'lab', cidr: '10.9.0.0/24', gateway: '10.9.0.1', pools: [{ start: '10.9.0.100', end: '10.9.0.150' }], policy: 'discover' } }),
    'createSubnet',
  );
  const created = must(
    await api.POST('/v1/machines', { body: { macs: ['52:54:00:0a:00:01'], hostname: 'node1', labels: { rack: 'r1' }, vars: { role: 'kvm' }, image: { name: 'no-such-image', channel: 'stable' }, ip: '10.9.0.10' } }),
    'createMachine',
  );
  // The answer's fields are typed: a misspelt or missing one does not compile.
  const warnings: string[] = created.warnings ?? [];
  const updated = must(await api.PATCH('/v1/machines/{ref}', { params: { path: { ref: 'node1' } }, body: { labelChanges: { rack: 'r2', spare: null } } }), 'updateMachine');
  const shown: components['schemas']['Error'] | undefined = (await api.GET('/v1/machines/{ref}', { params: { path: { ref: 'nosuch' } } })).error;
  const listed = must(await api.GET('/v1/machines', { params: { query: { state: 'registered', label: 'rack=r2', limit: 10 } } }), 'listMachines');
  // @ts-expect-error: the document names the allowed states; a wrong one does not compile...
  const badState = (await api.GET('/v1/machines', { params: { query: { state: 'active' } } })).error;
  const explain = must(await api.GET('/v1/machines/{ref}/explain', { params: { path: { ref: 'node1' }, query: { firmware: 'uefi-pxe' } } }), 'explainMachine');
  const trace = must(await api.GET('/v1/machines/{ref}/trace', { params: { path: { ref: 'node1' } } }), 'getMachineTrace');
  const noBmc = (await api.GET('/v1/machines/{ref}/power', { params: { path: { ref: 'node1' } } })).error;
  const bmc = must(
    await api.PUT('/v1/machines/{ref}/bmc', { params: { path: { ref: 'node1' } }, body: { driver: 'ipmi', address: '127.0.0.1', port: 9, username: 'admin', password: 'secret' } }),
    'setBmc',
  );
  const token = must(await api.POST('/v1/tokens', { body: { name: 'ci', role: 'reader' } }), 'createToken');
  const tokens = must(await api.GET('/v1/tokens'), 'listTokens');
  const published = must(
    await api.POST('/v1/images', {
      params: { query: { channel: 'stable' } },
      // The bundle goes out as the raw tar the document declares.
      body: bundle as unknown as string,
      bodySerializer: (b: unknown) => b as BodyInit,
      headers: { 'content-type': 'application/x-tar' },
    }),
    'publishImage',
  );
  const image = must(await api.GET('/v1/images/{id}', { params: { path: { id: `${published.name}@stable` } } }), 'getImage');
  const images = must(await api.GET('/v1/images'), 'listImages');
  const channels = must(await api.GET('/v1/channels'), 'listChannels');
  const history = must(await api.GET('/v1/channels/{name}/{channel}/history', { params: { path: { name: published.name, channel: 'stable' } } }), 'getChannelHistory');
  const assignment = must(await api.POST('/v1/assignments', { body: { selector: 'rack=r2', image: `${published.name}@stable` } }), 'createAssignment');
  const assignments = must(await api.GET('/v1/assignments'), 'listAssignments');
  const leases = must(await api.GET('/v1/leases', { params: { query: { subnet: 'lab' } } }), 'listLeases');
  const rollouts = must(await api.GET('/v1/rollouts'), 'listRollouts');
  const audit = must(await api.GET('/v1/audit', { params: { query: { limit: 50 } } }), 'listAudit');
  const removed = must(await api.DELETE('/v1/machines/{ref}', { params: { path: { ref: 'node1' } } }), 'deleteMachine');
  return {
    health,
    subnet,
    created,
    warnings,
    updated,
    shown,
    listed,
    badState,
    explain,
    trace,
    noBmc,
    bmc,
    token,
    tokens,
    image,
    images,
    channels,
    history,
    assignment,
    assignments,
    leases,
    rollouts,
    audit,
    removed,
  };
}
