/** The sync acceptance suite's adapter for MQTT through the hub gateway's embedded aedes broker. */
import { running } from '../helpers/env.js';
import type { SyncAdapter } from './sync.suite.js';

export const embeddedBrokerSync: SyncAdapter = {
  link: "MQTT (the hub's embedded broker)",
  hubPort: (hub) => running(hub, 'broker').port,
  url: (port) => `mqtt://127.0.0.1:${port}`,
};
