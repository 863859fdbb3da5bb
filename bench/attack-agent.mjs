// A fresh ekg-agent for each attack of bench/web-attacks.mjs and bench/ingest-attacks.mjs: free ports, a data
// directory of its own, its output kept, ready once it prints its start line. Works with any build of the agent
// (given its cli.js), so that a build before a fix and one after can be run side by side.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port free for both TCP and UDP (StatsD listens on both). */
export async function freePort() {
  for (;;) {
    const srv = net.createServer();
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const port = srv.address().port;
    const u = dgram.createSocket('udp4');
    const ok = await new Promise((r) => {
      u.once('error', () => r(false));
      u.bind(port, '127.0.0.1', () => r(true));
    });
    u.close();
    await new Promise((r) => srv.close(r));
    if (ok) return port;
  }
}

/** A process's resident set in bytes, from /proc (undefined once it is gone). */
export function rssOf(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  } catch {
    return undefined;
  }
}

let dir;
/** A data directory under one temporary directory, removed by `cleanup()`. */
export function dataDir() {
  dir ??= mkdtempSync(join(tmpdir(), 'ekg-attacks-'));
  return mkdtempSync(join(dir, 'd'));
}
export function cleanup() {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

/**
 * Runs `node <cli> <args>` (under `ulimit -n` when given); resolves once it has printed its start line or has
 * exited. `out()` is stdout and stderr as they came, `stderr()` stderr alone, `exited` the exit code or signal.
 */
export async function spawnAgent(cli, args, o = {}) {
  const env = { ...process.env, ...o.env };
  const p = o.ulimit
    ? spawn('/bin/sh', ['-c', `ulimit -n ${o.ulimit} && exec "$0" "$@"`, process.execPath, cli, ...args], { env })
    : spawn(process.execPath, [cli, ...args], { env });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => {
    out += d;
    err += d;
  });
  const exited = new Promise((r) => p.once('exit', (code, sig) => r(code ?? sig)));
  let gone = false;
  exited.then(() => (gone = true));
  while (!gone && !/ekg-agent: statsd/.test(out)) await sleep(20);
  return { p, out: () => out, stderr: () => err, exited };
}

/** A fresh agent on free ports with its own data directory (or `o.data`), the console off, plus `flags`. */
export async function startAgent(cli, flags = [], o = {}) {
  const statsd = await freePort();
  const http = await freePort();
  const data = o.data ?? dataDir();
  const args = ['--statsd', `127.0.0.1:${statsd}`, '--http', `127.0.0.1:${http}`, '--console', 'off', '--data', data, ...flags];
  const a = await spawnAgent(cli, args, o);
  const base = `http://127.0.0.1:${http}`;
  return {
    ...a,
    statsd,
    http,
    base,
    data,
    /** GET /api/v1/self, or `{ error }` when the agent does not answer within 5 s */
    self: async (headers = {}) => {
      try {
        return await (await fetch(`${base}/api/v1/self`, { headers, signal: AbortSignal.timeout(5000) })).json();
      } catch (err) {
        return { error: String(err.cause?.code ?? err.message) };
      }
    },
    stop: async (sig = 'SIGTERM') => {
      a.p.kill(sig);
      return a.exited;
    },
  };
}
