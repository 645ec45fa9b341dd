/** `gateway frame decode [--key KEY] HEX|-`: inspect any COSE_Sign1, ours or not. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  decodeBody,
  decodeCbor,
  decodeSign1,
  fromHex,
  isAcceptedAlg,
  kidToDeviceId,
  parsePublicKey,
  sigStructure,
  toHex,
} from '../../protocols/index.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { Registry } from '../registry.js';
import { Store } from '../store/store.js';
import { commonOptions, resolveConfig, UsageError } from './args.js';
import { cborToJson, toJson } from './json.js';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const frameDecodeHelp = `gateway frame decode [--key KEY] [--data DIR] HEX|-
  Decodes a COSE_Sign1 message (hex, or raw/hex bytes on stdin with "-") and prints it as JSON,
  with whether the signature holds: under --key (64 hex digits or did:key), else under the
  enrolled key of the device its kid names (from the store in --data / the config).`;

function readInput(arg: string): Uint8Array {
  if (arg !== '-') {
    const b = fromHex(arg.replace(/\s+/g, ''));
    if (!b) throw new UsageError('frame must be hex digits (or "-" to read stdin)');
    return b;
  }
  const raw = readFileSync(0);
  const text = raw.toString('latin1').replace(/\s+/g, '');
  return (/^[0-9a-fA-F]+$/.test(text) && fromHex(text)) || new Uint8Array(raw);
}

export function frameDecode(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...commonOptions, key: { type: 'string' } },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(frameDecodeHelp);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one frame argument\n${frameDecodeHelp}`);
  const bytes = readInput(positionals[0]!);
  const msg = decodeSign1(bytes, { requireTag: false, requireKid: false, anyAlg: true });
  if (!msg.ok) {
    console.log(toJson({ ok: false, error: msg.error }, 2));
    return 1;
  }
  const m = msg.value;
  const device = kidToDeviceId(m.kid);
  let key: Uint8Array | undefined;
  let keySource: string | undefined;
  if (values.key !== undefined) {
    const k = parsePublicKey(values.key);
    if (!k.ok) throw new UsageError(`--key: ${k.error.message}`);
    key = k.value;
    keySource = '--key';
  } else if (device !== undefined) {
    const cfg = resolveConfig(values);
    const dir = resolve(cfg.gateway.dataDir);
    if (existsSync(join(dir, 'outpost.lmdb'))) {
      const store = Store.open(dir);
      const active = new Registry(store).active(device);
      if (active) {
        key = active.publicKey;
        keySource = `registry (${device})`;
      }
      void store.close();
    }
  }
  let signature: Record<string, unknown>;
  if (!isAcceptedAlg(m.alg)) signature = { checked: false, reason: `alg ${m.alg} is not EdDSA/Ed25519` };
  else if (!key) signature = { checked: false, reason: 'no key: pass --key or enrol the device' };
  else
    signature = {
      checked: true,
      valid: verifyEd25519(key, sigStructure(m.protectedBytes, m.payload), m.signature),
      key: toHex(key),
      keySource,
    };

  const body = decodeBody(m.payload);
  const generic = body.ok ? undefined : decodeCbor(m.payload, { maxDepth: 16 });
  console.log(
    toJson(
      {
        ok: true,
        tagged: m.tagged,
        alg: m.alg,
        kid: toHex(m.kid),
        ...(device !== undefined && { device }),
        protectedHeader: cborToJson(m.protectedHeader as Map<never, never>),
        unprotectedHeader: cborToJson(m.unprotectedHeader as Map<never, never>),
        payload: toHex(m.payload),
        body: body.ok
          ? body.value
          : generic?.ok
            ? { cbor: cborToJson(generic.value), outpost: body.error }
            : { outpost: body.error },
        signature,
      },
      2,
    ),
  );
  return signature.checked === true && signature.valid === false ? 1 : 0;
}
