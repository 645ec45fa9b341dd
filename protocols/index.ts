/** Pure codecs shared by the gateway, rules and firmware-sim. No I/O here. */
export * from './bytes.js';
export * from './cbor.js';
export * from './cobs.js';
export * from './cose.js';
export * from './crc32c.js';
export * from './frame.js';
export * from './ids.js';
export * from './keys.js';
export * from './result.js';
export * from './senml.js';
export * from './serial-framing.js';
export * from './topics.js';
export * from './ble.js';
export * from './block.js';
export * from './block-frame.js';
export * from './sync.js';
export * from './sealed.js';
