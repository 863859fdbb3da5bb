import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** A GET with headers, a timeout and optional TLS leniency; the body as text. */
export function get(
  url: string,
  o: { headers?: Array<[string, string]>; timeout: number; insecure?: boolean; accept?: string },
): Promise<{ status: number; body: string; ms: number }> {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return Promise.reject(new Error(`${url}: only http:// and https:// URLs`));
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'user-agent': 'ekg', ...(o.accept ? { accept: o.accept } : {}) };
    for (const [k, v] of o.headers ?? []) headers[k.toLowerCase()] = v;
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      { method: 'GET', headers, ...(u.protocol === 'https:' ? { rejectUnauthorized: !o.insecure } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 32 << 20) req.destroy(new Error('response over 32 MiB'));
          else chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(o.timeout, () => req.destroy(new Error(`no answer within ${o.timeout} ms`)));
    req.on('error', reject);
    req.end();
  });
}
