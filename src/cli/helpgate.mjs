#!/usr/bin/env node
// The `helpgate` command. helpgate is written in TypeScript and runs through tsx, so no
// build step stands between a checkout and a running helpdesk.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
