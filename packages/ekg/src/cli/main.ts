import { readFileSync } from 'node:fs';
import { runCheck } from './check.js';
import { runJson } from './json.js';

const HELP = `Usage: ekg <command> [options]

  ekg json -url URL [...]   flatten a JSON document (an ekg /stats) into metrics, as mackerel-plugin-json does
  ekg check URL [...]       probe an ekg endpoint for Kubernetes exec probes and Mackerel checks

ekg <command> -help for each command's options; ekg --version prints the version.
`;

process.stdout.on('error', () => {});
const [cmd, ...rest] = process.argv.slice(2);
if (cmd === '--version' || cmd === '-v' || cmd === 'version') {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  process.stdout.write(`${pkg.name} ${pkg.version}\n`);
  process.exit(0);
}
const run = cmd === 'json' ? runJson : cmd === 'check' ? runCheck : undefined;
if (!run) {
  if (cmd && cmd !== '-h' && cmd !== '--help' && cmd !== 'help') process.stderr.write(`ekg: unknown command "${cmd}"\n`);
  process.stdout.write(HELP);
  process.exitCode = cmd && cmd !== '-h' && cmd !== '--help' && cmd !== 'help' ? 3 : 0;
} else {
  run(rest).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      process.stderr.write(`ekg ${cmd}: ${err.message}\n`);
      process.exitCode = 3;
    },
  );
}
