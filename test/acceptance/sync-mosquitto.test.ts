/** The sync acceptance suite over MQTT through a real Mosquitto: the hub answers there (`sync.brokers`). */
import { startMosquitto } from '../helpers/mosquitto.js';
import { needs } from '../helpers/system-tools.js';
import { syncAcceptance } from './sync.suite.js';

let brokerPort = 0;
syncAcceptance({
  link: 'MQTT (Mosquitto)',
  options: needs('mosquitto'),
  async prepare() {
    const { port, url } = await startMosquitto();
    brokerPort = port;
    return { brokers: [url] };
  },
  hubPort: () => brokerPort,
  url: (port) => `mqtt://127.0.0.1:${port}`,
});
