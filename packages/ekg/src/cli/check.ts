import { get } from './http-get.js';

/**
 * `ekg check URL`: a probe for Kubernetes exec probes and Mackerel check plugins. Exit 0 OK,
 * 1 WARNING (answered 2xx, but slower than -warn), 2 CRITICAL (not 2xx, no answer, timeout),
 * 3 UNKNOWN (bad arguments); one line on stdout saying why.
 */
export const CHECK_HELP = `Usage: ekg check URL [-timeout 5s] [-warn 1s] [-header "Name: value"] [-insecure]

Probes an ekg endpoint (/heartbeat, /ready, /live) for Kubernetes exec probes and Mackerel check plugins.
Exit 0 OK, 1 WARNING (2xx but slower than -warn), 2 CRITICAL (not 2xx, refused, timed out), 3 UNKNOWN (usage).
`;

const ms = (v: string, flag: string): number => {
  const t = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v);
  if (!t) throw new Error(`-${flag}: "${v}" is not a duration like 5s or 500ms`);
  return Number(t[1]) * ({ ms: 1, s: 1000, m: 60_000 }[t[2] ?? 's'] as number);
};

export async function runCheck(argv: string[]): Promise<number> {
  let url: string | undefined;
  let timeout = 5000;
  let warn: number | undefined;
  let insecure = false;
  const headers: Array<[string, string]> = [];
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i] as string;
      if (a === '-h' || a === '-help' || a === '--help') {
        process.stdout.write(CHECK_HELP);
        return 0;
      }
      const m = /^--?([a-z]+)(?:=(.*))?$/.exec(a);
      if (!m) {
        if (url) throw new Error(`one URL only ("${a}")`);
        url = a;
        continue;
      }
      const name = m[1] as string;
      if (name === 'insecure') {
        insecure = m[2] !== 'false';
        continue;
      }
      const v = m[2] ?? argv[++i];
      if (v === undefined) throw new Error(`-${name} needs a value`);
      if (name === 'timeout') timeout = ms(v, name);
      else if (name === 'warn') warn = ms(v, name);
      else if (name === 'header') {
        const c = v.indexOf(':');
        if (c <= 0) throw new Error(`-header: "${v}" must be "Name: value"`);
        headers.push([v.slice(0, c).trim(), v.slice(c + 1).trim()]);
      } else throw new Error(`unknown flag -${name}`);
    }
    if (!url) throw new Error('a URL is needed, e.g. ekg check http://127.0.0.1:3000/ops/ready');
    new URL(url);
  } catch (err) {
    process.stdout.write(`UNKNOWN: ${(err as Error).message}\n`);
    return 3;
  }
  try {
    const r = await get(url, { timeout, insecure, headers });
    const body = r.body.split('\n')[0]?.slice(0, 200).trim() ?? '';
    const took = `${Math.round(r.ms)} ms`;
    if (r.status < 200 || r.status > 299) {
      process.stdout.write(`CRITICAL: ${url} answered ${r.status}${body ? ` ${body}` : ''} in ${took}\n`);
      return 2;
    }
    if (warn !== undefined && r.ms > warn) {
      process.stdout.write(`WARNING: ${url} answered ${r.status} ${body} in ${took}, over ${warn} ms\n`);
      return 1;
    }
    process.stdout.write(`OK: ${url} answered ${r.status}${body ? ` ${body}` : ''} in ${took}\n`);
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string };
    process.stdout.write(`CRITICAL: ${url}: ${e.code ?? e.message}\n`);
    return 2;
  }
}
