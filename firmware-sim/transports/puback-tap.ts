/**
 * Takes the PUBACKs of our own QoS 1 publishes (mqtt-qos1.ts) out of an MQTT 3.1.1 byte stream
 * before mqtt.js reads it, and passes every other byte on, in order. Through mqtt.js each PUBACK
 * is a parsed packet object, a handler call, an event and a `process.nextTick` (one per packet of
 * a read): the second largest cost of a frame after its signature when every device has its own
 * connection (bench/README.md, "firmware-sim"). Here it is four bytes looked at in the read.
 *
 * Only packet boundaries are tracked (MQTT 3.1.1 §2.2: a type byte, the remaining length in 1–4
 * bytes of 7 bits): a PUBACK is `0x40 0x02` and a 2-byte message id, and `claim(id)` says whether
 * it was ours (else it is passed on: mqtt.js's own publishes). A packet whose head or PUBACK is cut
 * by a read waits (at most 5 bytes) for the next; any other packet's body streams through as it
 * comes. A malformed length turns the tap off: from there on everything is passed on, and
 * mqtt.js's parser meets the error as it would have.
 */

export class PubackTap {
  /** The start of a packet cut by the end of a read (its head, or a whole PUBACK's first bytes). */
  private carry: Buffer | undefined;
  /** Bytes of a passed-on packet's body still to come. */
  private skip = 0;
  private broken = false;

  constructor(
    /** Handles the PUBACK of message `id` and returns true if it was ours; false passes it on. */
    private readonly claim: (id: number) => boolean,
    /** Everything that is not a claimed PUBACK, in order (views of the read: copy what is kept). */
    private readonly pass: (bytes: Buffer) => void,
  ) {}

  /** One read of the stream: its first `length` bytes (a reused read buffer is longer). */
  feed(input: Buffer, length: number = input.length): void {
    if (this.broken) return this.pass(length === input.length ? input : input.subarray(0, length));
    let chunk = input;
    let n = length;
    if (this.carry !== undefined) {
      chunk = Buffer.concat([this.carry, input.subarray(0, length)]);
      n = chunk.length;
      this.carry = undefined;
    }
    let i = Math.min(this.skip, n);
    this.skip -= i;
    let from = 0; // the first byte not passed on yet
    while (i < n) {
      const type = chunk[i]!;
      let len = 0;
      let mul = 1;
      let j = i + 1;
      let complete = false;
      while (j < n && j < i + 5) {
        const b = chunk[j++]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (j >= i + 5) {
          // A fifth length byte: not MQTT. mqtt.js gets it all and reports it.
          this.broken = true;
          return this.pass(chunk.subarray(from, n));
        }
        this.hold(chunk, from, i, n);
        return;
      }
      const end = j + len;
      if (type === 0x40 && len === 2) {
        if (end > n) return this.hold(chunk, from, i, n);
        const id = (chunk[j]! << 8) | chunk[j + 1]!;
        if (from < i) this.pass(chunk.subarray(from, i));
        from = i;
        if (this.claim(id)) from = end;
      } else if (end > n) {
        this.skip = end - n;
        break;
      }
      i = end;
    }
    if (from < n) this.pass(chunk.subarray(from, n));
  }

  /** Passes on what came before `at` and keeps the rest (a cut head or PUBACK) for the next read. */
  private hold(chunk: Buffer, from: number, at: number, n: number): void {
    if (from < at) this.pass(chunk.subarray(from, at));
    this.carry = Buffer.from(chunk.subarray(at, n)); // a copy: at most 4 bytes
  }
}
