/**
 * QoS 1 publishes of device frames as whole MQTT PUBLISH packets (MQTT 3.1.1 §3.3) written on
 * an mqtt.js client's socket, their PUBACKs matched here. mqtt.js's own publish deep-copies
 * every packet, payload included, into its outgoing store (for its own resend on reconnect,
 * which the device links throw away: the device's buffer resends, transports/mqtt.ts), writes
 * it in six pieces and finds the PUBACK's callback in a dictionary: together a fifth of a
 * frame's CPU in a simulated fleet (bench/README.md, "firmware-sim").
 *
 * mqtt.js keeps the rest of the connection: CONNECT, SUBSCRIBE, keepalive and reading every
 * other packet. A client made by `connectQos1` has its reads go through a PubackTap
 * (puback-tap.ts) that takes our PUBACKs out before mqtt.js parses them; on any other client
 * they are found in mqtt.js's 'packetreceive' (it ignores a PUBACK for an id it did not send).
 * Ids come from the client's own allocator (`messageIdProvider`), so they never clash with its
 * subscribes or its own publishes. The semantics are a QoS 1 publish's: `done()` on the PUBACK,
 * or with an error when the connection closes first (never both, never twice).
 *
 * Packets are written into 64 KiB slabs shared by every publisher (a Buffer per packet costs
 * more than its bytes); the packets `corked()` publishes are contiguous in one and leave in one
 * socket write.
 */
import { connect as netConnect } from 'node:net';
import mqtt, { type IClientOptions, type IStream, type MqttClient } from 'mqtt';
import { PubackTap } from './puback-tap.js';

/** Runs once per publish: on its PUBACK (no error) or when the connection closes first; `token` as given to publish. */
type Done<T = unknown> = (err: Error | undefined, token: T) => void;

const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A topic's bytes with their 2-byte length (MQTT 3.1.1 §1.5.3), encoded once per device. */
export function encodeTopic(topic: string): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const out = Buffer.allocUnsafe(2 + t.length);
  out.writeUInt16BE(t.length, 0);
  t.copy(out, 2);
  return out;
}

/** Where every tapped plain TCP connection reads (each read is handled before the next one). */
const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);

const SLAB_BYTES = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

/** `mqtt.connect` for a client that publishes through a Qos1Publisher, its PUBACKs tapped from the first connect on. */
export function connectQos1(url: string, options: IClientOptions): { client: MqttClient; publisher: Qos1Publisher } {
  // The tap goes in as each connection's stream is built, so the first connect waits for it.
  const client = mqtt.connect(url, { ...options, manualConnect: true });
  const publisher = new Qos1Publisher(client);
  publisher.tapReads();
  client.options.manualConnect = options.manualConnect; // end() and reconnects as for any client
  client.connect();
  return { client, publisher };
}

/**
 * What waits for a PUBACK, by message id: an array indexed by the id's low bits, doubled when
 * two waiting ids share a place (ids come in sequence, so rarely). A Map here grew and shrank
 * its table with every hub tick's handful of frames in flight: an allocation each time.
 */
class Waiting {
  private ids = new Int32Array(16);
  private dones: (Done | undefined)[] = new Array<Done | undefined>(16).fill(undefined);
  private tokens: unknown[] = new Array<unknown>(16).fill(undefined);
  size = 0;

  /** The slot of `id`, or -1. */
  find(id: number): number {
    const i = id & (this.ids.length - 1);
    return this.ids[i] === id ? i : -1;
  }

  set(id: number, done: Done, token: unknown): void {
    for (;;) {
      const i = id & (this.ids.length - 1);
      if (this.ids[i] === 0 || this.ids[i] === id) {
        if (this.ids[i] === 0) this.size++;
        this.ids[i] = id;
        this.dones[i] = done;
        this.tokens[i] = token;
        return;
      }
      this.grow();
    }
  }

  /** Empties slot `i` (from find) and runs its done. */
  settle(i: number, err: Error | undefined): void {
    const done = this.dones[i]!;
    const token = this.tokens[i];
    this.ids[i] = 0;
    this.dones[i] = undefined;
    this.tokens[i] = undefined;
    this.size--;
    done(err, token);
  }

  /** Removes and returns every entry. */
  drain(): [number, Done, unknown][] {
    const out: [number, Done, unknown][] = [];
    for (let i = 0; i < this.ids.length; i++)
      if (this.ids[i] !== 0) out.push([this.ids[i]!, this.dones[i]!, this.tokens[i]]);
    this.ids.fill(0);
    this.dones.fill(undefined);
    this.tokens.fill(undefined);
    this.size = 0;
    return out;
  }

  private grow(): void {
    const old = this.drain();
    const n = this.ids.length * 2;
    this.ids = new Int32Array(n);
    this.dones = new Array<Done | undefined>(n).fill(undefined);
    this.tokens = new Array<unknown>(n).fill(undefined);
    for (const [id, done, token] of old) this.set(id, done, token);
  }
}

export class Qos1Publisher {
  private readonly waiting = new Waiting();
  private batching = false;
  /** The packets of the open batch: [batchStart, batchEnd) of batchSlab; batchStart < 0 when none. */
  private batchSlab = slab;
  private batchStart = -1;
  private batchEnd = 0;

  /** MQTT 5 (publishes through mqtt.js); read once: mqtt.js's options object is in dictionary mode, slow to read a frame. */
  private readonly v5: boolean;

  constructor(private readonly client: MqttClient) {
    this.v5 = client.options.protocolVersion === 5;
    client.on('packetreceive', (p) => {
      if (p.cmd !== 'puback' || p.messageId === undefined) return;
      // MQTT 5 reason codes: below 0x80 is success (0x10: no matching subscribers).
      const rc = p.reasonCode;
      this.settle(p.messageId, rc !== undefined && rc >= 0x80 ? new Error(`PUBACK reason code ${rc}`) : undefined);
    });
    client.on('close', () => {
      this.batchStart = -1;
      if (this.waiting.size === 0) return;
      const left = this.waiting.drain();
      const closed = new Error('connection closed before the PUBACK');
      for (const [id, done, token] of left) {
        client.messageIdProvider.deallocate(id);
        done(closed, token);
      }
    });
  }

  get inFlight(): number {
    return this.waiting.size;
  }

  /**
   * Reads every later connection of the client through a PubackTap: mqtt.js pipes each stream it
   * builds into its parser, and gets here only what the tap passes on. MQTT 5 acks carry reason
   * codes and properties: such a client is left as it is (it publishes through mqtt.js anyway).
   * A plain TCP connection (mqtt:, tcp:) is opened here, as mqtt.js's own builder does, but with
   * node's `onread`: every read lands in one buffer shared by all such connections and goes to
   * the tap from the read callback (no Buffer, stream push and `nextTick` per read: with a
   * connection per device, one read per frame). Other streams (TLS, websockets, a proxy) are
   * built by mqtt.js and read as streams.
   */
  tapReads(): void {
    if (this.v5) return;
    // `streamBuilder` is typed private, but it is how mqtt.js makes each connection's stream.
    const c = this.client as unknown as { streamBuilder: (client: MqttClient) => IStream };
    const build = c.streamBuilder;
    c.streamBuilder = (client) => {
      let dest: NodeJS.WritableStream | undefined;
      let paused = false;
      const settle = (id: number): boolean => this.settle(id, undefined);
      const o = client.options as IClientOptions & { socksProxy?: unknown; path?: string };
      if ((o.protocol === 'mqtt' || o.protocol === 'tcp') && o.socksProxy === undefined && o.servers === undefined) {
        const socket = netConnect({
          port: o.port || 1883,
          host: o.hostname || o.host || 'localhost',
          path: o.path,
          onread: { buffer: readBuffer, callback: (n: number) => (tap.feed(readBuffer, n), !paused) },
        });
        const tap = new PubackTap(settle, (bytes) => {
          // The read buffer is shared: mqtt.js's parser keeps what it is given, so it gets a copy.
          if (dest && !dest.write(Buffer.from(bytes)) && !paused) {
            paused = true; // the read callback says so; net resumes an `onread` socket in resume()
            dest.once('drain', () => {
              paused = false;
              socket.resume();
            });
          }
        });
        socket.pipe = <T extends NodeJS.WritableStream>(d: T): T => ((dest = d), d);
        return socket;
      }
      const stream = build(client);
      const tap = new PubackTap(settle, (bytes) => {
        // pipe()'s backpressure: mqtt.js handles one packet a tick and says when it has room.
        if (dest && !dest.write(bytes)) {
          stream.pause();
          dest.once('drain', () => stream.resume());
        }
      });
      stream.pipe = <T extends NodeJS.WritableStream>(d: T): T => {
        dest = d;
        stream.on('data', (b: Buffer) => tap.feed(b));
        return d;
      };
      return stream;
    };
  }

  /** Runs `fn` with the packets it publishes gathered: they leave in one socket write at its end. */
  corked(fn: () => void): void {
    if (this.batching) return fn();
    this.batching = true;
    try {
      fn();
    } finally {
      this.batching = false;
      this.flush();
    }
  }

  /**
   * Publishes `payload` at QoS 1 on the topic `encodeTopic` made; `done(err, token)` as above. A
   * caller with many publishes passes one `done` and tells them apart by `token` (no closure each).
   */
  publish<T>(topic: Buffer, payload: Uint8Array, done: Done<T>, token?: T): void {
    const client = this.client;
    const stream = client.stream;
    // MQTT 5 would need a properties length in the packet: such a client publishes through mqtt.js.
    if (this.v5) {
      client.publish(topic.toString('utf8', 2), toBuffer(payload), { qos: 1 }, (err) =>
        done(err ?? undefined, token as T),
      );
      return;
    }
    if (!client.connected || !stream?.writable) {
      done(new Error('not connected'), token as T);
      return;
    }
    const id = client.messageIdProvider.allocate();
    if (id === null || this.waiting.find(id) >= 0) {
      done(new Error('no MQTT message id free'), token as T);
      return;
    }
    const rest = topic.length + 2 + payload.length; // remaining length: topic, id, payload
    let vbi = 1;
    for (let r = rest >> 7; r > 0; r >>= 7) vbi++;
    const size = 1 + vbi + rest;
    let out: Buffer;
    let off: number;
    if (size > SLAB_BYTES) {
      this.flush();
      out = Buffer.allocUnsafe(size);
      off = 0;
    } else {
      if (slabUsed + size > SLAB_BYTES) {
        this.flush();
        slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
        slabUsed = 0;
      } else if (this.batchStart >= 0 && (this.batchSlab !== slab || this.batchEnd !== slabUsed)) {
        this.flush(); // another publisher wrote after our batch's last packet: ours is not contiguous any more
      }
      out = slab;
      off = slabUsed;
      slabUsed += size;
    }
    const start = off;
    out[off++] = 0x32; // PUBLISH, QoS 1, no DUP (a resend after a reconnect is a new publish here), no RETAIN
    for (let r = rest; ; ) {
      const b = r & 0x7f;
      r >>= 7;
      out[off++] = r > 0 ? b | 0x80 : b;
      if (r === 0) break;
    }
    out.set(topic, off); // not topic.copy: Buffer's copy is a JS wrapper around the same set
    off += topic.length;
    out[off++] = id >> 8;
    out[off++] = id & 0xff;
    out.set(payload, off);
    this.waiting.set(id, done as Done, token);
    if (out !== slab) stream.write(out);
    else if (!this.batching) stream.write(slab.subarray(start, start + size));
    else {
      if (this.batchStart < 0) {
        this.batchSlab = slab;
        this.batchStart = start;
      }
      this.batchEnd = start + size;
    }
  }

  /** Writes out the open batch. */
  private flush(): void {
    if (this.batchStart < 0) return;
    const stream = this.client.stream;
    // A stream destroyed in the batch: its close fails what waits.
    if (stream && !stream.destroyed) stream.write(this.batchSlab.subarray(this.batchStart, this.batchEnd));
    this.batchStart = -1;
  }

  /** Runs the `done` of message `id` if it waits here; false if it does not. */
  private settle(id: number, err: Error | undefined): boolean {
    const i = this.waiting.find(id);
    if (i < 0) return false;
    this.client.messageIdProvider.deallocate(id);
    this.waiting.settle(i, err);
    return true;
  }
}
