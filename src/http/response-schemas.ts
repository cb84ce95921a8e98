import { Type, type TSchema } from '@sinclair/typebox';
import { ImageManifest } from '../catalog/manifest.js';

/**
 * What the API answers, for the OpenAPI document (GET /v1/openapi.json). Written from the
 * records in src/cmdb/types.ts and beside the stores. Objects are closed (additionalProperties:
 * false) so the contract test (test/http/openapi-contract.test.ts) fails when a route answers
 * a field its schema does not list; only genuinely open maps (labels, vars, facts, details) are open.
 */
const Closed = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false });
const OrNull = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Time = Type.String({ format: 'date-time' });
const StringMap = Type.Record(Type.String(), Type.String());
const Detail = Type.Record(Type.String(), Type.Unknown(), { description: 'free-form, by event or action type' });
const SecureBoot = OrNull(Type.Union([Type.Literal('off'), Type.Literal('on'), Type.Literal('auto')], { description: 'null: inherited' }));
const Literals = (values: readonly string[]) => Type.Union(values.map((v) => Type.Literal(v)));

/** Every error answer: what was wrong, and which field when one was. */
export const ErrorBody = Type.Object(
  { error: Type.String({ description: 'what was wrong, naming the field and the allowed values' }), field: Type.Optional(Type.String()) },
  { $id: 'Error', additionalProperties: false },
);

/** A page of a listing: `next` is the cursor of the next page (null: none). */
export const Page = <T extends TSchema>(item: T, next: TSchema = OrNull(Type.Integer())) => Closed({ items: Type.Array(item), next });
export const ListOf = <T extends TSchema>(item: T) => Closed({ items: Type.Array(item) });

export const MachineRecord = Closed({
  id: Type.Integer(),
  macs: Type.Array(Type.String()),
  hostname: OrNull(Type.String()),
  uuid: OrNull(Type.String()),
  site: OrNull(Type.String()),
  labels: StringMap,
  state: Literals(['discovered', 'registered', 'retired']),
  image: Closed({ name: OrNull(Type.String()), channel: OrNull(Type.String()), id: OrNull(Type.String()) }),
  kernelArgs: Type.String(),
  vars: StringMap,
  ip: OrNull(Type.String()),
  subnet: OrNull(Type.String()),
  secureBoot: SecureBoot,
  createdAt: Time,
  updatedAt: Time,
  lastSeenAt: OrNull(Time),
  facts: OrNull(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number()]), { description: 'flattened hardware facts of the latest boot' })),
});

/** A machine as a write answers it: likely mistakes that were stored anyway are in `warnings`. */
export const MachineWritten = Type.Composite([MachineRecord, Type.Object({ warnings: Type.Optional(Type.Array(Type.String())) })], { additionalProperties: false });

export const SubnetRecord = Closed({
  id: Type.Integer(),
  name: Type.String(),
  cidr: Type.String(),
  gateway: OrNull(Type.String()),
  dns: Type.Array(Type.String()),
  domain: OrNull(Type.String()),
  pools: Type.Array(Closed({ start: Type.String(), end: Type.String() })),
  leaseSeconds: Type.Integer(),
  policy: Literals(['ignore', 'discover', 'default-image', 'commission']),
  discoverAction: Literals(['retry', 'exit']),
  defaultImage: Closed({ name: OrNull(Type.String()), channel: OrNull(Type.String()) }),
  secureBoot: SecureBoot,
  createdAt: Time,
  updatedAt: Time,
});

export const LeaseRecord = Closed({
  ip: Type.String(),
  mac: Type.String(),
  subnetId: Type.Integer(),
  state: Literals(['offered', 'bound', 'released', 'declined']),
  expiresAt: Time,
  updatedAt: Time,
  clientId: OrNull(Type.String()),
  hostname: OrNull(Type.String()),
});

const Role = Literals(['admin', 'operator', 'publisher', 'reader']);
export const TokenRecord = Closed({ id: Type.String(), name: Type.String(), role: Role, createdAt: Time, lastUsedAt: OrNull(Time), revokedAt: OrNull(Time) });
export const TokenCreated = Type.Composite([TokenRecord, Type.Object({ token: Type.String({ description: 'the secret, shown this once' }) })], { additionalProperties: false });

const Artifact = Closed({ name: Type.String(), role: Literals(['kernel', 'initrd', 'rootfs', 'extra']), size: Type.Integer(), sha256: Type.String() });
const imageFields = {
  id: Type.String(),
  name: Type.String(),
  version: Type.String(),
  os: Type.String(),
  arch: Type.String(),
  createdAt: Time,
  publishedAt: Time,
  kernelArgs: Type.String(),
  artifacts: Type.Array(Artifact),
};
const channels = Type.Array(Type.String({ description: 'NAME@CHANNEL' }), { description: 'the channels that point at it' });
export const ImageSummaryRecord = Closed({ ...imageFields, channels });
const ManifestSha256 = Type.String({ description: "the sha256 of the manifest as exported: the image's identity on every server it is mirrored to" });
export const ImageRecord = Closed({ ...imageFields, channels, recipe: Type.String(), manifest: ImageManifest, manifestSha256: ManifestSha256 });
/** A publish of an image already here under the same id and manifest: nothing was stored. */
export const PresentImageRecord = Closed({ ...imageFields, channels, recipe: Type.String(), manifest: ImageManifest, manifestSha256: ManifestSha256, alreadyPresent: Type.Literal(true) });
/** A deleted image: no channel points at it any more. */
export const DeletedImageRecord = Closed({ ...imageFields, recipe: Type.String(), manifest: ImageManifest });

export const ChannelRecord = Closed({ name: Type.String(), channel: Type.String(), imageId: Type.String(), version: Type.String(), updatedAt: Time });
export const ChannelChangeRecord = Closed({
  id: Type.Integer(),
  name: Type.String(),
  channel: Type.String(),
  action: Literals(['promote', 'rollback']),
  imageId: Type.String(),
  previousImageId: OrNull(Type.String()),
  actor: OrNull(Type.String()),
  at: Time,
});
/** What a promote or a channel rollback did. */
export const ChannelMove = Closed({ name: Type.String(), channel: Type.String(), imageId: Type.String(), previousImageId: OrNull(Type.String()), changed: Type.Boolean() });
export const GcReportRecord = Closed({ blobs: Type.Integer(), bytes: Type.Integer(), tempFiles: Type.Integer(), tempBytes: Type.Integer() });

export const AssignmentRecord = Closed({
  id: Type.Integer(),
  selector: Type.String(),
  image: Closed({ name: Type.String(), channel: Type.String() }),
  priority: Type.Integer(),
  createdAt: Time,
});

export const AuditRecord = Closed({ id: Type.Integer(), at: Time, actor: Type.String(), action: Type.String(), target: Type.String(), detail: Detail });

export const NodeRecord = Closed({
  name: Type.String(),
  url: Type.String(),
  version: Type.String(),
  host: Type.String(),
  pid: Type.Integer(),
  dhcp: Type.Boolean({ description: 'whether the node serves DHCP' }),
  startedAt: Time,
  heartbeatAt: Time,
  alive: Type.Boolean({ description: 'its last heartbeat is younger than node.deadAfterSeconds' }),
  roles: Type.Array(Literals(['rollouts']), { description: 'what it does for all nodes: `rollouts`, it drives them' }),
});

export const BmcRecord = Closed({
  driver: Literals(['ipmi', 'redfish']),
  address: Type.String(),
  port: OrNull(Type.Integer()),
  username: OrNull(Type.String({ description: 'null for a BMC commissioning found, until the operator sets credentials' })),
  passwordSet: Type.Boolean({ description: 'the password itself is never returned' }),
  systemPath: OrNull(Type.String()),
  verify: Type.Boolean(),
  fingerprint: OrNull(Type.String()),
  updatedAt: Time,
  power: OrNull(Closed({ state: Literals(['on', 'off']), at: Time })),
});

export const PowerResultRecord = Closed({
  machine: Type.String(),
  mac: OrNull(Type.String()),
  bmc: OrNull(Type.String({ description: 'driver://user@address:port' })),
  ok: Type.Boolean(),
  state: OrNull(Type.String()),
  attempts: Type.Integer(),
  error: OrNull(Type.String()),
  failure: OrNull(Literals(['no-bmc', 'no-credentials', 'secret-key', 'bmc'])),
  warning: OrNull(Type.String({ description: 'why the action went ahead short of what was asked: the BMC refused the one-time network boot' })),
});
/** A single machine's failed power action: the error, and the result it came from. */
export const PowerFailure = Closed({ error: OrNull(Type.String()), result: PowerResultRecord });
export const FleetPowerRecord = Closed({ action: Type.String(), ok: Type.Integer(), failed: Type.Integer(), results: Type.Array(PowerResultRecord) });

const RolloutMachineView = Closed({
  machineId: Type.Integer(),
  hostname: OrNull(Type.String()),
  mac: OrNull(Type.String()),
  phase: Literals(['forward', 'back']),
  state: Literals(['pending', 'queued', 'cycling', 'booting', 'waiting-reboot', 'healthy', 'failed']),
  since: Time,
  expectedImageId: OrNull(Type.String()),
  previousImage: OrNull(Closed({ name: OrNull(Type.String()), channel: OrNull(Type.String()), id: OrNull(Type.String()) })),
  cycles: Type.Integer(),
  detail: Detail,
});
const rolloutFields = {
  id: Type.Integer(),
  imageId: Type.String(),
  selector: Type.String(),
  channel: OrNull(Type.String()),
  targets: Type.String(),
  maxParallel: Type.Integer(),
  bootTimeoutMs: Type.Integer(),
  maxFailures: Type.String(),
  soakMs: Type.Integer(),
  actor: Type.String(),
  state: Literals(['running', 'paused', 'rolling-back', 'succeeded', 'failed', 'aborted', 'rolled-back']),
  wave: Type.Integer({ description: 'the wave being worked on (0-based)' }),
  reason: OrNull(Type.String()),
  createdAt: Time,
  updatedAt: Time,
};
export const RolloutRecord = Closed(rolloutFields);
export const RolloutDetail = Closed({
  ...rolloutFields,
  waves: Type.Array(
    Closed({
      wave: Type.Integer(),
      state: Literals(['pending', 'running', 'soaking', 'passed', 'failed']),
      soakUntil: OrNull(Time),
      reason: OrNull(Type.String()),
      startedAt: OrNull(Time),
      finishedAt: OrNull(Time),
      machines: Type.Array(RolloutMachineView),
    }),
  ),
});

const Stage = Type.String({ description: 'a boot stage: power, dhcp, tftp, script, artifact, booted, health' });
export const TraceRecord = Closed({
  machine: Closed({ id: Type.Integer(), hostname: OrNull(Type.String()), macs: Type.Array(Type.String()) }),
  boots: Type.Array(
    Closed({
      startedAt: Time,
      stages: Type.Array(Closed({ stage: Stage, at: Time, lastAt: Time, count: Type.Integer(), event: Type.String(), detail: Detail })),
      reached: OrNull(Stage),
      complete: Type.Boolean(),
      stoppedBefore: OrNull(Stage),
      lastStep: OrNull(Type.String()),
      imageId: OrNull(Type.String()),
    }),
  ),
});

const ImageRef = OrNull(Closed({ id: Type.String(), name: Type.String(), version: Type.String(), channel: OrNull(Type.String()) }));
export const ExplainRecord = Closed({
  mac: Type.String(),
  machine: OrNull(MachineRecord),
  subnet: OrNull(Type.String()),
  policy: OrNull(Type.String()),
  action: Type.String({ description: 'what the boot decision does with this machine' }),
  discover: Type.Boolean({ description: 'the boot door would register this MAC as a discovered machine' }),
  selector: OrNull(Type.Record(Type.String(), OrNull(Type.String()), { description: 'the image selection that applied' })),
  image: ImageRef,
  next: Type.Object({ kind: Literals(['tftp', 'http', 'script', 'none']) }, { additionalProperties: Type.String(), description: 'what the client fetches next' }),
  chain: Closed({
    chain: Literals(['ipxe', 'shim']),
    secureBoot: Literals(['off', 'on', 'auto']),
    source: Type.String({ description: 'where the setting came from: machine, subnet or config' }),
    reason: Type.String(),
  }),
  cmdline: OrNull(Type.String()),
  template: Type.String(),
  reasons: Type.Array(Type.String()),
  script: Type.String(),
  templateError: OrNull(Type.String()),
});

export const MetadataRecord = Closed({
  mac: Type.String(),
  hostname: OrNull(Type.String()),
  ip: OrNull(Type.String()),
  prefix: OrNull(Type.Integer()),
  gateway: OrNull(Type.String()),
  dns: Type.Array(Type.String()),
  domain: OrNull(Type.String()),
  site: OrNull(Type.String()),
  labels: StringMap,
  vars: StringMap,
  image: ImageRef,
});

const Text = OrNull(Type.String());
const HardwareFacts = Closed({
  system: Closed({ vendor: Text, product: Text, serial: Text, uuid: Text }),
  firmware: Closed({ vendor: Text, version: Text, date: Text }),
  cpu: Closed({ vendor: Text, model: Text, sockets: Type.Integer(), cores: Type.Integer(), threads: Type.Integer() }),
  memory: Closed({ bytes: Type.Integer(), dimms: OrNull(Type.Integer()), source: Literals(['dimms', 'meminfo']) }),
  disks: Type.Array(Closed({ name: Type.String(), model: Text, serial: Text, bytes: Type.Integer(), rotational: OrNull(Type.Boolean()) })),
  nics: Type.Array(Closed({ name: Type.String(), mac: Type.String(), driver: Text, speedMbps: OrNull(Type.Integer()), firmware: Text })),
  bmc: OrNull(Closed({ address: Text, mac: Text })),
});
const FlatFacts = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number()]));
const FactChange = Closed({ key: Type.String(), before: OrNull(Type.Union([Type.String(), Type.Number(), Type.Boolean()])), after: OrNull(Type.Union([Type.String(), Type.Number(), Type.Boolean()])) });
export const FactsRecorded = Closed({ facts: FlatFacts, changes: Type.Array(FactChange), commissioned: Type.Boolean() });
export const FactsRecord = Type.Object(
  {
    machine: Closed({ id: Type.Integer(), macs: Type.Array(Type.String()), hostname: OrNull(Type.String()) }),
    bootEventId: Type.Integer(),
    imageId: OrNull(Type.String()),
    at: Time,
    facts: HardwareFacts,
    flat: FlatFacts,
    previous: Type.Optional(OrNull(Closed({ bootEventId: Type.Integer(), imageId: OrNull(Type.String()), at: Time }))),
    changes: Type.Optional(Type.Array(FactChange)),
  },
  { additionalProperties: false, description: 'with ?raw=1: the report as livery-facts sent it instead' },
);

export const HealthzRecord = Closed({ status: Type.Literal('ok'), schema: Type.Integer({ description: 'the CMDB schema version' }) });

export const ImportReport = Closed({ created: Type.Integer(), updated: Type.Integer(), unchanged: Type.Integer() });
export const ImportFailure = Closed({ error: Type.String(), problems: Type.Array(Closed({ line: Type.Integer(), error: Type.String() })) });
/** A publish refused as a duplicate: which image already has that name and version, and whether it is the same bundle. */
export const DuplicateImage = Closed({ error: Type.String(), field: OrNull(Type.String()), imageId: Type.String(), identical: Type.Boolean() });
