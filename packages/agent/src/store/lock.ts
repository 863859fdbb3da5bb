import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** The data directory cannot be used: another agent holds it, or a file in it cannot be written. */
export class DataDirError extends Error {}

/** The file under the data directory naming the agent that holds it: its pid, then its host name. */
export const LOCK_FILE = 'ekg-agent.pid';

/** The SQLite file whose exclusive lock is the data directory's lock. */
export const LOCK_DB = 'ekg-agent.lock';

const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? '';

/**
 * Takes the data directory for this process, or refuses (DataDirError) when another process holds
 * it, naming the directory and that process's pid. The lock is SQLite's own exclusive lock on
 * `<dir>/ekg-agent.lock` (a POSIX record lock): the kernel drops it when its holder dies however it
 * dies, so a crash or a kill -9 leaves nothing stale, and it holds across containers sharing the
 * directory (where pids mean nothing). `<dir>/ekg-agent.pid` names the holder for the message.
 * Files the agent will write there (`files`, e.g. the database and its WAL) are checked too, so that
 * a read-only file is named as such before SQLite reports it in its own words.
 */
export function lockDataDir(dir: string, files: string[] = []): { path: string; release(): void } {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new DataDirError(
      `cannot create the data directory ${dir} (${code(err) || (err as Error).message}); create it writable for this user, or choose another --data directory`,
    );
  }
  const notWritable = (err: unknown) =>
    new DataDirError(
      `the data directory ${dir} is not writable (${code(err) || (err as Error).message}); ekg-agent keeps its database and lock there: make it writable for this user, or choose another --data directory`,
    );
  try {
    closeSync(openSync(join(dir, LOCK_DB), 'a'));
  } catch (err) {
    throw notWritable(err);
  }
  let db: Database.Database;
  try {
    db = new Database(join(dir, LOCK_DB), { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
  } catch (err) {
    throw notWritable(err);
  }
  const path = join(dir, LOCK_FILE);
  try {
    // the first write takes the exclusive lock; in EXCLUSIVE locking mode it is kept until close
    db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); COMMIT');
  } catch (err) {
    db.close();
    if (code(err) !== 'SQLITE_BUSY' && code(err) !== 'SQLITE_LOCKED') throw notWritable(err);
    let holder = 'its pid unknown';
    try {
      const [pid, host] = readFileSync(path, 'utf8').split('\n');
      if (pid)
        holder = `pid ${pid}${host && host !== hostname() ? ` on ${host}` : ''}${Number(pid) === process.pid ? ', this process' : ''}`;
    } catch {
      // written a moment after the lock is taken
    }
    throw new DataDirError(
      `the data directory ${dir} is in use by another ekg-agent (${holder}); stop that one, or give this one another --data directory`,
    );
  }
  try {
    writeFileSync(path, `${process.pid}\n${hostname()}\n`);
  } catch (err) {
    db.close();
    throw notWritable(err);
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try {
      if (Number(readFileSync(path, 'utf8').split('\n')[0]) === process.pid) unlinkSync(path);
    } catch {
      // already gone
    }
    db.close();
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
