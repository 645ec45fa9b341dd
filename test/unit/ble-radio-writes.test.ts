/**
 * The gateway's binary RX writes to the simulated radio (gateway/transports/ble-radio-writes.ts):
 * off until the radio says it takes them; inside a batch (nested or not) the writes to one
 * characteristic leave as one message when the outermost batch ends; a write to another
 * characteristic, or a flush, sends what is held first, so nothing is reordered.
 */
import { describe, expect, it } from 'vitest';
import { RadioWriteBatcher } from '../../gateway/transports/ble-radio-writes.js';
import { decodeRadioWrites } from '../../protocols/radio-writes.js';

const rig = () => {
  const sent: Buffer[] = [];
  const w = new RadioWriteBatcher((m) => sent.push(m));
  const decoded = () =>
    sent.map((m) => decodeRadioWrites(m)!).map((d) => [d.characteristicUuid, d.payloads.map((p) => [...p])]);
  return { w, sent, decoded };
};

describe('RadioWriteBatcher', () => {
  it('declines until enabled; then, outside a batch, each run leaves at once cut to its ATT size', () => {
    const { w, decoded } = rig();
    expect(w.writeRun('p', 's', 'c', Uint8Array.of(1, 2, 3), 2, true)).toBe(false);
    w.enabled = true;
    expect(w.writeRun('p', 's', 'c', Uint8Array.of(1, 2, 3), 2, true)).toBe(true);
    expect(decoded()).toEqual([['c', [[1, 2], [3]]]]);
    expect(w.writeRun('p', 's', 'c', new Uint8Array(0), 2, true)).toBe(false);
  });

  it('nested batches send one message when the outermost ends; another characteristic flushes first', () => {
    const { w, sent, decoded } = rig();
    w.enabled = true;
    w.batch(() => {
      w.writeRun('p', 's', 'c', Uint8Array.of(1, 2), 1, true);
      w.batch(() => w.writeRun('p', 's', 'c', Uint8Array.of(3), 1, true));
      expect(sent).toHaveLength(0);
      w.writeRun('p', 's', 'd', Uint8Array.of(4), 1, true);
      expect(sent).toHaveLength(1);
      w.writeRun('p', 's', 'd', Uint8Array.of(5), 1, true);
    });
    expect(decoded()).toEqual([
      ['c', [[1], [2], [3]]],
      ['d', [[4], [5]]],
    ]);
  });

  it('a flush inside a batch (another command going out) sends what is held before it', () => {
    const { w, sent } = rig();
    w.enabled = true;
    w.batch(() => {
      w.writeRun('p', 's', 'c', Uint8Array.of(1), 1, true);
      w.flush();
      expect(sent).toHaveLength(1);
      w.flush();
      expect(sent).toHaveLength(1);
    });
    expect(sent).toHaveLength(1);
  });
});
