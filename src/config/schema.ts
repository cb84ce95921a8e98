import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * Every configuration key, its default and its limits. `livery serve` validates the merged
 * config against this at start and refuses to run with a message naming the bad key.
 */
const section = <T extends Parameters<typeof Type.Object>[0]>(props: T) =>
  Type.Object(props, { additionalProperties: false, default: {} });

const HostPort = (def: string) => Type.String({ default: def, pattern: '^(\\[[0-9a-fA-F:]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$' });

const SecureBootSetting = Type.Union([Type.Literal('off'), Type.Literal('on'), Type.Literal('auto')], { default: 'off' });

export const ConfigSchema = section({
  /** SQLite file, catalog blobs, TFTP root and build cache live under this folder. */
  dataDir: Type.String({ default: './var', minLength: 1 }),
  /** Where the CMDB lives: empty, a SQLite file in dataDir; or a PostgreSQL database (README "Running more than one node"). */
  database: section({
    /** postgres://USER@HOST:PORT/DATABASE, without a password (see passwordFile). */
    url: Type.String({ default: '' }),
    /** A file holding the database password; else LIVERY_DATABASE_PASSWORD, else none (peer or trust auth). */
    passwordFile: Type.String({ default: '' }),
  }),
  /** This livery among others sharing one PostgreSQL CMDB (README "Running more than one node"). */
  node: section({
    /** Unique among the nodes; empty: this host's name. */
    name: Type.String({ default: '', pattern: '^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' }),
    /** How often the node records that it is alive. */
    heartbeatSeconds: Type.Integer({ default: 5, minimum: 1, maximum: 300 }),
    /** A node silent this long is taken for dead: another takes over its roles (the rollout engine). */
    deadAfterSeconds: Type.Integer({ default: 20, minimum: 3, maximum: 3600 }),
  }),
  log: section({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
    /** Which HTTP requests get a log line at info: writes and errors (the default), every one, or none. */
    requests: Type.Union(['writes', 'all', 'off'].map((l) => Type.Literal(l)), { default: 'writes' }),
  }),
  http: section({
    listen: HostPort('127.0.0.1:8080'),
    /** The base URL machines use to reach livery; defaults to http://<listen>. */
    publicUrl: Type.String({ default: '' }),
    /** Extra processes serving HTTP (artifacts are CPU-bound in Node); 0 means one per core. */
    workers: Type.Integer({ default: 0, minimum: 0, maximum: 64 }),
    /** The largest JSON body of the API (a machine, a subnet, a token...). */
    apiBodyLimitBytes: Type.Integer({ default: 1024 * 1024, minimum: 1024 }),
    /** The largest machine import (CSV or JSON); bundles are bounded by catalog.maxBundleBytes. */
    bodyLimitBytes: Type.Integer({ default: 16 * 1024 * 1024, minimum: 1024 }),
    /** A request body must arrive whole within this (a streamed publish or import: see minBodyBytesPerSecond). */
    bodyTimeoutMs: Type.Integer({ default: 15_000, minimum: 100 }),
    /** A publish or import body slower than this over a bodyTimeoutMs window is dropped. */
    minBodyBytesPerSecond: Type.Integer({ default: 16 * 1024, minimum: 0 }),
    /** Open connections from one source address (0: no cap); more are closed on arrival. */
    maxConnectionsPerClient: Type.Integer({ default: 256, minimum: 0 }),
    /** Open connections in total, per HTTP process (0: no cap). */
    maxConnections: Type.Integer({ default: 8192, minimum: 0 }),
    /**
     * A whole request (headers and body) must arrive within this time; long enough for a
     * multi-GB publish. A stalled client is cut sooner by idleTimeoutMs.
     */
    requestTimeoutMs: Type.Integer({ default: 3_600_000, minimum: 100 }),
    /** A connection with no bytes moving for this long is closed (slow-loris, stalled uploads). */
    idleTimeoutMs: Type.Integer({ default: 120_000, minimum: 100 }),
    /** A web console login lasts this long (it ends sooner at logout or when its token is revoked). */
    sessionHours: Type.Number({ default: 12, minimum: 0.01, maximum: 24 * 30 }),
    tls: section({
      cert: Type.String({ default: '' }),
      key: Type.String({ default: '' }),
    }),
    /**
     * A machine's metadata, cloud-init files and phone-home are answered only from that
     * machine's reserved or leased address. Off only where livery cannot see machines' own
     * addresses: behind NAT, or with another DHCP server (proxy mode) and no reservations.
     */
    metadataRequiresOwnAddress: Type.Boolean({ default: true }),
    /**
     * Boot events the machine-facing door may create (script fetches, `?mac=` artifact fetches,
     * phone-homes): per source address, per MAC, and shared by every MAC the CMDB does not know
     * (their events and registrations). Past a limit a script or phone-home gets 429 and an
     * artifact is served without its event. Per HTTP process.
     */
    machineDoor: section({
      perAddressPerSecond: Type.Number({ default: 20, minimum: 0.1 }),
      perAddressBurst: Type.Integer({ default: 100, minimum: 1 }),
      perMacPerSecond: Type.Number({ default: 1, minimum: 0.01 }),
      perMacBurst: Type.Integer({ default: 30, minimum: 1 }),
      unknownMacsPerSecond: Type.Number({ default: 20, minimum: 0.1 }),
    }),
  }),
  tftp: section({
    enabled: Type.Boolean({ default: true }),
    listen: HostPort('127.0.0.1:69'),
    /** Extra files served from disk; empty means <dataDir>/tftp. */
    root: Type.String({ default: '' }),
    /** First-stage loaders by TFTP name → file on disk (Debian's ipxe package by default). */
    loaders: Type.Record(Type.String({ pattern: '^[A-Za-z0-9._/-]+$' }), Type.String(), {
      default: {
        'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe',
        'ipxe.efi': '/usr/lib/ipxe/ipxe.efi',
        'snponly.efi': '/usr/lib/ipxe/snponly.efi',
        // Secure Boot: Debian's shim (signed by Microsoft's UEFI CA) loads grubx64.efi from
        // beside itself, which is Debian's signed network GRUB (package grub-efi-amd64-signed).
        'shimx64.efi': '/usr/lib/shim/shimx64.efi.signed',
        'grubx64.efi': '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed',
      },
    }),
    maxBlksize: Type.Integer({ default: 1468, minimum: 512, maximum: 65464 }),
    maxWindowsize: Type.Integer({ default: 64, minimum: 1, maximum: 65535 }),
    timeoutMs: Type.Integer({ default: 1000, minimum: 50, maximum: 255_000 }),
    retries: Type.Integer({ default: 5, minimum: 0, maximum: 50 }),
    /** Longest a transfer may wait for a client's ACK, whatever timeout it negotiated; 0 = what timeoutMs and retries give. */
    maxSilenceMs: Type.Integer({ default: 0, minimum: 0, maximum: 3_600_000 }),
    maxTransfers: Type.Integer({ default: 2048, minimum: 1 }),
    maxTransfersPerClient: Type.Integer({ default: 8, minimum: 1 }),
  }),
  dhcp: section({
    /** Off until an operator names the interface: livery must never answer DHCP by accident. */
    enabled: Type.Boolean({ default: false }),
    mode: Type.Union([Type.Literal('full'), Type.Literal('proxy')], { default: 'full' }),
    /** The directly attached interface served (broadcasts arrive here). */
    interface: Type.String({ default: '' }),
    /** This server's address on that interface: server identifier, next-server, relay target. */
    address: Type.String({ default: '' }),
    port: Type.Integer({ default: 67, minimum: 1, maximum: 65535 }),
    clientPort: Type.Integer({ default: 68, minimum: 1, maximum: 65535 }),
    proxyPort: Type.Integer({ default: 4011, minimum: 1, maximum: 65535 }),
    rateLimit: section({
      perMacPerSecond: Type.Number({ default: 10, minimum: 0.1 }),
      /** Shared by all MACs the CMDB does not know (known machines have only their own limit). */
      globalPerSecond: Type.Number({ default: 20_000, minimum: 1 }),
    }),
    /**
     * Addresses (or CIDRs) relay agents may send from besides their own giaddr. A relayed packet
     * (giaddr set) is answered only from port `port` and from its giaddr or one of these: a client
     * on the segment (port 68) cannot take addresses from a relayed subnet by setting giaddr.
     */
    relaySources: Type.Array(Type.String({ pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}(/[0-9]{1,2})?$' }), { default: [] }),
    /**
     * How many pool addresses unknown MACs may hold at once across all subnets: offers, leases
     * and quarantines after a DECLINE (stops pool-exhaustion attacks).
     */
    unknownMacLeaseCap: Type.Integer({ default: 100_000, minimum: 0 }),
    /** The share of each subnet's pool unknown MACs may hold at once; the rest is kept for registered machines. */
    unknownMacPoolPercent: Type.Integer({ default: 90, minimum: 0, maximum: 100 }),
    /** While dhcp.interface is down or lacks dhcp.address, check again this often (the rest of livery serves meanwhile). */
    interfaceRetrySeconds: Type.Integer({ default: 5, minimum: 1, maximum: 300 }),
    offerHoldSeconds: Type.Integer({ default: 60, minimum: 5 }),
    /**
     * Longest a packet may wait in livery's backlog before it is dropped unanswered (counted as
     * `stale`). A client takes an answer to any of its retransmissions (they keep one xid),
     * and PXE ROMs first retransmit after 4 s (RFC 2131: 4 ± 1 s), so until then the packet
     * may be the only one its client has sent. 2 s dropped first DISCOVERs that a 1,000-machine
     * boot storm would still have answered in time, and made 112 clients retransmit.
     */
    maxWaitMs: Type.Integer({ default: 4000, minimum: 10, maximum: 60_000 }),
    declineQuarantineSeconds: Type.Integer({ default: 3600, minimum: 0 }),
    /**
     * The node.name of every other livery node answering DHCP on this segment. They split the
     * clients (RFC 3074 hash) and take over those of a node whose heartbeat is older than
     * node.deadAfterSeconds; empty: this node answers every client.
     */
    peers: Type.Array(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' }), { default: [] }),
  }),
  /** Machine records that unknown MACs create (subnet policies `discover`, `default-image` and `commission`). */
  discovery: section({
    /**
     * New records per subnet per interval, on the DHCP door (which knows the subnet). Past it an
     * unknown MAC is still answered but leaves no record and no event (counted on /metrics).
     */
    maxPerSubnet: Type.Integer({ default: 1000, minimum: 0 }),
    intervalSeconds: Type.Integer({ default: 60, minimum: 1 }),
    /** A `discovered` record not seen for this long and holding no lease is deleted; 0 keeps them all. */
    expireAfterSeconds: Type.Integer({ default: 7 * 86_400, minimum: 0 }),
  }),
  boot: section({
    /** Operator-editable templates; empty means the pxe-templates/ folder shipped with livery. */
    templatesDir: Type.String({ default: '' }),
    console: Type.String({ default: 'ttyS0,115200' }),
    /** TFTP loader file per client architecture family. */
    loaderBios: Type.String({ default: 'undionly.kpxe' }),
    loaderUefi: Type.String({ default: 'snponly.efi' }),
    loaderUefiArm64: Type.String({ default: 'ipxe-arm64.efi' }),
    /** UEFI HTTP Boot clients get this file over HTTP (an iPXE EFI build). */
    httpBootLoader: Type.String({ default: 'ipxe.efi' }),
    /**
     * Which chain x86-64 UEFI clients get (subnets and machines may override it): off = iPXE;
     * on = the machine enforces Secure Boot, so the signed shim -> GRUB -> kernel chain (and
     * images with an unsigned kernel are refused for it); auto = the signed chain for every
     * UEFI client. BIOS clients always get iPXE.
     */
    secureBoot: SecureBootSetting,
    /** The first loader of the signed chain, over TFTP or HTTP (a name in tftp.loaders). */
    loaderShim: Type.String({ default: 'shimx64.efi' }),
  }),
  catalog: section({
    maxBundleBytes: Type.Integer({ default: 16 * 1024 ** 3, minimum: 1024 }),
    maxArtifactBytes: Type.Integer({ default: 8 * 1024 ** 3, minimum: 1024 }),
  }),
  builder: section({
    /** Debian mirror; empty means the one this machine's apt uses. */
    mirror: Type.String({ default: '' }),
    cacheDir: Type.String({ default: '' }),
    compression: Type.Union([Type.Literal('xz'), Type.Literal('zstd')], { default: 'xz' }),
  }),
  power: section({
    /** The ipmitool command IPMI BMCs are driven with, with any words before it (space-separated). */
    ipmitool: Type.String({ default: 'ipmitool', minLength: 1 }),
    /**
     * The RMCP+ cipher suite (ipmitool -C). 3 (HMAC-SHA1, AES-128) is the one nearly every BMC
     * offers; naming one skips ipmitool's suite discovery, a request some BMCs never answer,
     * which costs a whole timeout per call. 17 (HMAC-SHA256) where the BMC has it.
     */
    ipmiCipherSuite: Type.Integer({ default: 3, minimum: 0, maximum: 17 }),
    /** One BMC request, at most; a silent BMC is given up on after this. */
    timeoutMs: Type.Integer({ default: 10_000, minimum: 100, maximum: 120_000 }),
    /** Further tries of a request that timed out or failed in a way another try may cure. */
    retries: Type.Integer({ default: 2, minimum: 0, maximum: 10 }),
    /** BMCs talked to at once (per process), whatever the number of machines asked for. */
    concurrency: Type.Integer({ default: 16, minimum: 1, maximum: 1024 }),
  }),
  /** Hardware facts the agent reports at every boot, commissioning, and drift between boots (see src/facts). */
  facts: section({
    /**
     * A boot whose memory, CPUs, disks, NICs or firmware version differ from the previous boot's
     * always raises a `hardware-changed` event; `label` also labels the machine drift=hardware,
     * `retire` labels it and leaves it out of new rollouts while the label stays; `off` does neither.
     */
    onDrift: Type.Union([Type.Literal('off'), Type.Literal('label'), Type.Literal('retire')], { default: 'label' }),
    /** The image unknown MACs boot on a subnet with policy `commission`. */
    commissionImage: Type.String({ default: 'commission', minLength: 1 }),
    /** What the commission image does once it has reported (kernel argument livery.commission=): power off, or wait. */
    commissionThen: Type.Union([Type.Literal('poweroff'), Type.Literal('wait')], { default: 'poweroff' }),
  }),
});

export type Config = Static<typeof ConfigSchema>;

/** Every key at its default: the one place a default is written is the schema above. */
export const CONFIG_DEFAULTS: Config = Value.Default(ConfigSchema, {}) as Config;
export type { TSchema };
