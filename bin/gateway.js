#!/usr/bin/env node
// The gateway CLI: compiled dist/ (rebuilt first when the sources changed; see launch.js).
import { launch } from './launch.js';

await launch('gateway/cli');
