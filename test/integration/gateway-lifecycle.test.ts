/** The gateway's parts stop in reverse order, every one even when one throws, and a failed stop is an error exit. */
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { PartsStopError } from '../../gateway/parts.js';
import { running, startTestGateway, tempDir } from '../helpers/env.js';
import { startGatewayProcess, stopGatewayProcess, writeGatewayConfig } from '../helpers/process.js';

const preload = new URL('../fixtures/preload/retention-stop-throws.mjs', import.meta.url).pathname;

/** Resolves with the connect error code, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('gateway lifecycle', () => {
  it('closes the broker and the store when other parts throw while stopping, and names them', async () => {
    const tmp = tempDir();
    onTestFinished(tmp.cleanup);
    const { gw, lines } = await startTestGateway(join(tmp.dir, 'data'), [], { api: { enabled: true, port: 0 } });
    const port = gw.broker?.port ?? 0;
    expect(await tryConnect(port)).toBe('connected');
    vi.spyOn(gw.retention, 'stop').mockImplementation(() => {
      throw new Error('retention timer is stuck');
    });
    vi.spyOn(gw.actuation, 'stop').mockImplementation(() => {
      throw new Error('actuation is stuck');
    });
    const closeStore = vi.spyOn(gw.store, 'close');
    const closeApi = vi.spyOn(running(gw, 'api'), 'close');
    const err = await gw.stop().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartsStopError);
    expect((err as PartsStopError).parts).toEqual(['actuation', 'retention']);
    expect(closeApi).toHaveBeenCalledOnce();
    expect(closeStore).toHaveBeenCalledOnce();
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
    expect(lines.filter((l) => l.msg === 'stopping retention failed' || l.msg === 'stopping actuation failed')).toEqual(
      [
        expect.objectContaining({ part: 'actuation', err: expect.objectContaining({ message: 'actuation is stuck' }) }),
        expect.objectContaining({ part: 'retention' }),
      ],
    );
    expect(lines.at(-1)?.msg).toBe('gateway stopped');
  });

  it('`gateway start` exits 1 when a part fails to stop, after stopping every other part', async () => {
    const tmp = tempDir();
    onTestFinished(tmp.cleanup);
    const config = writeGatewayConfig(tmp.dir, join(tmp.dir, 'data'), [], ['log: { level: debug }']);
    // The injected fault patches the TypeScript module, so the child runs from source (bin/launch.js).
    const g = await startGatewayProcess(config, ['--import', preload], { OUTPOST_FROM_SOURCE: '1' });
    expect(await stopGatewayProcess(g)).toBe(1);
    const stopped = g.logs.filter((l) => l.part !== undefined).map((l) => `${String(l.part)}: ${String(l.msg)}`);
    // Reverse start order; the store, the broker and everything after the failing part still stop.
    expect(stopped).toEqual([
      'status reports: status reports stopped',
      'firmware rollouts: firmware rollouts stopped',
      'firmware routes: firmware routes stopped',
      'firmware inbox: firmware inbox stopped',
      'firmware store: firmware store stopped',
      'settings: settings stopped',
      'actuation: actuation stopped',
      'mqtt broker: mqtt broker stopped',
      'storage budget: storage budget stopped',
      'export: export stopped',
      'retention: stopping retention failed',
      'ingest: ingest stopped',
      'log journal: log journal stopped',
      'policies: policies stopped',
      'store: store stopped',
      'verify pool: verify pool stopped', // started first (its worker boots while the store opens)
      'data directory lock: data directory lock stopped',
    ]);
    expect(g.logs.find((l) => l.msg === 'stopped with errors in retention')).toMatchObject({ parts: ['retention'] });
  });
});
