/**
 * The campaign's verdict, read from the stopped gateways' own files: every frame a device
 * saw acked is in every gateway's frames view, no (device, boot, seq) is stored twice in a
 * gateway's local store, `gateway audit verify` is clean and the heads digests are equal.
 */
import { BlockLog } from '../../gateway/log/block-log.js';
import { Store } from '../../gateway/store/store.js';
import { gatewayCli, type GatewayNode } from './cluster.js';
import { frameKey } from './devices.js';

export interface GatewayVerdict {
  readonly id: string;
  /** Distinct frames in its frames view (its own and its siblings'). */
  readonly viewFrames: number;
  /** Frames it ingested itself. */
  readonly localFrames: number;
  readonly duplicates: string[];
  readonly digest: string;
  readonly auditOk: boolean;
  readonly auditSummary: string;
  readonly view: Set<string>;
}

async function inspectGateway(node: GatewayNode, publicKey: Uint8Array): Promise<GatewayVerdict> {
  const store = Store.open(node.dataDir);
  let verdict: Omit<GatewayVerdict, 'auditOk' | 'auditSummary'>;
  try {
    const log = new BlockLog(store, {
      publicKey,
      sign: () => {
        throw new Error('the campaign only reads this log');
      },
    });
    const view = new Set<string>();
    for (const e of log.frameView()) view.add(frameKey(e.device, e.boot, e.seq));
    const seen = new Set<string>();
    const duplicates: string[] = [];
    let localFrames = 0;
    for (const f of log.frames.query({ heardBy: log.author })) {
      localFrames++;
      const k = frameKey(f.device, f.boot, f.seq);
      if (seen.has(k)) duplicates.push(k);
      seen.add(k);
    }
    verdict = { id: node.id, viewFrames: view.size, localFrames, duplicates, digest: log.headsDigest(), view };
  } finally {
    await store.close();
  }
  let auditOk = false;
  let out: string;
  try {
    out = await gatewayCli(['audit', 'verify', '--config', node.configFile]);
    auditOk = out.includes('ok: no faults');
  } catch (e) {
    out = String((e as { stdout?: string }).stdout ?? e);
  }
  return { ...verdict, auditOk, auditSummary: out.trim().split('\n').slice(-3).join(' | ') };
}

export interface Verdict {
  readonly gateways: GatewayVerdict[];
  /** Acked frames missing from a gateway: "device/boot/seq missing on gw-n (acked by gw-m)". */
  readonly lost: string[];
  readonly duplicates: string[];
  readonly digestsEqual: boolean;
}

export async function verdict(
  nodes: readonly GatewayNode[],
  keys: readonly Uint8Array[],
  acked: ReadonlyMap<string, number>,
): Promise<Verdict> {
  const gateways: GatewayVerdict[] = [];
  for (const [i, n] of nodes.entries()) gateways.push(await inspectGateway(n, keys[i]!));
  const lost: string[] = [];
  for (const [k, by] of acked)
    for (const g of gateways) if (!g.view.has(k)) lost.push(`${k} missing on ${g.id} (acked by gw-${by})`);
  return {
    gateways,
    lost,
    duplicates: gateways.flatMap((g) => g.duplicates.map((d) => `${d} twice on ${g.id}`)),
    digestsEqual: new Set(gateways.map((g) => g.digest)).size === 1,
  };
}

/** Polls `gateway log heads --json` on the running gateways until the digests agree. */
export async function waitConverged(nodes: readonly GatewayNode[], timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const digests = await Promise.all(
      nodes
        .map(
          async (n) =>
            (JSON.parse(await gatewayCli(['log', 'heads', '--json', '--config', n.configFile])) as { digest: string })
              .digest,
        )
        .map((p) => p.catch(() => '?')),
    );
    if (!digests.includes('?') && new Set(digests).size === 1) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
