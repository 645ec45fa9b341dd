/**
 * How `gateway devices set` hands desired settings to the running gateway, through a pending
 * folder (gateway/store/pending-folder.ts) as `gateway policy grant` hands its ops: the CLI
 * queues a JSON request as `<dataDir>/settings-pending/<time>-<random>.json`; the gateway logs
 * each as a signed `settings` block on its default stream inside the ingest commit loop and
 * deletes the file once the block is durable. A request that does not encode is set aside as
 * `*.rejected` with the reason in `*.reason`.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { CborValue } from '../../protocols/index.js';
import { type SettingsRecord, settingsBody } from '../../protocols/settings.js';
import { DEFAULT_POLICY, type BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import type { FreeSpaceGuard, SpaceCheck } from '../store/free-space.js';
import { PendingFolder, queuePending } from '../store/pending-folder.js';

const SETTINGS_PENDING_DIR = 'settings-pending';

/** CLI side: queues a request for the gateway; returns the file written. Throws ProtocolUsageError on a bad record. */
export function queueSettings(dataDir: string, record: SettingsRecord, space?: FreeSpaceGuard): string {
  settingsBody(record); // refuse here what the gateway would refuse
  return queuePending(dataDir, SETTINGS_PENDING_DIR, '.json', `${JSON.stringify(record)}\n`, {
    at: record.at,
    space,
    what: `queueing settings for ${record.device}`,
  });
}

export class SettingsInbox extends PendingFolder {
  constructor(
    dataDir: string,
    private readonly log: BlockLog,
    /** Authors inside the ingest commit loop (the default stream also holds frames blocks). */
    private readonly inCommit: (author: () => void) => void,
    private readonly logger: Logger,
    space?: SpaceCheck,
  ) {
    super(join(dataDir, SETTINGS_PENDING_DIR), { exts: ['.json'], what: 'settings request', logger, space });
  }

  protected async handle(names: string[]): Promise<number> {
    const records: { file: string; body: CborValue; record: SettingsRecord }[] = [];
    for (const n of names) {
      const file = join(this.dir, n);
      try {
        const record = JSON.parse(readFileSync(file, 'utf8')) as SettingsRecord;
        records.push({ file, record, body: settingsBody(record) as unknown as CborValue });
      } catch (err) {
        this.reject(n.slice(0, -'.json'.length), err instanceof Error ? err.message : String(err));
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
  }
}
