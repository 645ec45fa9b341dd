/** The sync acceptance suite's adapter for MQTT through a real Mosquitto: the hub answers there (`sync.brokers`). */
import { startMosquitto } from '../helpers/mosquitto.js';
import { needs } from '../helpers/system-tools.js';
import type { SyncAdapter } from './sync.suite.js';

export const mosquittoSync: SyncAdapter = {
  link: 'MQTT (Mosquitto)',
  options: needs('mosquitto'),
  async prepare() {
    const { port, url } = await startMosquitto();
    return { hubSync: { brokers: [url] }, port };
  },
  hubPort: (_hub, prepared) => prepared.port!,
  url: (port) => `mqtt://127.0.0.1:${port}`,
};
