declare module 'snappyjs' {
  /** Raw-block snappy; returns the same kind of bytes it is given. */
  export function compress<T extends Uint8Array | ArrayBuffer>(input: T): T;
  export function uncompress<T extends Uint8Array | ArrayBuffer>(input: T, maxLength?: number): T;
}
