import { runCheck } from './check.js';
import { runJson } from './json.js';

const HELP = `Usage: ekg <command> [options]

  ekg json -url URL [...]   flatten a JSON document (an ekg /stats) into metrics, as mackerel-plugin-json does
  ekg check URL [...]       probe an ekg endpoint for Kubernetes exec probes and Mackerel checks

ekg <command> -help for each command's options.
`;

process.stdout.on('error', () => {});
const [cmd, ...rest] = process.argv.slice(2);
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
