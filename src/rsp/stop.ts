/** Stop replies (`S`, `T`, `W`, `X`) as typed values. */

export type StopReply =
  | { kind: 'signal'; signal: number; thread?: number; pairs: Map<string, string> }
  | { kind: 'exited'; code: number }
  | { kind: 'terminated'; signal: number };

export function isStopReply(payload: string): boolean {
  return /^(S[0-9a-fA-F]{2}$|T[0-9a-fA-F]{2}|[WX][0-9a-fA-F]{2})/.test(payload);
}

/** Parse a thread id as QEMU sends it: `01`, or `p1.01` in multiprocess form. */
export function parseThreadId(text: string): number {
  const m = /^(?:p[0-9a-fA-F]+\.)?(-1|[0-9a-fA-F]+)$/.exec(text);
  if (!m) throw new Error(`invalid thread id '${text}'`);
  return m[1] === '-1' ? -1 : parseInt(m[1], 16);
}

export function parseStopReply(payload: string): StopReply {
  const code = parseInt(payload.slice(1, 3), 16);
  switch (payload[0]) {
    case 'W':
      return { kind: 'exited', code };
    case 'X':
      return { kind: 'terminated', signal: code };
    case 'S':
      return { kind: 'signal', signal: code, pairs: new Map() };
    case 'T': {
      const pairs = new Map<string, string>();
      for (const part of payload.slice(3).split(';')) {
        if (!part) continue;
        const colon = part.indexOf(':');
        if (colon < 0) pairs.set(part, '');
        else pairs.set(part.slice(0, colon), part.slice(colon + 1));
      }
      const t = pairs.get('thread');
      return { kind: 'signal', signal: code, thread: t === undefined ? undefined : parseThreadId(t), pairs };
    }
    default:
      throw new Error(`not a stop reply: '${payload}'`);
  }
}
