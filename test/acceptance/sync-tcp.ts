/** The sync acceptance suite's adapter for direct TCP sibling links (Noise XX encrypted, the default). */
import { running } from '../helpers/env.js';
import type { SyncAdapter } from './sync.suite.js';

export const tcpSync: SyncAdapter = {
  link: 'TCP (Noise)',
  hubPort: (hub) => running(hub, 'siblings').port,
  url: (port) => `tcp://127.0.0.1:${port}`,
};
