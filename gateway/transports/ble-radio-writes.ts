/**
 * RX writes to a radio that takes them in binary (protocols/radio-writes.ts: firmware-sim's
 * simulated radio announces it with `{type: 'features', writes: 'binary'}`), gathered while a
 * batch is open (ble-noble.ts: a firmware window) and sent as one message for each run of
 * writes to one characteristic. A frame goes in whole with its ATT payload size (`writeRun`)
 * and is cut into payloads as the message is written, not first into a view and a noble call
 * per payload; the radio still hands the peripheral one ATT write per payload.
 */
import { encodeRadioWrites, type RadioWritesTarget } from '../../protocols/radio-writes.js';

export class RadioWriteBatcher {
  /** Set once the radio says it takes binary writes. */
  enabled = false;
  private target: RadioWritesTarget | undefined;
  private readonly runs: Uint8Array[] = [];
  private readonly atts: number[] = [];
  private depth = 0;

  constructor(private readonly send: (message: Buffer) => void) {}

  /**
   * Takes `bytes` as ATT writes of at most `att` bytes each; false when binary writes are off
   * (the caller writes them its own way).
   */
  writeRun(
    peripheralUuid: string,
    serviceUuid: string,
    characteristicUuid: string,
    bytes: Uint8Array,
    att: number,
    withoutResponse: boolean,
  ): boolean {
    if (!this.enabled || bytes.length === 0 || att < 1 || att > 0xffff) return false;
    const t = this.target;
    if (
      t &&
      (t.peripheralUuid !== peripheralUuid ||
        t.serviceUuid !== serviceUuid ||
        t.characteristicUuid !== characteristicUuid ||
        t.withoutResponse !== withoutResponse)
    )
      this.flush();
    this.target ??= { peripheralUuid, serviceUuid, characteristicUuid, withoutResponse };
    this.runs.push(bytes);
    this.atts.push(att);
    if (this.depth === 0) this.flush();
    return true;
  }

  /** Runs `fn` with its writes held until it returns (batches nest: the outermost sends). */
  batch(fn: () => void): void {
    this.depth++;
    try {
      fn();
    } finally {
      if (--this.depth === 0) this.flush();
    }
  }

  /** Sends the writes held, if any (before any other command, so nothing overtakes them). */
  flush(): void {
    const t = this.target;
    if (!t) return;
    const message = encodeRadioWrites(t, this.runs, this.atts);
    this.target = undefined;
    this.runs.length = 0;
    this.atts.length = 0;
    this.send(message);
  }
}
