import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** The data directory cannot be used: another agent holds it, or a file in it cannot be written. */
export class DataDirError extends Error {}

/** The lock file's name under the data directory; it holds the pid of the agent using the directory. */
export const LOCK_FILE = 'ekg-agent.pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? '';

/**
 * Takes the data directory for this process: creates `<dir>/ekg-agent.pid` holding its pid, or
 * refuses (DataDirError) when a live process holds it, naming the directory and that pid. A lock left
 * by a process that is gone (a crash, a kill -9) is taken over. Files the agent will write there
 * (`files`, e.g. the database and its WAL) are checked too, so that a read-only file is named as
 * such before SQLite reports it in its own words.
 */
export function lockDataDir(dir: string, files: string[] = []): { path: string; release(): void } {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new DataDirError(
      `cannot create the data directory ${dir} (${code(err) || (err as Error).message}); create it writable for this user, or choose another --data directory`,
    );
  }
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (err) {
      if (code(err) !== 'EEXIST') {
        throw new DataDirError(
          `the data directory ${dir} is not writable (${code(err) || (err as Error).message}); ekg-agent keeps its database and lock there: make it writable for this user, or choose another --data directory`,
        );
      }
      let text = '';
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        // removed meanwhile: try again
      }
      const pid = Number(text.trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new DataDirError(
          `the data directory ${dir} is in use by another ekg-agent (pid ${pid}${pid === process.pid ? ', this process' : ''}); stop that one, or give this one another --data directory`,
        );
      }
      // a stale lock: its process is gone
      if (attempt >= 3) throw new DataDirError(`cannot take the lock ${path}: it keeps coming back; is another agent starting?`);
      try {
        unlinkSync(path);
      } catch {
        // someone else removed it first
      }
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    break;
  }
  const release = () => {
    try {
      if (Number(readFileSync(path, 'utf8').trim()) === process.pid) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  try {
    for (const f of files) checkWritable(join(dir, f));
  } catch (err) {
    release();
    throw err;
  }
  return { path, release };
}

/** A file the agent writes, if it exists, must open for writing: otherwise say it is read-only and what to do. */
function checkWritable(path: string): void {
  if (!existsSync(path)) return;
  try {
    closeSync(openSync(path, 'r+'));
  } catch (err) {
    const c = code(err);
    if (c === 'EACCES' || c === 'EPERM' || c === 'EROFS')
      throw new DataDirError(
        `${path} is read-only (${c}); ekg-agent writes its windows there: make it writable for this user (chmod u+w, or chown to the agent's user${c === 'EPERM' ? '; chattr -i if it is immutable' : ''}${c === 'EROFS' ? '; the file system is mounted read-only' : ''}), or choose another --data directory`,
      );
    throw new DataDirError(`cannot open ${path} (${c || (err as Error).message}); move it away or choose another --data directory`);
  }
}
