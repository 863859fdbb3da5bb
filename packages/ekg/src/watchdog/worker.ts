import { writeSync } from 'node:fs';
import { Session } from 'node:inspector';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The watchdog's thread. The main thread writes the time into shared memory every `beat` ms; when
 * that time is older than `threshold`, the event loop is stalled: this thread pauses the main thread
 * through the inspector, reads where it is, resumes it, and says so on stderr at once (by file
 * descriptor: the main thread, which relays worker output, cannot). When the beat comes back, the
 * stall is over and its record goes to the main thread.
 */
export interface Frame {
  fn: string;
  file: string;
  line: number;
  column: number;
}

const { sab, threshold, stack: wantStack } = workerData as { sab: SharedArrayBuffer; threshold: number; stack: boolean };
const beat = new Float64Array(sab);
let since: number | undefined;
let frames: Frame[] | undefined;
let stackError: string | undefined;

function line(s: string): void {
  try {
    writeSync(2, `${s}\n`);
  } catch {
    // stderr closed: nothing to say it on
  }
}

/** The main thread's call frames, or a reason there are none. */
function capture(): Promise<Frame[]> {
  return new Promise((resolve, reject) => {
    const s = new Session();
    const urls = new Map<string, string>();
    const done = (err?: Error, f?: Frame[]) => {
      clearTimeout(timer);
      try {
        s.post('Debugger.resume', () => {
          s.post('Debugger.disable', () => s.disconnect());
        });
      } catch {
        // already gone
      }
      if (err) reject(err);
      else resolve(f ?? []);
    };
    const timer = setTimeout(() => done(new Error('the inspector did not pause the main thread within 1 s')), 1000);
    try {
      s.connectToMainThread();
    } catch (err) {
      clearTimeout(timer);
      reject(err as Error);
      return;
    }
    s.on('Debugger.scriptParsed', (m) => urls.set(m.params.scriptId, m.params.url));
    s.once('Debugger.paused', (m) => {
      done(
        undefined,
        m.params.callFrames.slice(0, 20).map((f) => ({
          fn: f.functionName || '(anonymous)',
          file: f.url || urls.get(f.location.scriptId) || '',
          line: f.location.lineNumber + 1,
          column: (f.location.columnNumber ?? 0) + 1,
        })),
      );
    });
    s.post('Debugger.enable', (err) => {
      if (err) return done(new Error(`Debugger.enable: ${err.message}`));
      s.post('Debugger.pause', (e) => {
        if (e) done(new Error(`Debugger.pause: ${e.message}`));
      });
    });
  });
}

const at = (f: Frame | undefined) => (f ? `${f.fn} (${f.file}:${f.line}:${f.column})` : 'an unknown place');

setInterval(
  () => {
    const last = beat[0] as number;
    const now = Date.now();
    if (since === undefined && now - last > threshold) {
      since = last;
      frames = undefined;
      stackError = undefined;
      if (!wantStack) {
        line(`ekg: EKG_STALL the event loop has been blocked for ${now - last} ms (stack capture off)`);
        return;
      }
      const t0 = performance.now();
      capture().then(
        (f) => {
          frames = f;
          line(
            `ekg: EKG_STALL the event loop has been blocked for ${Date.now() - last} ms, at ${at(f.find((x) => x.file && !x.file.startsWith('node:')) ?? f[0])}`,
          );
          parentPort?.postMessage({ type: 'captured', ms: performance.now() - t0 });
        },
        (err: Error) => {
          stackError = err.message;
          line(`ekg: EKG_STALL the event loop has been blocked for ${Date.now() - last} ms (no stack: ${err.message})`);
        },
      );
    } else if (since !== undefined && now - last < threshold / 2) {
      const duration = last - since;
      line(`ekg: EKG_STALL the event loop ran again after ${duration} ms`);
      parentPort?.postMessage({ type: 'stall', start: since, duration, stack: frames, stackError });
      since = undefined;
    }
  },
  Math.max(20, Math.min(100, threshold / 10)),
);
