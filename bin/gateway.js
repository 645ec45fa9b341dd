#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader (no build step on a Pi).
import { register } from 'tsx/esm/api';

register();
await import('../gateway/cli.ts');
