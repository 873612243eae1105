/**
 * node:net, loaded on first use. The extension requires the console and monitor code at
 * activation, and node:net (with the stream modules it pulls in) is a third of that cost;
 * nothing connects until a session starts.
 */
import type * as net from 'node:net';

let loaded: typeof net | undefined;

export function netModule(): typeof net {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (loaded ??= require('node:net') as typeof net);
}
