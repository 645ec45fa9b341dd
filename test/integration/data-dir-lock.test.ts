/**
 * One gateway process per data directory (child processes): a second `gateway start` on a
 * running gateway's directory exits 1 at once naming the first process, and writes nothing;
 * the read-only commands, and `devices enroll` (which writes only the registry, documented to
 * take effect in the running gateway), keep working beside it; after a SIGKILL of the first
 * (the kernel lets its lock go) a new start succeeds. Without flock(1) the start is refused
with the tool named. In-process: a stopped gateway lets go.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataDirLockError } from '../../gateway/store/data-dir-lock.js';
import { testDevice } from '../helpers/devices.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { strippedPath } from '../helpers/stripped-path.js';
import {
  gatewayCli,
  type GatewayProcess,
  publishFrames,
  startGatewayProcess,
  stopGatewayProcess,
  writeGatewayConfig,
} from '../helpers/process.js';

const { dir, cleanup } = tempDir('outpost-lock-');
const running: GatewayProcess[] = [];
afterAll(() => {
  for (const g of running) if (g.child.exitCode === null) g.child.kill('SIGKILL');
  cleanup();
});

describe('one gateway process per data directory', () => {
  it('a second start is refused naming the first; read-only commands work beside it; after a SIGKILL a start succeeds', async () => {
    const dev = testDevice('lock-1');
    const other = testDevice('lock-2');
    const dataDir = join(dir, 'data');
    const file = writeGatewayConfig(dir, dataDir, [{ id: dev.id, publicKey: dev.publicKeyHex }]);
    const first = await startGatewayProcess(file);
    running.push(first);
    await publishFrames(first.port, dev, 1, [0, 1, 2, 3, 4]);
    const data = ['--data', dataDir];
    const query = async (): Promise<string[]> =>
      (await gatewayCli(['log', 'query', ...data])).stdout.trim().split('\n').filter(Boolean);
    await waitFor(async () => (await query()).length === 5, 60_000, 'five frames stored');
    const heads = async (): Promise<string> => (await gatewayCli(['log', 'heads', '--json', ...data])).stdout;
    // The running gateway seals its journaled frames into blocks on its own (log.sealAfterMs):
    // compare against the log once that happened, so only the refused start could change it.
    let headsBefore = '';
    await waitFor(
      async () => {
        const h = await heads();
        const settled = h === headsBefore && (JSON.parse(h) as { blocks: number }).blocks > 0;
        headsBefore = h;
        return settled;
      },
      60_000,
      'the frames sealed into blocks',
    );

    // Other ports, same data directory.
    const second = await gatewayCli(['start', '--config', file, '--port', '0', '--no-simulate']);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      `gateway: ${dataDir} is in use by another gateway process (pid ${first.child.pid}): one gateway per data directory; stop that one, or give this one its own gateway.dataDir (--data)\n`,
    );
    expect(second.stdout).toBe(''); // it never got as far as "starting"
    expect(readFileSync(join(dataDir, 'gateway.lock'), 'utf8')).toBe(`${first.child.pid}\n`);

    // Beside the running gateway: the read-only commands, and enrolment in the registry.
    expect(await query()).toHaveLength(5);
    expect(await heads()).toBe(headsBefore); // the refused start wrote nothing
    const audit = await gatewayCli(['audit', 'verify', ...data]);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toContain('ok: no faults');
    const enroll = await gatewayCli(['devices', 'enroll', '--id', other.id, '--key', other.publicKeyHex, ...data]);
    expect(enroll.code).toBe(0);
    const list = await gatewayCli(['devices', 'list', ...data]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(dev.id);
    expect(list.stdout).toContain(other.id);
    // … and the running gateway takes the new device at once.
    await publishFrames(first.port, other, 1, [0]);
    await waitFor(async () => (await query()).length === 6, 60_000, "the new device's frame stored");

    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const again = await startGatewayProcess(file);
    running.push(again);
    expect(readFileSync(join(dataDir, 'gateway.lock'), 'utf8')).toBe(`${again.child.pid}\n`);
    expect(await stopGatewayProcess(again)).toBe(0);
  }, 300_000);

  it('without flock(1) on the PATH the start is refused, naming the missing tool, before the store is opened', async () => {
    const dataDir = join(dir, 'no-flock');
    mkdirSync(join(dir, 'no-flock-cfg'));
    const file = writeGatewayConfig(join(dir, 'no-flock-cfg'), dataDir, [
      { id: 'd', publicKey: testDevice('d').publicKeyHex },
    ]);
    const PATH = strippedPath(join(dir, 'no-flock-path'), ['flock']);
    const r = await gatewayCli(['start', '--config', file, '--no-simulate'], undefined, { ...process.env, PATH });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^gateway: cannot lock .*gateway\.lock: spawnSync flock ENOENT \(flock\(1\) is in util-linux\)\n$/,
    );
    expect(existsSync(join(dataDir, 'outpost.lmdb'))).toBe(false);
  }, 120_000);

  it('in one process: a second Gateway.start on the directory throws store/locked; once the first stops, a start succeeds', async () => {
    const dataDir = join(dir, 'in-process');
    const a = await startTestGateway(dataDir);
    const refused = await startTestGateway(dataDir).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DataDirLockError);
    expect(refused).toMatchObject({ code: 'store/locked', holderPid: process.pid });
    await a.gw.stop();
    const b = await startTestGateway(dataDir);
    await b.gw.stop();
  }, 60_000);
});
