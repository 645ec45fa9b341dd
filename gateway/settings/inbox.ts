/**
 * How `gateway devices set` hands desired settings to the running gateway, the way
 * `gateway policy grant` hands over its ops (gateway/policy/inbox.ts): the CLI writes a JSON
 * request into `<dataDir>/settings-pending/<time>-<random>.json` (whole, through a rename); the
 * gateway drains the folder (at start and every second), logs each request as a signed
 * `settings` block on its default stream inside the ingest commit loop, and deletes the file
 * once the block is durable. A request that does not encode is renamed `*.rejected` with the
 * reason beside it (`*.reason`). A gateway that is not running logs it when it starts.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { CborValue } from '../../protocols/index.js';
import { type SettingsRecord, settingsBody } from '../../protocols/settings.js';
import { DEFAULT_POLICY, type BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import type { FreeSpaceGuard, SpaceCheck } from '../store/free-space.js';
import { writeFileWhole } from '../store/whole-file.js';

const SETTINGS_PENDING_DIR = 'settings-pending';

/** CLI side: queues a request for the gateway; returns the file written. Throws ProtocolUsageError on a bad record. */
export function queueSettings(dataDir: string, record: SettingsRecord, space?: FreeSpaceGuard): string {
  settingsBody(record); // refuse here what the gateway would refuse
  const dir = join(dataDir, SETTINGS_PENDING_DIR);
  space?.require(`queueing settings for ${record.device}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${String(record.at).padStart(15, '0')}-${randomBytes(6).toString('hex')}.json`);
  writeFileWhole(file, `${JSON.stringify(record)}\n`, { mode: 0o600, exclusive: true });
  return file;
}

export class SettingsInbox {
  private timer?: NodeJS.Timeout;
  private draining = false;
  private readonly dir: string;

  constructor(
    dataDir: string,
    private readonly log: BlockLog,
    /** Authors inside the ingest commit loop (the default stream also holds frames blocks). */
    private readonly inCommit: (author: () => void) => void,
    private readonly logger: Logger,
    private readonly space?: SpaceCheck,
  ) {
    this.dir = join(dataDir, SETTINGS_PENDING_DIR);
  }

  start(intervalMs = 1000): void {
    const run = (): void =>
      void this.drain().catch((err: unknown) =>
        this.logger.error({ err }, 'settings inbox: commit failed; pending settings are retried'),
      );
    run();
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
  }

  /** Logs every pending request; resolves once their blocks are durable. */
  async drain(): Promise<number> {
    if (this.draining || (this.space && !this.space.writable())) return 0;
    this.draining = true;
    try {
      let names: string[];
      try {
        names = readdirSync(this.dir)
          .filter((n) => n.endsWith('.json'))
          .sort();
      } catch {
        return 0;
      }
      const records: { file: string; body: CborValue; record: SettingsRecord }[] = [];
      for (const n of names) {
        const file = join(this.dir, n);
        try {
          const record = JSON.parse(readFileSync(file, 'utf8')) as SettingsRecord;
          records.push({ file, record, body: settingsBody(record) as unknown as CborValue });
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          this.logger.error({ file, reason }, `settings request refused: ${reason}`);
          writeFileSync(file.replace(/\.json$/, '.reason'), `${reason}\n`);
          renameSync(file, file.replace(/\.json$/, '.rejected'));
        }
      }
      if (records.length === 0) return 0;
      await new Promise<void>((resolve, reject) =>
        this.inCommit(() => {
          try {
            for (const r of records) this.log.appendBlock({ kind: 'settings', body: r.body }, DEFAULT_POLICY);
            resolve();
          } catch (err) {
            reject(err);
          }
        }),
      );
      // A failed commit keeps the files: they are logged again on the next drain.
      await this.log.durable();
      for (const r of records) {
        unlinkSync(r.file);
        const values = Object.fromEntries(r.record.values);
        this.logger.info(
          { device: r.record.device, values, by: r.record.by },
          `desired settings logged for ${r.record.device}`,
        );
      }
      return records.length;
    } finally {
      this.draining = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
