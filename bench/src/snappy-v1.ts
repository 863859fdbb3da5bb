/**
 * The agent's hand-written snappy encoder and decoder before it moved to snappyjs (kept as the deps bench's baseline,
 * like store-v1.ts). The agent never decodes snappy, so the decoder left it too.
 */
const MAX_BLOCK = 1 << 16;

function putVarint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
}

function literal(out: number[], src: Uint8Array, from: number, to: number): void {
  const n = to - from - 1;
  if (n < 60) out.push(n << 2);
  else if (n < 1 << 8) out.push(60 << 2, n);
  else if (n < 1 << 16) out.push(61 << 2, n & 0xff, n >>> 8);
  else if (n < 1 << 24) out.push(62 << 2, n & 0xff, (n >>> 8) & 0xff, n >>> 16);
  else out.push(63 << 2, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
  for (let i = from; i < to; i++) out.push(src[i] as number);
}

function copy(out: number[], offset: number, len: number): void {
  while (len > 0) {
    // copies of 4…11 bytes with an offset under 2048 fit in two bytes; the rest take three
    if (len >= 4 && len <= 11 && offset < 2048) {
      out.push(1 | ((len - 4) << 2) | ((offset >>> 8) << 5), offset & 0xff);
      return;
    }
    const n = len > 64 ? (len - 64 < 4 ? 60 : 64) : len;
    out.push(2 | ((n - 1) << 2), offset & 0xff, offset >>> 8);
    len -= n;
  }
}

export function compress(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  putVarint(out, src.length);
  const table = new Int32Array(1 << 14);
  for (let block = 0; block < src.length; block += MAX_BLOCK) {
    const end = Math.min(src.length, block + MAX_BLOCK);
    table.fill(-1);
    let lit = block;
    let i = block;
    while (i + 4 <= end) {
      const x = (src[i] as number) | ((src[i + 1] as number) << 8) | ((src[i + 2] as number) << 16) | ((src[i + 3] as number) << 24);
      const h = Math.imul(x, 0x1e35a7bd) >>> 18;
      const cand = table[h] as number;
      table[h] = i;
      if (
        cand >= block &&
        src[cand] === src[i] &&
        src[cand + 1] === src[i + 1] &&
        src[cand + 2] === src[i + 2] &&
        src[cand + 3] === src[i + 3]
      ) {
        if (lit < i) literal(out, src, lit, i);
        let len = 4;
        while (i + len < end && src[cand + len] === src[i + len]) len++;
        copy(out, i - cand, len);
        i += len;
        lit = i;
      } else i++;
    }
    if (lit < end) literal(out, src, lit, end);
  }
  return Uint8Array.from(out);
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
