#!/usr/bin/env node
// Runs the TypeScript sources through tsx so a checkout needs no build step and never runs stale output.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
