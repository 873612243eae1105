/**
 * A scripted gdbstub peer on a unix socket: it records every frame and byte the client sends
 * and answers as the test says, with the bytes QEMU really sent where the test needs them.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { RspClient } from '../../src/rsp/client';

export interface Peer {
  client: RspClient;
  /** The peer's socket, for a second client (KernelTarget.connect opens its own). */
  path: string;
  received: string[];
  /** The raw bytes of each read, to tell what arrived in one write. */
  chunks: string[];
  socket: () => net.Socket;
  close: () => void;
}

export async function withPeer(onFrame: (frame: string, sock: net.Socket) => void): Promise<Peer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-unit-'));
  const sockPath = path.join(dir, 's');
  const received: string[] = [];
  const chunks: string[] = [];
  let conn: net.Socket | undefined;
  const server = net.createServer((s) => {
    conn = s;
    let buf = '';
    s.on('data', (d) => {
      chunks.push(d.toString('latin1'));
      buf += d.toString('latin1');
      for (;;) {
        if (buf[0] === '+' || buf[0] === '-' || buf[0] === '\x03') {
          received.push(buf[0]);
          if (buf[0] === '\x03') onFrame('\x03', s);
          buf = buf.slice(1);
          continue;
        }
        const m = /^\$([^#]*)#[0-9a-f]{2}/.exec(buf);
        if (!m) break;
        buf = buf.slice(m[0].length);
        received.push(m[1]);
        onFrame(m[1], s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  const client = await RspClient.connect({ kind: 'unix', path: sockPath }, { timeoutMs: 500 });
  return {
    client,
    path: sockPath,
    received,
    chunks,
    socket: () => conn as net.Socket,
    close: () => {
      client.close();
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

