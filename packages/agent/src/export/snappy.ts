/**
 * Snappy in the raw block format (not the framed one), as Prometheus remote write requires: the
 * uncompressed length as a varint, then literals and copies. Compression is `snappyjs` (twice as fast
 * as the greedy encoder this file had, the same output size: `npm run bench -- deps`, docs/dependencies.md);
 * the decoder stays here because it checks every bound against hostile input.
 */
import { compress as snappyjsCompress } from 'snappyjs';

export function compress(src: Uint8Array): Uint8Array {
  return snappyjsCompress(src);
}

export function decompress(src: Uint8Array): Uint8Array {
  let p = 0;
  let n = 0;
  for (let shift = 0; ; shift += 7) {
    if (p >= src.length || shift > 28) throw new RangeError('snappy: bad length');
    const b = src[p++] as number;
    n += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  const out = new Uint8Array(n);
  let o = 0;
  while (p < src.length) {
    const tag = src[p++] as number;
    const type = tag & 3;
    if (type === 0) {
      let len = tag >>> 2;
      if (len >= 60) {
        const k = len - 59;
        len = 0;
        for (let j = 0; j < k; j++) len |= (src[p++] as number) << (8 * j);
      }
      len += 1;
      if (p + len > src.length || o + len > n) throw new RangeError('snappy: literal out of bounds');
      out.set(src.subarray(p, p + len), o);
      p += len;
      o += len;
      continue;
    }
    let len: number;
    let off: number;
    if (type === 1) {
      len = ((tag >>> 2) & 7) + 4;
      off = ((tag >>> 5) << 8) | (src[p++] as number);
    } else if (type === 2) {
      len = (tag >>> 2) + 1;
      off = (src[p] as number) | ((src[p + 1] as number) << 8);
      p += 2;
    } else {
      len = (tag >>> 2) + 1;
      off = ((src[p] as number) | ((src[p + 1] as number) << 8) | ((src[p + 2] as number) << 16) | ((src[p + 3] as number) << 24)) >>> 0;
      p += 4;
    }
    if (off === 0 || off > o || o + len > n || p > src.length) throw new RangeError('snappy: copy out of bounds');
    for (let j = 0; j < len; j++, o++) out[o] = out[o - off] as number;
  }
  if (o !== n) throw new RangeError('snappy: length mismatch');
  return out;
}
