/**
 * Series ids by a 32-bit hash of (kind, name, tags), open addressing with linear probing in one
 * `Int32Array`: ~14 bytes a series (the table at most half full, and each id's hash) where four `Map`s
 * keyed by `name` or `name|tags` cost ~36 bytes an entry, and a key string of its own for every tagged
 * series (~40 bytes more). The caller compares the candidates' strings itself: the table knows ids only.
 *
 *   for (let i = t.start(h); ; i = t.next(i)) { const id = t.id(i); if (id < 0 || (t.hashes[id] === h && same(id))) return id; }
 */
import { grown } from '../model/bytes.js';

/** FNV-1a over the kind, the name's UTF-16 units, a separator and the tags', then mixed (murmur3's finaliser) for the low bits the table masks. */
export function seriesHash(kind: number, name: string, tags: string): number {
  let h = Math.imul(0x811c9dc5 ^ kind, 0x01000193);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0x7c, 0x01000193);
  for (let i = 0; i < tags.length; i++) h = Math.imul(h ^ tags.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class IdHash {
  /** per id: its hash (valid while it is in the table) */
  hashes = new Uint32Array(0);
  /** id + 1 per slot, 0 when empty */
  private tab = new Int32Array(16);
  private mask = 15;
  private n = 0;

  get size(): number {
    return this.n;
  }

  /** Room for ids below `cap`. */
  grow(cap: number): void {
    if (cap > this.hashes.length) this.hashes = grown(this.hashes, cap);
  }

  /** The first slot to look at for hash `h`. */
  start(h: number): number {
    return h & this.mask;
  }

  next(i: number): number {
    return (i + 1) & this.mask;
  }

  /** The id in slot `i`, or -1: the end of the probe. */
  id(i: number): number {
    return (this.tab[i] as number) - 1;
  }

  /** Adds `id` (not in the table) with hash `h`. */
  add(id: number, h: number): void {
    if ((this.n + 1) * 2 > this.tab.length) this.resize(this.tab.length * 2);
    this.hashes[id] = h;
    this.put(id, h);
    this.n++;
  }

  /** Takes `id` out (backward-shift deletion: no tombstones, so probes stay short). */
  delete(id: number): void {
    const tab = this.tab;
    const mask = this.mask;
    let i = (this.hashes[id] as number) & mask;
    while (tab[i] !== id + 1) {
      if (tab[i] === 0) return;
      i = (i + 1) & mask;
    }
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const e = tab[j] as number;
      if (e === 0) break;
      // the entry at j may move back to i unless its home lies cyclically in (i, j]
      const home = (this.hashes[e - 1] as number) & mask;
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        tab[i] = e;
        i = j;
      }
    }
    tab[i] = 0;
    this.n--;
    // a table that emptied (series expired) gives its room back, keeping it at most a quarter full
    if (this.tab.length > 1024 && this.n * 8 < this.tab.length) this.resize(this.tab.length / 2);
  }

  private put(id: number, h: number): void {
    let i = h & this.mask;
    while (this.tab[i] !== 0) i = (i + 1) & this.mask;
    this.tab[i] = id + 1;
  }

  private resize(size: number): void {
    const old = this.tab;
    this.tab = new Int32Array(size);
    this.mask = size - 1;
    for (let i = 0; i < old.length; i++) {
      const e = old[i] as number;
      if (e !== 0) this.put(e - 1, this.hashes[e - 1] as number);
    }
  }
}
