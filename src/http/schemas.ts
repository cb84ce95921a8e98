import { Type, type TSchema } from '@sinclair/typebox';

/** Request shapes shared by the REST routes; the domain rules themselves live in the CMDB. */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const StringMap = Type.Record(Type.String(), Type.String());

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
    state: Type.Optional(Type.Union([Type.Literal('discovered'), Type.Literal('registered'), Type.Literal('retired')])),
    image: Type.Optional(ImageSelectorBody),
    kernelArgs: Type.Optional(Type.String()),
    vars: Type.Optional(StringMap),
    ip: Type.Optional(Nullable(Type.String())),
    subnet: Type.Optional(Nullable(Type.String())),
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
    policy: Type.Optional(Type.Union([Type.Literal('ignore'), Type.Literal('discover'), Type.Literal('default-image')])),
    discoverAction: Type.Optional(Type.Union([Type.Literal('retry'), Type.Literal('exit')])),
    defaultImage: Type.Optional(
      Type.Object({ name: Type.Optional(Nullable(Type.String())), channel: Type.Optional(Nullable(Type.String())) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);

export const RefParams = Type.Object({ ref: Type.String({ minLength: 1, maxLength: 255 }) });

export const ListQuery = Type.Object(
  {
    state: Type.Optional(Type.Union([Type.Literal('discovered'), Type.Literal('registered'), Type.Literal('retired')])),
    site: Type.Optional(Type.String()),
    label: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
    after: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
