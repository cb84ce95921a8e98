import type { Registry } from 'prom-client';
import type { BootStepBatch } from '../boot/step-batch.js';
import type { TemplateStore } from '../boot/templates.js';
import type { Catalog } from '../catalog/index.js';
import type { Cmdb, MachineCache } from '../cmdb/index.js';
import type { Config } from '../config/index.js';
import type { EventFeed } from './event-feed.js';
import type { MachineDoor } from './machine-door.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** See AHEAD_OF_BOOT_STEPS. */
    aheadOfBootSteps?: boolean;
  }
}

/**
 * The route config of routes answered without waiting for the boot steps handed over before
 * them (app.ts afterBootSteps): those that hand steps over themselves (scripts, artifacts), and
 * those that read none and must answer while a bulk import holds the CMDB's write lock
 * (liveness, metrics).
 */
export const AHEAD_OF_BOOT_STEPS = { aheadOfBootSteps: true };

/**
 * What every route group is given: the CMDB, the machine-facing routes' cache of it, the
 * catalog, templates, the event feed, the machine door's checks, the boot steps' writer, config
 * and metrics.
 */
export interface HttpContext {
  cmdb: Cmdb;
  /** Machines, rules, subnets and images as the boot and artifact routes read them (see MachineCache). */
  machineCache: MachineCache;
  config: Config;
  registry: Registry;
  catalog: Catalog;
  templates: TemplateStore;
  feed: EventFeed;
  machineDoor: MachineDoor;
  bootSteps: BootStepBatch;
}
