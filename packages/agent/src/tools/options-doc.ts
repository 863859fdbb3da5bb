// Writes the option table into docs/agent-config.md, between its markers: `npm run docs`.
import { readFileSync, writeFileSync } from 'node:fs';
import { docWithTable } from '../options.js';

const file = new URL('../../../../docs/agent-config.md', import.meta.url);
writeFileSync(file, docWithTable(readFileSync(file, 'utf8')));
