import type { SqlDb } from './sql.js';
import type { Facts, FactsReport } from '../facts/types.js';
import { iso } from './util.js';

/** One boot's facts as stored: the phone-home event of the boot they belong to, and when they came. */
export interface BootFacts {
  bootEventId: number;
  imageId: string | null;
  at: string;
  facts: Facts;
}

interface FactsRow {
  boot_event_id: number;
  image_id: string | null;
  at: number;
  facts: string;
}

/** Boots whose facts a machine keeps: enough to see when a change began. */
const KEEP_BOOTS = 20;

const toBootFacts = (r: FactsRow): BootFacts => ({ bootEventId: r.boot_event_id, imageId: r.image_id, at: iso(r.at), facts: JSON.parse(r.facts) });

/** Machines' hardware facts per boot (migration 7); the latest set, flattened, is on the machine row. */
export class SqlFactStore {
  constructor(private readonly db: SqlDb) {}

  /**
   * Stores (or, for a repeated report of the same boot, replaces) one boot's facts and the report
   * they came from; the machine keeps its newest KEEP_BOOTS boots.
   */
  put(machineId: number, bootEventId: number, imageId: string | null, facts: Facts, report: FactsReport, at = Date.now()): void {
    this.db
      .prepare(
        `INSERT INTO machine_facts (machine_id, boot_event_id, image_id, at, facts, report) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (machine_id, boot_event_id) DO UPDATE SET image_id = excluded.image_id, at = excluded.at, facts = excluded.facts, report = excluded.report`,
      )
      .run(machineId, bootEventId, imageId, at, JSON.stringify(facts), JSON.stringify(report));
    this.db
      .prepare('DELETE FROM machine_facts WHERE machine_id = ? AND boot_event_id NOT IN (SELECT boot_event_id FROM machine_facts WHERE machine_id = ? ORDER BY boot_event_id DESC LIMIT ?)')
      .run(machineId, machineId, KEEP_BOOTS);
  }

  /** The raw report of the machine's newest boot with facts (what livery-facts sent), or null. */
  latestReport(machineId: number): FactsReport | null {
    const text = this.db.prepare('SELECT report FROM machine_facts WHERE machine_id = ? ORDER BY boot_event_id DESC LIMIT 1').pluck().get(machineId) as string | undefined;
    return text === undefined ? null : JSON.parse(text);
  }

  /** The facts of one boot, or null. */
  ofBoot(machineId: number, bootEventId: number): BootFacts | null {
    const row = this.db.prepare('SELECT * FROM machine_facts WHERE machine_id = ? AND boot_event_id = ?').get(machineId, bootEventId) as FactsRow | undefined;
    return row ? toBootFacts(row) : null;
  }

  /** The newest boot's facts before boot `beforeBootEventId` (default: the newest of all), or null. */
  latest(machineId: number, beforeBootEventId = Number.MAX_SAFE_INTEGER): BootFacts | null {
    const row = this.db
      .prepare('SELECT * FROM machine_facts WHERE machine_id = ? AND boot_event_id < ? ORDER BY boot_event_id DESC LIMIT 1')
      .get(machineId, beforeBootEventId) as FactsRow | undefined;
    return row ? toBootFacts(row) : null;
  }
}
