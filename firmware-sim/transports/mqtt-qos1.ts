/**
 * QoS 1 publishes of device frames as whole MQTT PUBLISH packets (MQTT 3.1.1 §3.3) written on
 * an mqtt.js client's socket, their PUBACKs matched here. mqtt.js's own publish deep-copies
 * every packet, payload included, into its outgoing store (for its own resend on reconnect,
 * which the device links throw away: the device's buffer resends, transports/mqtt.ts), writes
 * it in six pieces and finds the PUBACK's callback in a dictionary: together a fifth of a
 * frame's CPU in a simulated fleet (bench/README.md, "firmware-sim").
 *
 * mqtt.js keeps the rest of the connection: CONNECT, SUBSCRIBE, keepalive and reading every
 * packet; it hands each one to 'packetreceive' first and ignores a PUBACK for an id it did not
 * send. Ids come from the client's own allocator (`messageIdProvider`), so they never clash with
 * its subscribes or its own publishes. The semantics are a QoS 1 publish's: `done()` on the
 * PUBACK, or with an error when the connection closes first (never both, never twice).
 */
import type { MqttClient } from 'mqtt';

type Done = (err?: Error) => void;

const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A topic's bytes with their 2-byte length (MQTT 3.1.1 §1.5.3), encoded once per device. */
export function encodeTopic(topic: string): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const out = Buffer.allocUnsafe(2 + t.length);
  out.writeUInt16BE(t.length, 0);
  t.copy(out, 2);
  return out;
}

export class Qos1Publisher {
  private readonly waiting = new Map<number, Done>();

  constructor(private readonly client: MqttClient) {
    client.on('packetreceive', (p) => {
      if (p.cmd !== 'puback' || p.messageId === undefined) return;
      const done = this.waiting.get(p.messageId);
      if (done === undefined) return;
      this.waiting.delete(p.messageId);
      client.messageIdProvider.deallocate(p.messageId);
      // MQTT 5 reason codes: below 0x80 is success (0x10: no matching subscribers).
      const rc = p.reasonCode;
      done(rc !== undefined && rc >= 0x80 ? new Error(`PUBACK reason code ${rc}`) : undefined);
    });
    client.on('close', () => {
      if (this.waiting.size === 0) return;
      const left = [...this.waiting];
      this.waiting.clear();
      const closed = new Error('connection closed before the PUBACK');
      for (const [id, done] of left) {
        client.messageIdProvider.deallocate(id);
        done(closed);
      }
    });
  }

  get inFlight(): number {
    return this.waiting.size;
  }

  /** Runs `fn` with the socket corked: the packets it publishes leave in one write. */
  corked(fn: () => void): void {
    const stream = this.client.stream;
    stream?.cork();
    try {
      fn();
    } finally {
      stream?.uncork();
    }
  }

  /** Publishes `payload` at QoS 1 on the topic `encodeTopic` made; `done` as above. */
  publish(topic: Buffer, payload: Uint8Array, done: Done): void {
    const client = this.client;
    const stream = client.stream;
    // MQTT 5 would need a properties length in the packet: such a client publishes through mqtt.js.
    if (client.options.protocolVersion === 5) {
      client.publish(topic.toString('utf8', 2), toBuffer(payload), { qos: 1 }, (err) => done(err ?? undefined));
      return;
    }
    if (!client.connected || !stream?.writable) {
      done(new Error('not connected'));
      return;
    }
    const id = client.messageIdProvider.allocate();
    if (id === null || this.waiting.has(id)) {
      done(new Error('no MQTT message id free'));
      return;
    }
    const rest = topic.length + 2 + payload.length; // remaining length: topic, id, payload
    let vbi = 1;
    for (let r = rest >> 7; r > 0; r >>= 7) vbi++;
    const pkt = Buffer.allocUnsafe(1 + vbi + rest);
    pkt[0] = 0x32; // PUBLISH, QoS 1, no DUP (a resend after a reconnect is a new publish here), no RETAIN
    let off = 1;
    for (let r = rest; ; ) {
      const b = r & 0x7f;
      r >>= 7;
      pkt[off++] = r > 0 ? b | 0x80 : b;
      if (r === 0) break;
    }
    off += topic.copy(pkt, off);
    pkt[off++] = id >> 8;
    pkt[off++] = id & 0xff;
    pkt.set(payload, off);
    this.waiting.set(id, done);
    stream.write(pkt);
  }
}
