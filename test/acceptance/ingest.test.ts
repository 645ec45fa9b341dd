/**
 * The ingest acceptance suite (ingest.suite.ts) over every device transport, one adapter each.
 * A new transport: an adapter module beside these, and a line here (test/README.md).
 */
import { bleIngest } from './ingest-ble.js';
import { mqttIngest } from './ingest-mqtt.js';
import { serialIngest } from './ingest-serial.js';
import { ingestAcceptance } from './ingest.suite.js';

for (const adapter of [mqttIngest, serialIngest, bleIngest]) ingestAcceptance(adapter);
