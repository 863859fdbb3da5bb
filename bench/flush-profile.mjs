// For bench/dist/flush.js: the inspector's sampling profiler on only around each flush; prints self ms per function at exit.
import { Session } from 'node:inspector/promises';

const s = new Session();
s.connect();
await s.post('Profiler.enable');
await s.post('Profiler.setSamplingInterval', { interval: 100 });
const self = new Map();
let total = 0;
globalThis.__profStart = () => s.post('Profiler.start');
globalThis.__profStop = async () => {
  const { profile } = await s.post('Profiler.stop');
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const dt = (profile.endTime - profile.startTime) / 1000 / profile.samples.length;
  for (const [id, c] of counts) {
    const n = byId.get(id);
    const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-1)[0]}:${n.callFrame.lineNumber}`;
    self.set(k, (self.get(k) ?? 0) + c * dt);
    total += c * dt;
  }
};
process.on('exit', () => {
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, 40);
  console.error('total', total.toFixed(0));
  for (const [k, v] of rows) console.error(v.toFixed(1).padStart(8), k);
});
