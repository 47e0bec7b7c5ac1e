#!/usr/bin/env node
// Entry point of the `cairn` CLI: registers tsx (Cairn runs from its TypeScript sources)
// and hands over to oclif, which finds commands in cli/index.ts.
import { register } from 'tsx/esm/api';

register();
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
