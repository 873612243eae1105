/** Errors raised by the RSP client. Each names what was sent so a caller can report it. */

export class RspError extends Error {
  constructor(message: string, readonly packet: string) {
    super(message);
    this.name = 'RspError';
  }
}

/** The stub answered `Exx`: it understood the packet but could not do it. */
export class RspErrorReply extends RspError {
  constructor(packet: string, readonly code: number, readonly text?: string) {
    super(`stub returned error E${code.toString(16).padStart(2, '0')}${text ? ` (${text})` : ''} for '${summarize(packet)}'`, packet);
    this.name = 'RspErrorReply';
  }
}

/** The stub answered with an empty packet: it does not support this request. */
export class RspUnsupported extends RspError {
  constructor(packet: string) {
    super(`stub does not support '${summarize(packet)}'`, packet);
    this.name = 'RspUnsupported';
  }
}

/** The reply did not have the expected shape. */
export class RspProtocolError extends RspError {
  constructor(packet: string, detail: string) {
    super(`unexpected reply to '${summarize(packet)}': ${detail}`, packet);
    this.name = 'RspProtocolError';
  }
}

/** The connection closed or failed while a request was outstanding. */
export class RspConnectionError extends RspError {
  constructor(packet: string, detail: string) {
    super(`gdbstub connection: ${detail}`, packet);
    this.name = 'RspConnectionError';
  }
}

function summarize(packet: string): string {
  return packet.length > 40 ? packet.slice(0, 37) + '...' : packet;
}

/** Turn an `Exx` or `E.text` reply into an error, or return undefined when the reply is not an error. */
export function errorFromReply(packet: string, reply: string): RspErrorReply | undefined {
  if (/^E[0-9a-fA-F]{2}$/.test(reply)) return new RspErrorReply(packet, parseInt(reply.slice(1), 16));
  if (reply.startsWith('E.')) return new RspErrorReply(packet, 0, reply.slice(2));
  return undefined;
}
