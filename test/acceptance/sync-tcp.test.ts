/** The sync acceptance suite over direct TCP sibling links (Noise XX encrypted, the default). */
import { running } from '../helpers/env.js';
import { syncAcceptance } from './sync.suite.js';

syncAcceptance({
  link: 'TCP (Noise)',
  hubPort: (hub) => running(hub, 'siblings').port,
  url: (port) => `tcp://127.0.0.1:${port}`,
});
