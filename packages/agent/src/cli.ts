#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Agent } from './agent.js';
import { HELP, loadConfig } from './config.js';
import { type AgentErrorCode, ConfigError, report } from './errors.js';
import { ConsoleSink } from './sinks/console.js';
import type { Sink } from './sinks/sink.js';
import { startLine } from './start-line.js';
import { DataDirError } from './store/lock.js';

// A closed stdout (a pager quit, a log pipe gone) must not take the agent down.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
// an error nothing expected: one coded line with where it came from, then exit 1 (as Node would, but greppable)
process.on('uncaughtException', (err) => {
  report('EKG_AGENT_ERR_CRASH', `stopped by an unexpected error: ${err.stack ?? String(err)}`.replace(/\n\s*/g, ' | '));
  process.exit(1);
});

async function main(): Promise<void> {
  if (process.argv[2] === '--version' || process.argv[2] === '-v' || process.argv[2] === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
    process.stdout.write(`${pkg.name} ${pkg.version}\n`);
    return;
  }
  if (process.argv[2] === 'run') {
    const { run } = await import('./run.js');
    process.exit(await run(process.argv.slice(3)));
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      report(err.code, err.message);
      process.exit(2);
    }
    throw err;
  }
  if (config === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const sinks: Sink[] = [];
  if (config.console !== 'off') sinks.push(new ConsoleSink(config.console === 'verbose'));
  const agent = new Agent(config, sinks);
  try {
    await agent.start();
  } catch (err) {
    // a missing secret or an unusable exporter setting is the configuration's fault (exit 2), not the machine's
    if (err instanceof ConfigError) report(err.code, err.message);
    else report(startCode(err), `cannot start: ${(err as Error).message}`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
  const stop = (sig: string) => {
    process.stdout.write(`ekg-agent: ${sig}: flushing the open window\n`);
    agent.stop().then(
      () => process.exit(0),
      (err: Error) => {
        report('EKG_AGENT_ERR_STOP', `${sig}: stopping failed (${err.message}); the open window may not have reached every sink`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // the start line last: whoever waits for it (a supervisor, a test) may send SIGTERM at once, which must find the handler
  process.stdout.write(`${startLine(agent)}\n`);
}

/** Why the agent could not start, as its code: an address it cannot bind, a data directory it cannot take, or else. */
function startCode(err: unknown): AgentErrorCode {
  if (err instanceof DataDirError) return 'EKG_AGENT_ERR_DATA_DIR';
  const syscall = (err as NodeJS.ErrnoException).syscall;
  if (syscall === 'listen' || syscall === 'bind') return 'EKG_AGENT_ERR_LISTEN';
  return 'EKG_AGENT_ERR_START';
}

main().catch((err: Error) => process.emit('uncaughtException', err));
