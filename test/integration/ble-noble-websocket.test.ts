/**
 * The gateway's noble over the websocket radio protocol (gateway/transports/ble-noble.ts): each
 * ATT write is one websocket message, masked with a zero key, so neither end XORs the payload
 * (bench/README.md: the masking was ~12 % of a BLE firmware transfer's CPU), and a batch of
 * writes leaves in one socket write, each still its own message with the same JSON command.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import {
  batchWrites,
  closeNoble,
  createWebSocketNoble,
  type NobleCentral,
} from '../../gateway/transports/ble-noble.js';

/** Each client frame's header as it came over TCP: the mask bit and key, and the payload length. */
function frames(raw: Buffer): { masked: boolean; key: number[]; payload: string }[] {
  const out: { masked: boolean; key: number[]; payload: string }[] = [];
  let at = 0;
  while (at + 2 <= raw.length) {
    const masked = (raw[at + 1]! & 0x80) !== 0;
    let len = raw[at + 1]! & 0x7f;
    let head = 2;
    if (len === 126) {
      len = raw.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      len = Number(raw.readBigUInt64BE(at + 2));
      head = 10;
    }
    const key = masked ? [...raw.subarray(at + head, at + head + 4)] : [];
    const start = at + head + (masked ? 4 : 0);
    const body = Buffer.from(raw.subarray(start, start + len));
    if (masked) for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
    out.push({ masked, key, payload: body.toString() });
    at = start + len;
  }
  return out;
}

describe('noble over the websocket radio', () => {
  let wss: WebSocketServer | undefined;
  let noble: NobleCentral | undefined;
  afterEach(async () => {
    if (noble) closeNoble(noble);
    await new Promise((r) => wss?.close(r));
  });

  it('writes are one message each, masked with a zero key, and a batch of them arrives whole and in order', async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const raw: Buffer[] = [];
    const messages: string[] = [];
    const connected = new Promise<void>((resolve) =>
      wss!.on('connection', (ws) => {
        (ws as unknown as { _socket: NodeJS.EventEmitter })._socket.on('data', (d: Buffer) => raw.push(d));
        ws.on('message', (m) => messages.push(m.toString()));
        resolve();
      }),
    );
    noble = createWebSocketNoble(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    await connected;
    const client = noble._bindings._ws as unknown as NodeJS.EventEmitter & { readyState: number };
    if (client.readyState !== 1) await once(client, 'open');
    const write = (noble._bindings as unknown as { write(...a: unknown[]): void }).write;
    const payloads = Array.from({ length: 16 }, (_, i) => Buffer.alloc(244, i + 1));
    batchWrites(noble, () => {
      for (const p of payloads) write('aa', 'svc', 'rx', p, true);
    });
    await new Promise<void>((r) => {
      const t = setInterval(() => messages.length >= 16 && (clearInterval(t), r()), 5);
    });
    const seen = frames(Buffer.concat(raw));
    expect(seen).toHaveLength(16);
    for (const f of seen) expect(f).toMatchObject({ masked: true, key: [0, 0, 0, 0] });
    expect(messages.map((m) => JSON.parse(m))).toEqual(
      payloads.map((p) => ({
        action: 'write',
        peripheralUuid: 'aa',
        serviceUuid: 'svc',
        characteristicUuid: 'rx',
        data: p.toString('hex'),
        withoutResponse: true,
      })),
    );
  });
});
