import type { Ekg } from './ekg.js';

const kInstance = Symbol.for('ekg.register.instance');
type Global = typeof globalThis & { [kInstance]?: Ekg };

/** The instance `ekg-vitals/register` started, shared through a global symbol so that two copies of ekg agree. */
export function registered(): Ekg | undefined {
  return (globalThis as Global)[kInstance];
}

export function setRegistered(ekg: Ekg): void {
  (globalThis as Global)[kInstance] = ekg;
}
