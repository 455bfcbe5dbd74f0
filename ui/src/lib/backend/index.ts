// Picks the backend: the real console inside Tauri, the labelled fake in a plain browser.
import type { Backend } from './types';

export type * from './types';

export async function connectBackend(): Promise<Backend> {
  if ('__TAURI_INTERNALS__' in window) {
    return (await import('./tauri')).tauriBackend;
  }
  return (await import('./fake')).createFakeBackend();
}
