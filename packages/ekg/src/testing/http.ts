import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Test helper: a real request over a real socket, with the answer read whole. */
export interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

/** A request with its answer; the default 60 s abort is a bound on a failure (a busy machine is slow, not broken). */
export async function get(base: string, path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(base + path, { ...init, signal: init.signal ?? AbortSignal.timeout(60_000) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

export function baseOf(server: Server): string {
  const a = server.address() as AddressInfo;
  return `http://127.0.0.1:${a.port}`;
}

export function listening(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
