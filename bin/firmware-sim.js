#!/usr/bin/env node
// The firmware-sim CLI: compiled dist/ (rebuilt first when the sources changed; see launch.js).
import { launch } from './launch.js';

await launch('firmware-sim/cli');
