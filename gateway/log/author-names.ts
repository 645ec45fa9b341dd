/**
 * Names of the gateways that heard frames (a frame row's `heardBy` is its block's author key):
 * this gateway's id and its sync peers' ids from the config; any other author by its did:key.
 */
import { fromHex, parsePublicKey, publicKeyToDidKey, toHex } from '../../protocols/index.js';

export interface AuthorNames {
  /** The gateway id of an author key (hex), or its did:key when the config does not name it. */
  name(author: string): string;
  /** An author key (hex) from a gateway id, a did:key or 64 hex digits; undefined if none matches. */
  resolve(text: string): string | undefined;
}

export function authorNames(
  self: { readonly id: string; readonly publicKey: Uint8Array },
  peers: readonly { readonly id: string; readonly publicKey: string }[],
): AuthorNames {
  const byKey = new Map<string, string>([[toHex(self.publicKey), self.id]]);
  for (const p of peers) {
    const k = parsePublicKey(p.publicKey);
    if (k.ok) byKey.set(toHex(k.value), p.id);
  }
  const byName = new Map([...byKey].map(([k, n]) => [n, k]));
  const didKeys = new Map<string, string>();
  return {
    name: (author) => {
      let n = byKey.get(author) ?? didKeys.get(author);
      if (n === undefined) {
        // A sibling's did:key (base58) is a few µs: every row of it would pay that again.
        n = publicKeyToDidKey(fromHex(author) ?? new Uint8Array(32));
        if (didKeys.size >= 1024) didKeys.clear();
        didKeys.set(author, n);
      }
      return n;
    },
    resolve: (text) => {
      const named = byName.get(text);
      if (named !== undefined) return named;
      const k = parsePublicKey(text);
      return k.ok ? toHex(k.value) : undefined;
    },
  };
}
