import { Type, type TSchema } from '@sinclair/typebox';

/** Request shapes shared by the REST routes; the domain rules themselves live in the CMDB. */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const StringMap = Type.Record(Type.String(), Type.String());
// Null first: with type coercion on, a null tried against string first would become "".
const StringMapChanges = Type.Record(Type.String(), Type.Union([Type.Null(), Type.String()]));

export const ImageSelectorBody = Type.Object(
  { name: Type.Optional(Nullable(Type.String())), channel: Type.Optional(Nullable(Type.String())), id: Type.Optional(Nullable(Type.String())) },
  { additionalProperties: false },
);

export const MachineBody = Type.Object(
  {
    macs: Type.Optional(Type.Array(Type.String(), { maxItems: 16 })),
    hostname: Type.Optional(Nullable(Type.String())),
    uuid: Type.Optional(Nullable(Type.String())),
    site: Type.Optional(Nullable(Type.String())),
    labels: Type.Optional(StringMap),
    labelChanges: Type.Optional(StringMapChanges),
    state: Type.Optional(Type.Union([Type.Literal('discovered'), Type.Literal('registered'), Type.Literal('retired')])),
    image: Type.Optional(ImageSelectorBody),
    kernelArgs: Type.Optional(Type.String()),
    vars: Type.Optional(StringMap),
    varChanges: Type.Optional(StringMapChanges),
    ip: Type.Optional(Nullable(Type.String())),
    subnet: Type.Optional(Nullable(Type.String())),
    // Checked by the CMDB, whose message names the allowed values.
    secureBoot: Type.Optional(Nullable(Type.String())),
  },
  { additionalProperties: false },
);

export const SubnetBody = Type.Object(
  {
    name: Type.Optional(Type.String()),
    cidr: Type.Optional(Type.String()),
    gateway: Type.Optional(Nullable(Type.String())),
    dns: Type.Optional(Type.Array(Type.String())),
    domain: Type.Optional(Nullable(Type.String())),
    pools: Type.Optional(Type.Array(Type.Object({ start: Type.String(), end: Type.String() }, { additionalProperties: false }))),
    leaseSeconds: Type.Optional(Type.Integer()),
    policy: Type.Optional(Type.Union([Type.Literal('ignore'), Type.Literal('discover'), Type.Literal('default-image'), Type.Literal('commission')])),
    discoverAction: Type.Optional(Type.Union([Type.Literal('retry'), Type.Literal('exit')])),
    defaultImage: Type.Optional(
      Type.Object({ name: Type.Optional(Nullable(Type.String())), channel: Type.Optional(Nullable(Type.String())) }, { additionalProperties: false }),
    ),
    secureBoot: Type.Optional(Nullable(Type.String())),
  },
  { additionalProperties: false },
);

export const RefParams = Type.Object({ ref: Type.String({ minLength: 1, maxLength: 255 }) });

export const ListQuery = Type.Object(
  {
    state: Type.Optional(Type.Union([Type.Literal('discovered'), Type.Literal('registered'), Type.Literal('retired')])),
    site: Type.Optional(Type.String()),
    label: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    /** Hardware facts, `memory_gb>=256` (repeatable; see src/facts/filter.ts). */
    fact: Type.Optional(Type.Union([Type.String({ maxLength: 300 }), Type.Array(Type.String({ maxLength: 300 }), { maxItems: 32 })])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
    after: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

/**
 * Null first: the API's ajv coerces types, and tries a union's branches in order, so with the
 * value's type first a null would become 0 or "" rather than stay null (cleared).
 */
const OrNull = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

export const BmcBody = Type.Object(
  {
    driver: Type.Union([Type.Literal('ipmi'), Type.Literal('redfish')]),
    address: Type.String({ minLength: 1, maxLength: 253 }),
    port: Type.Optional(OrNull(Type.Integer({ minimum: 1, maximum: 65535 }))),
    username: Type.String({ minLength: 1, maxLength: 64 }),
    /** Write-only: stored sealed, never returned. Omitted: keep the stored one. */
    password: Type.Optional(Type.String({ maxLength: 256 })),
    systemPath: Type.Optional(OrNull(Type.String({ maxLength: 255 }))),
    verify: Type.Optional(Type.Boolean()),
    fingerprint: Type.Optional(OrNull(Type.String({ maxLength: 95 }))),
  },
  { additionalProperties: false },
);

export const PowerBody = Type.Object(
  { action: Type.Union(['status', 'on', 'off', 'cycle', 'reset'].map((a) => Type.Literal(a))) },
  { additionalProperties: false },
);

/** Power for many machines: by selector, or by a list of references (MAC, hostname, id). */
export const FleetPowerBody = Type.Object(
  {
    action: PowerBody.properties.action,
    selector: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    machines: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { minItems: 1, maxItems: 10_000 })),
  },
  { additionalProperties: false },
);

export const AssignmentBody = Type.Object(
  {
    selector: Type.String({ minLength: 1, maxLength: 4096 }),
    image: Type.String({ minLength: 1, maxLength: 100 }),
    priority: Type.Optional(Type.Integer({ minimum: -1_000_000, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);
