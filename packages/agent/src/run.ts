import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { herokuInterval } from 'ekg-vitals';
import { ConfigError, loadConfig } from './config.js';
import { type AgentErrorCode, notice, report } from './errors.js';

/**
 * `ekg-agent run [agent options] -- <command…>`: the Heroku `.profile.d` pattern in one command.
 * Starts the agent (and starts it again, with backoff, if it dies), starts the app with
 * `NODE_OPTIONS` extended by `--import ekg-vitals/register` and `EKG_STATSD` pointing at the agent,
 * forwards SIGTERM and SIGINT to the app, drains the agent once the app has exited, and exits with
 * the app's code.
 */
export const RUN_HELP = `Usage: ekg-agent run [agent options] [--kill-after DUR] -- <command> [args…]

Starts ekg-agent, then the command with NODE_OPTIONS="--import ekg-vitals/register" and EKG_STATSD set to the
agent, so a Node app reports with no code change. With HEROKU_METRICS_URL set, only the agent posts there:
the app reports to the agent (its HEROKU_METRICS_URL is unset). SIGTERM and SIGINT go to the app; if it has not exited
--kill-after (default 10s) later, it is killed. When the app exits, the agent flushes its open window and
stops, and ekg-agent run exits with the app's code. An agent that dies is started again, with backoff.
`;

const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));
/**
 * The agent with the bin's memory settings (docs/agent-store.md#memory), each unless the user set it, started as this
 * Node directly: through the sh launcher, a SIGKILLed agent was not seen to exit in 2 of 5 loaded test runs (the
 * restart test), a cause not found yet. Windows: Node's defaults, as the bin there.
 */
const SEMI = /--max.semi.space.size/.test(process.env.NODE_OPTIONS ?? '') ? [] : ['--max-semi-space-size=2'];
const AGENT = process.platform === 'win32' ? [process.execPath, CLI] : [process.execPath, ...SEMI, CLI];
function memoryEnv(env: NodeJS.ProcessEnv): void {
  if (process.platform === 'win32') return;
  if (env.MALLOC_MMAP_THRESHOLD_ !== undefined || (env.GLIBC_TUNABLES ?? '').includes('glibc.malloc.mmap_threshold')) return;
  // the agent's environment only: the app is started with run's own
  env.MALLOC_MMAP_THRESHOLD_ = '131072';
}
const REGISTER = import.meta.resolve('ekg-vitals/register');

const WHO = 'ekg-agent run';
const log = (s: string) => notice(s, WHO);
const fail = (code: AgentErrorCode, s: string) => report(code, s, WHO);

export async function run(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  if (dash === -1 || dash === argv.length - 1) {
    fail('EKG_AGENT_ERR_RUN_COMMAND', 'no command: ekg-agent run [agent options] -- <command> [args…]');
    return 2;
  }
  const command = argv.slice(dash + 1);
  let agentArgs = argv.slice(0, dash);
  let killAfter = 10_000;
  const k = agentArgs.findIndex((a) => a === '--kill-after' || a.startsWith('--kill-after='));
  if (k !== -1) {
    const a = agentArgs[k] as string;
    const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : agentArgs[k + 1];
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v ?? '');
    if (!m) {
      fail('EKG_AGENT_ERR_BAD_OPTION', `--kill-after: "${v ?? ''}" is not a duration like 10s`);
      return 2;
    }
    killAfter = Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 }[m[2] ?? 's'] as number);
    agentArgs = agentArgs.filter((_, i) => i !== k && (a.includes('=') || i !== k + 1));
  }
  // refuse bad agent options now, with the agent's own message
  let statsd = '127.0.0.1:0';
  let udpOnly = false;
  /** the agent's post period when it posts to HEROKU_METRICS_URL (then the app must not) */
  let agentPostsHeroku: number | undefined;
  const herokuUrl = process.env.HEROKU_METRICS_URL;
  try {
    const c = loadConfig(agentArgs);
    if (c === 'help') return 0;
    const ex = herokuUrl ? c.exporters.find((e) => e.type === 'heroku' && e.url === herokuUrl) : undefined;
    if (ex?.type === 'heroku') agentPostsHeroku = ex.period ?? herokuInterval().ms;
    if (c.statsdUdp) statsd = `${c.statsdUdp.host}:${c.statsdUdp.port}`;
    // Heroku mode (or udp://): the agent keeps to UDP, the web app has the TCP port
    if (c.statsdUdp && !c.statsdTcp) udpOnly = true;
  } catch (err) {
    if (err instanceof ConfigError) {
      fail(err.code, err.message);
      return 2;
    }
    throw err;
  }

  let agent: ChildProcess | undefined;
  let stopping = false;
  let attempt = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  /** the StatsD port the agent took first: a restarted agent takes it again, so the app's EKG_STATSD holds */
  let port = 0;
  const agentEnv = { ...process.env };
  memoryEnv(agentEnv);

  const startAgent = (): Promise<number> =>
    new Promise((resolve) => {
      const host = statsd.slice(0, statsd.lastIndexOf(':'));
      const args = [
        ...without(agentArgs, '--statsd'),
        '--statsd',
        `${udpOnly ? 'udp://' : ''}${host.includes(':') ? `[${host}]` : host}:${port || statsd.slice(statsd.lastIndexOf(':') + 1)}`,
      ];
      const p = spawn(AGENT[0] as string, [...AGENT.slice(1), ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: agentEnv });
      agent = p;
      let out = '';
      let started = false;
      p.stdout?.on('data', (d: Buffer) => {
        process.stdout.write(d);
        if (started) return;
        out += d;
        const m = /statsd udp(?:\+tcp)? [^:]+:(\d+)/.exec(out);
        if (m) {
          started = true;
          attempt = 0;
          log(`agent started (pid ${p.pid}), StatsD on udp://${host}:${m[1]}`);
          resolve(Number(m[1]));
        }
      });
      p.once('exit', (code, signal) => {
        if (!started) resolve(0);
        if (stopping) return;
        // the app goes on; the agent comes back, with backoff (0.5 s doubling to 30 s)
        const delay = Math.min(30_000, 500 * 2 ** attempt++);
        fail('EKG_AGENT_ERR_RUN_AGENT', `agent exited (${signal ?? code}); starting it again in ${Math.round(delay / 100) / 10} s`);
        restartTimer = setTimeout(() => void startAgent(), delay);
      });
    });

  port = await startAgent();
  const env = { ...process.env };
  if (!port) {
    fail('EKG_AGENT_ERR_RUN_AGENT', 'the agent did not start; the app runs without it');
    if (agentPostsHeroku !== undefined) {
      // the app posts to HEROKU_METRICS_URL itself; an agent started again later must not post too
      agentPostsHeroku = undefined;
      delete agentEnv.HEROKU_METRICS_URL;
    }
  }
  env.NODE_OPTIONS = `${env.NODE_OPTIONS ? `${env.NODE_OPTIONS} ` : ''}--import ${REGISTER}`;
  if (port && !env.EKG_STATSD) env.EKG_STATSD = `udp://${statsd.slice(0, statsd.lastIndexOf(':'))}:${port}`;
  // One poster to HEROKU_METRICS_URL, never two (the same GC counted twice): the agent, when it posts
  // there; the app's reporter then sends to the agent, in windows as long as the agent's posts.
  if (herokuUrl) {
    if (agentPostsHeroku !== undefined) {
      delete env.HEROKU_METRICS_URL;
      if (env.EKG_PUSH_URL === herokuUrl) delete env.EKG_PUSH_URL;
      env.EKG_INTERVAL ??= `${agentPostsHeroku}ms`;
      log(`HEROKU_METRICS_URL: the agent posts, every ${agentPostsHeroku / 1000} s; the app reports to the agent over StatsD`);
    } else log('HEROKU_METRICS_URL: the app posts (its ekg reporter); the agent does not post there');
  }
  const app = spawn(command[0] as string, command.slice(1), { stdio: 'inherit', env });
  let killTimer: NodeJS.Timeout | undefined;
  const forward = (sig: NodeJS.Signals) => {
    if (app.exitCode !== null || app.signalCode !== null) return;
    app.kill(sig);
    killTimer ??= setTimeout(() => {
      fail('EKG_AGENT_ERR_RUN_KILLED', `the app has not exited ${killAfter / 1000} s after ${sig}: killing it`);
      app.kill('SIGKILL');
    }, killAfter);
  };
  process.on('SIGTERM', () => forward('SIGTERM'));
  process.on('SIGINT', () => forward('SIGINT'));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    app.once('error', (err) => {
      fail('EKG_AGENT_ERR_RUN_COMMAND', `cannot start ${command[0]}: ${err.message}`);
      resolve([127, null]);
    });
    app.once('exit', (c, s) => resolve([c, s]));
  });
  clearTimeout(killTimer);
  // drain: the agent flushes its open window to every sink, then stops
  stopping = true;
  clearTimeout(restartTimer);
  const a = agent;
  if (a && a.exitCode === null && a.signalCode === null) {
    const done = new Promise((r) => a.once('exit', r));
    a.kill('SIGTERM');
    const t = setTimeout(() => a.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(t);
  }
  return code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 1);
}

/** `args` without `flag` (as `--flag value` or `--flag=value`). */
function without(args: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === flag) i++;
    else if (!a.startsWith(`${flag}=`)) out.push(a);
  }
  return out;
}
