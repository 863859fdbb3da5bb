#!/usr/bin/env node
// Launcher kept outside dist/ so that npm links the bin at install time, before the build has run.
await import('../dist/cli/main.js');
