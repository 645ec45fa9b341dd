#!/usr/bin/env node
// The gateway CLI: compiled dist/ (rebuilt first when the sources changed; see launch.js).
import { launch } from './launch.js';

// quiet-debug first: the bundle's `import … from 'aedes'` would load mqtt-packet, and make its
// loggers with the real `debug`, before the bundle's own copy of quiet-debug runs.
await launch('gateway/cli', ['gateway/transports/quiet-debug']);
