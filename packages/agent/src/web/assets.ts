import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/**
 * The dashboard's files, served from memory: the page and its stylesheet (`ui/static/`), the
 * compiled modules (`dist/ui/`) and uPlot from the agent's own dependencies. Nothing is fetched
 * from a CDN; each file is read and gzipped once, and revalidated by ETag.
 */
interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Where the dashboard's modules find the agent's model: `/ui/x.js` imports `../../src/model/y.js`. */
const MODEL = '/src/model/';

/** URL path → file on disk. */
function catalogue(): Map<string, string> {
  const files = new Map<string, string>();
  const stat = here('../../ui/static/');
  for (const f of readdirSync(stat)) files.set(f === 'index.html' ? '/' : `/ui/${f}`, join(stat, f));
  const built = here('../ui/');
  for (const f of readdirSync(built)) if (f.endsWith('.js')) files.set(`/ui/${f}`, join(built, f));
  // the agent's model (tags, instance identity, quantiles), which the dashboard imports as `../../src/model/*.js`
  const model = here('../model/');
  for (const f of readdirSync(model)) if (f.endsWith('.js')) files.set(`${MODEL}${f}`, join(model, f));
  const req = createRequire(import.meta.url);
  files.set('/ui/uPlot.iife.min.js', req.resolve('uplot/dist/uPlot.iife.min.js'));
  files.set('/ui/uPlot.min.css', req.resolve('uplot/dist/uPlot.min.css'));
  return files;
}

let files: Map<string, string> | undefined;
const cache = new Map<string, Asset>();

function load(path: string): Asset | undefined {
  let a = cache.get(path);
  if (a) return a;
  files ??= catalogue();
  const file = files.get(path);
  if (!file) return undefined;
  const body = readFileSync(file);
  a = {
    type: TYPES[extname(file)] ?? 'application/octet-stream',
    body,
    gzip: gzipSync(body, { level: 9 }),
    etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`,
  };
  cache.set(path, a);
  return a;
}

/** The dashboard's paths, for the token check: they carry no data. */
export function isAsset(path: string): boolean {
  return path === '/' || path === '/index.html' || path.startsWith('/ui/') || path.startsWith(MODEL);
}

/** Serves a dashboard file; false when `path` is none of them. */
export function serveAsset(req: IncomingMessage, res: ServerResponse, path: string): boolean {
  let a: Asset | undefined;
  try {
    a = load(path === '/index.html' ? '/' : path);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`the dashboard's files cannot be read (${(err as Error).message}); rebuild the agent (npm run build)\n`);
    return true;
  }
  if (!a) return false;
  const headers: Record<string, string> = {
    'content-type': a.type,
    etag: a.etag,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    vary: 'accept-encoding',
  };
  if (path === '/' || path === '/index.html') {
    headers['content-security-policy'] =
      "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";
  }
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, headers);
    res.end();
    return true;
  }
  const gz = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gz ? a.gzip : a.body;
  if (gz) headers['content-encoding'] = 'gzip';
  headers['content-length'] = String(body.length);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

/** Bytes the dashboard ships to a browser, gzipped, by kind (for the size budget). */
export function assetSizes(): { js: number; css: number; html: number } {
  files ??= catalogue();
  const out = { js: 0, css: 0, html: 0 };
  for (const p of files.keys()) {
    const a = load(p) as Asset;
    if (a.type.startsWith('text/javascript')) out.js += a.gzip.length;
    else if (a.type.startsWith('text/css')) out.css += a.gzip.length;
    else if (a.type.startsWith('text/html')) out.html += a.gzip.length;
  }
  return out;
}
