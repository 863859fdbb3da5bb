import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * The TCP ports a process listens on, read from Linux's /proc: its socket descriptors matched
 * against the kernel's socket table. How a test learns the port a program took when it was asked
 * for port 0 (a fixed or random port races every other test and engineer on the machine), with
 * no log line to parse. Linux only, as CI is.
 */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st … inode: st 0A is LISTEN
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9] as string)) ports.add(Number.parseInt((f[1] as string).split(':')[1] as string, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/**
 * Waits until `proc` listens on `count` TCP ports besides `except`, and returns them (ascending).
 * Rejects if the process exits first or after `timeout` ms (a bound on failure, not the wait).
 */
export async function listenedPorts(
  proc: ChildProcess,
  o: { count?: number; except?: number[]; timeout?: number } = {},
): Promise<number[]> {
  const end = Date.now() + (o.timeout ?? 60_000);
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`exited (${proc.exitCode ?? proc.signalCode}) before listening`);
    const ports = listeningPorts(proc.pid as number).filter((p) => !o.except?.includes(p));
    if (ports.length >= (o.count ?? 1)) return ports;
    if (Date.now() > end) throw new Error(`not listening after ${o.timeout ?? 60_000} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
