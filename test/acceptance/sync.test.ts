/**
 * The sync acceptance suite (sync.suite.ts) over every sibling link, one adapter each.
 * A new link: an adapter module beside these, and a line here (test/README.md).
 */
import { embeddedBrokerSync } from './sync-mqtt-embedded.js';
import { mosquittoSync } from './sync-mosquitto.js';
import { tcpSync } from './sync-tcp.js';
import { syncAcceptance } from './sync.suite.js';

for (const adapter of [tcpSync, embeddedBrokerSync, mosquittoSync]) syncAcceptance(adapter);
