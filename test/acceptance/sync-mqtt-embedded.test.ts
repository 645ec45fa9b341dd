/** The sync acceptance suite over MQTT through the hub gateway's embedded aedes broker. */
import { running } from '../helpers/env.js';
import { syncAcceptance } from './sync.suite.js';

syncAcceptance({
  link: "MQTT (the hub's embedded broker)",
  hubPort: (hub) => running(hub, 'broker').port,
  url: (port) => `mqtt://127.0.0.1:${port}`,
});
