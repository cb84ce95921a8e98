/**
 * Schema versions, applied in order at open inside one transaction each. Append only: a
 * released migration is never edited, so every database walks the same path.
 */
export const MIGRATIONS: readonly string[] = [
  /* 1: the initial CMDB */ `
  CREATE TABLE subnets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    cidr TEXT NOT NULL UNIQUE,
    network INTEGER NOT NULL,
    prefix INTEGER NOT NULL,
    gateway TEXT,
    dns TEXT NOT NULL DEFAULT '[]',
    domain TEXT,
    pools TEXT NOT NULL DEFAULT '[]',
    lease_seconds INTEGER NOT NULL DEFAULT 3600,
    policy TEXT NOT NULL DEFAULT 'discover' CHECK (policy IN ('ignore', 'discover', 'default-image')),
    discover_action TEXT NOT NULL DEFAULT 'retry' CHECK (discover_action IN ('retry', 'exit')),
    default_image_name TEXT,
    default_image_channel TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );

  CREATE TABLE images (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    os TEXT NOT NULL,
    arch TEXT NOT NULL,
    created_at TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    kernel_args TEXT NOT NULL DEFAULT '',
    manifest TEXT NOT NULL,
    UNIQUE (name, version)
  );

  CREATE TABLE image_artifacts (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('kernel', 'initrd', 'rootfs', 'extra')),
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
  );
  CREATE INDEX image_artifacts_sha256 ON image_artifacts(sha256);

  CREATE TABLE channels (
    image_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (image_name, channel)
  );

  CREATE TABLE channel_history (
    id INTEGER PRIMARY KEY,
    image_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    image_id TEXT NOT NULL,
    previous_image_id TEXT,
    action TEXT NOT NULL CHECK (action IN ('promote', 'rollback')),
    actor TEXT,
    at INTEGER NOT NULL
  );
  CREATE INDEX channel_history_channel ON channel_history(image_name, channel, id);

  CREATE TABLE machines (
    id INTEGER PRIMARY KEY,
    hostname TEXT UNIQUE COLLATE NOCASE,
    uuid TEXT,
    site TEXT,
    labels TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL CHECK (state IN ('discovered', 'registered', 'retired')),
    image_name TEXT,
    image_channel TEXT,
    image_id TEXT REFERENCES images(id),
    kernel_args TEXT NOT NULL DEFAULT '',
    vars TEXT NOT NULL DEFAULT '{}',
    ip TEXT,
    subnet_id INTEGER REFERENCES subnets(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_seen_at INTEGER
  );
  CREATE UNIQUE INDEX machines_ip ON machines(ip) WHERE ip IS NOT NULL;
  CREATE INDEX machines_state ON machines(state);
  CREATE INDEX machines_site ON machines(site);

  CREATE TABLE machine_macs (
    mac TEXT PRIMARY KEY,
    machine_id INTEGER NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    position INTEGER NOT NULL
  );
  CREATE INDEX machine_macs_machine ON machine_macs(machine_id);

  CREATE TABLE leases (
    ip INTEGER PRIMARY KEY,
    mac TEXT NOT NULL,
    subnet_id INTEGER NOT NULL REFERENCES subnets(id) ON DELETE CASCADE,
    state TEXT NOT NULL CHECK (state IN ('offered', 'bound', 'released', 'declined')),
    expires_at INTEGER NOT NULL,
    client_id TEXT,
    hostname TEXT,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX leases_mac ON leases(mac);

  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    type TEXT NOT NULL,
    mac TEXT,
    machine_id INTEGER,
    image_id TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX events_mac ON events(mac, id);

  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'publisher', 'reader')),
    secret_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  );

  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
  );
  `,
  /* 2: a machine's MACs read in order straight from an index (every boot-path lookup lists them) */ `
  CREATE INDEX machine_macs_machine_position ON machine_macs(machine_id, position);
  DROP INDEX machine_macs_machine;
  `,
  /*
   * 3: a counter that moves whenever a machine some process may hold in memory changes (see
   * MachineCache). A new machine's first MAC and last-seen stamps leave it alone: neither
   * changes a machine anyone could have cached, and the boot path makes both all the time.
   */ `
  CREATE TABLE change_counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
  INSERT INTO change_counters (name, n) VALUES ('machines', 0);
  CREATE TRIGGER machines_edited AFTER UPDATE OF hostname, uuid, site, labels, state, image_name, image_channel, image_id,
    kernel_args, vars, ip, subnet_id ON machines
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER machines_deleted AFTER DELETE ON machines
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER machine_macs_added AFTER INSERT ON machine_macs WHEN NEW.position > 0
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER machine_macs_edited AFTER UPDATE ON machine_macs
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER machine_macs_deleted AFTER DELETE ON machine_macs
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER subnets_renamed AFTER UPDATE OF name ON subnets
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER subnets_deleted AFTER DELETE ON subnets
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  `,
  /*
   * 4: a machine's BMC, for power control. The password is sealed (SecretBox: AES-256-GCM,
   * key file in the data dir), never stored in clear. Not a boot-path field: no change counter.
   */ `
  CREATE TABLE machine_bmcs (
    machine_id INTEGER PRIMARY KEY REFERENCES machines(id) ON DELETE CASCADE,
    driver TEXT NOT NULL CHECK (driver IN ('ipmi', 'redfish')),
    address TEXT NOT NULL,
    port INTEGER,
    username TEXT NOT NULL,
    password_sealed TEXT,
    system_path TEXT,
    verify INTEGER NOT NULL DEFAULT 1,
    fingerprint TEXT,
    updated_at INTEGER NOT NULL
  );
  `,
  /*
   * 5: image assignment by selector. A rule changes what machines boot, so it moves the change
   * counter the DHCP server's machine cache watches (migration 3), as a machine edit does.
   */ `
  CREATE TABLE assignments (
    id INTEGER PRIMARY KEY,
    selector TEXT NOT NULL,
    image_name TEXT NOT NULL,
    image_channel TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );
  CREATE TRIGGER assignments_added AFTER INSERT ON assignments
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER assignments_edited AFTER UPDATE ON assignments
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER assignments_deleted AFTER DELETE ON assignments
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  `,
  /*
   * 6: rollouts. Each machine's step is a row, written before and after every power action, so
   * a livery killed at any point resumes without cycling a machine twice or skipping one.
   */ `
  CREATE TABLE rollouts (
    id INTEGER PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    selector TEXT NOT NULL,
    channel TEXT,
    waves TEXT NOT NULL,
    max_parallel INTEGER NOT NULL,
    boot_timeout_ms INTEGER NOT NULL,
    max_failures TEXT NOT NULL,
    soak_ms INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'rolling-back', 'succeeded', 'failed', 'aborted', 'rolled-back')),
    wave INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    actor TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX rollouts_state ON rollouts(state);

  CREATE TABLE rollout_waves (
    rollout_id INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
    wave INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'soaking', 'passed', 'failed')),
    soak_until INTEGER,
    reason TEXT,
    started_at INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (rollout_id, wave)
  );

  CREATE TABLE rollout_machines (
    rollout_id INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
    machine_id INTEGER NOT NULL REFERENCES machines(id),
    wave INTEGER NOT NULL,
    position INTEGER NOT NULL,
    phase TEXT NOT NULL DEFAULT 'forward' CHECK (phase IN ('forward', 'back')),
    state TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'cycling', 'booting', 'waiting-reboot', 'healthy', 'failed')),
    previous_image TEXT,
    expected_image_id TEXT,
    since_event_id INTEGER,
    cycle_confirmed INTEGER NOT NULL DEFAULT 0,
    cycles INTEGER NOT NULL DEFAULT 0,
    deadline_at INTEGER,
    detail TEXT NOT NULL DEFAULT '{}',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (rollout_id, machine_id)
  );
  CREATE INDEX rollout_machines_wave ON rollout_machines(rollout_id, wave, position);
  `,
  // 7: the web console's sessions: only the session id's SHA-256 is kept; a session ends with its
  // expiry, its logout, or its token's revocation (the join in SessionStore.verify).
  `
  CREATE TABLE console_sessions (
    id_sha256 TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);
  `,
  /*
   * 8: hardware facts. Each boot's facts (and the raw report they were parsed from, so a parser
   * fix can be checked against what machines sent) are a row keyed by the boot's phone-home; the
   * machine keeps its latest set, flattened, in machines.facts, which selectors read, so a change
   * moves the machines change counter. Subnets gain the unknown-MAC policy `commission`: SQLite
   * cannot edit a CHECK, so the column is replaced (a rebuilt table would cascade-delete leases).
   */ `
  CREATE TABLE machine_facts (
    id INTEGER PRIMARY KEY,
    machine_id INTEGER NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    boot_event_id INTEGER NOT NULL,
    image_id TEXT,
    at INTEGER NOT NULL,
    facts TEXT NOT NULL,
    report TEXT NOT NULL,
    UNIQUE (machine_id, boot_event_id)
  );
  ALTER TABLE machines ADD COLUMN facts TEXT;
  CREATE TRIGGER machines_facts_edited AFTER UPDATE OF facts ON machines
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;

  ALTER TABLE subnets ADD COLUMN policy_new TEXT NOT NULL DEFAULT 'discover'
    CHECK (policy_new IN ('ignore', 'discover', 'default-image', 'commission'));
  UPDATE subnets SET policy_new = policy;
  ALTER TABLE subnets DROP COLUMN policy;
  ALTER TABLE subnets RENAME COLUMN policy_new TO policy;
  `,
  /*
   * 9: Secure Boot (issue 24): which loader chain UEFI clients get; NULL inherits (subnet, then
   * boot.secureBoot). A machine's setting picks the loader DHCP names, so changing it moves the
   * machines change counter (the DHCP server's MachineCache) as migration 3's other columns do, once
   * per edit; subnets are versioned by updated_at.
   */ `
  ALTER TABLE machines ADD COLUMN secure_boot TEXT CHECK (secure_boot IN ('off', 'on', 'auto'));
  ALTER TABLE subnets ADD COLUMN secure_boot TEXT CHECK (secure_boot IN ('off', 'on', 'auto'));
  DROP TRIGGER machines_edited;
  CREATE TRIGGER machines_edited AFTER UPDATE OF hostname, uuid, site, labels, state, image_name, image_channel, image_id,
    kernel_args, vars, ip, subnet_id, secure_boot ON machines
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  `,
  // 10: each BMC's last known power state and when livery learned it (a power action or a status
  // read), so pages show it without asking every BMC on each load.
  `
  ALTER TABLE machine_bmcs ADD COLUMN power_state TEXT CHECK (power_state IN ('on', 'off'));
  ALTER TABLE machine_bmcs ADD COLUMN power_state_at INTEGER;
  `,
  /*
   * 11: a machine may be pinned to an image id before that image reaches this server (it is
   * being pulled from the site where it was published, under the same id), so machines.image_id
   * loses its foreign key; the API warns about a pin to an id not in the catalog, and deleting an
   * image still refuses while a machine pins it. SQLite's documented way to drop a constraint
   * without touching the stored rows is to edit the table's SQL in sqlite_schema (a rebuilt
   * table would cascade-delete its MACs, leases and facts).
   */ `
  PRAGMA writable_schema = ON;
  UPDATE sqlite_schema SET sql = replace(sql, 'image_id TEXT REFERENCES images(id),', 'image_id TEXT,')
    WHERE type = 'table' AND name = 'machines';
  PRAGMA writable_schema = RESET;
  `,
  /*
   * 12: the change counter of migration 3 covers everything a boot decision reads, so the HTTP
   * boot door can keep subnets and resolved images in memory beside machines and rules
   * (MachineCache): any edit of a subnet, an image, its artifacts or a channel moves it too. These
   * change at an operator's pace, never on the boot path.
   */ `
  DROP TRIGGER subnets_renamed;
  CREATE TRIGGER subnets_added AFTER INSERT ON subnets
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER subnets_edited AFTER UPDATE ON subnets
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER images_added AFTER INSERT ON images
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER images_edited AFTER UPDATE ON images
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER images_deleted AFTER DELETE ON images
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER image_artifacts_added AFTER INSERT ON image_artifacts
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER image_artifacts_edited AFTER UPDATE ON image_artifacts
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER image_artifacts_deleted AFTER DELETE ON image_artifacts
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER channels_added AFTER INSERT ON channels
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER channels_edited AFTER UPDATE ON channels
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER channels_deleted AFTER DELETE ON channels
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  `,
  /*
   * 13: a counter for API tokens, so each process can keep verified tokens in memory (their
   * hashes, never a secret) and still refuse a token revoked by another process (the CLI, another
   * HTTP worker) within a bound. Last-use stamps leave it alone: they are written while serving.
   */ `
  INSERT INTO change_counters (name, n) VALUES ('tokens', 0);
  CREATE TRIGGER api_tokens_added AFTER INSERT ON api_tokens
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'tokens'; END;
  CREATE TRIGGER api_tokens_edited AFTER UPDATE OF id, name, role, secret_sha256, revoked_at ON api_tokens
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'tokens'; END;
  CREATE TRIGGER api_tokens_deleted AFTER DELETE ON api_tokens
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'tokens'; END;
  `,
  /*
   * 14: the livery nodes sharing this CMDB (several on PostgreSQL), each row kept by its heartbeat.
   */ `
  CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    version TEXT NOT NULL,
    host TEXT NOT NULL,
    data_dir TEXT NOT NULL,
    pid INTEGER NOT NULL,
    dhcp INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
  );
  -- A role one node at a time plays (the rollout engine), held until expires_at and renewed by its heartbeat.
  CREATE TABLE node_roles (role TEXT PRIMARY KEY, node TEXT NOT NULL, expires_at INTEGER NOT NULL);
  `,
  /*
   * 15: which node holds every blob of which image (issue #28): a node boots machines only into
   * images it holds, and fetches the others' blobs from a peer that holds them. No key to nodes:
   * a node may publish before its first heartbeat row. Rows move the boot decision's counter.
   */ `
  CREATE TABLE image_nodes (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    node TEXT NOT NULL,
    ready_at INTEGER NOT NULL,
    PRIMARY KEY (image_id, node)
  );
  CREATE TRIGGER image_nodes_added AFTER INSERT ON image_nodes
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  CREATE TRIGGER image_nodes_deleted AFTER DELETE ON image_nodes
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'machines'; END;
  `,
  /*
   * 16: a counter that moves whenever a MAC is registered, the machines counter's complement (a
   * new machine's first MAC leaves that one alone): MachineCache keeps the MACs it found no
   * machine for until this moves.
   */ `
  INSERT INTO change_counters (name, n) VALUES ('macs', 0);
  CREATE TRIGGER machine_macs_registered AFTER INSERT ON machine_macs
  BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'macs'; END;
  `,
];
