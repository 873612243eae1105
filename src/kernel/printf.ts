/**
 * The kernel's printf (lib/vsprintf.c), enough of it to show panic()'s message at the
 * moment panic() is entered, before the kernel has formatted it: the conversions messages
 * use (%s %d %u %x %p %pS %c), with flags, width and length modifiers. Arguments come as
 * raw 64-bit words, the way the ABI passed them; a string argument is read from memory.
 */

export interface PrintfHost {
  /** The C string at an address, or undefined where unreadable. */
  string(addr: bigint): Promise<string | undefined>;
  /** `func+0x1a/0x200 [mod]` for a code address (%pS). */
  symbol(addr: bigint): string;
}

const SPEC = /%([-+ 0#]*)(\d+|\*)?(?:\.(\d+|\*))?(hh|h|ll|l|z|t|j)?([diouxXcspn%])([SsBbFfx]?)/g;

export async function formatKernelPrintf(fmt: string, args: readonly bigint[], host: PrintfHost): Promise<string> {
  let next = 0;
  const arg = (): bigint => args[next++] ?? 0n;
  let out = '';
  let last = 0;
  for (const m of fmt.matchAll(SPEC)) {
    out += fmt.slice(last, m.index);
    last = (m.index ?? 0) + m[0].length;
    const [, flags, widthText, precText, length, conv, pext] = m;
    if (conv === '%') {
      out += '%';
      continue;
    }
    const width = widthText === '*' ? Number(BigInt.asIntN(32, arg())) : widthText ? Number(widthText) : 0;
    const precision = precText === '*' ? Number(BigInt.asIntN(32, arg())) : precText ? Number(precText) : undefined;
    let text: string;
    let suffixUsed = false;
    const v = arg();
    const bits = length === 'hh' ? 8 : length === 'h' ? 16 : length === 'l' || length === 'll' || length === 'z' || length === 't' || length === 'j' ? 64 : 32;
    switch (conv) {
      case 'd':
      case 'i':
        text = BigInt.asIntN(bits, v).toString();
        break;
      case 'u':
        text = BigInt.asUintN(bits, v).toString();
        break;
      case 'o':
        text = BigInt.asUintN(bits, v).toString(8);
        break;
      case 'x':
      case 'X':
        text = BigInt.asUintN(bits, v).toString(16);
        if (flags.includes('#') && v !== 0n) text = '0x' + text;
        if (conv === 'X') text = text.toUpperCase();
        break;
      case 'c':
        text = String.fromCharCode(Number(v & 0xffn));
        break;
      case 's': {
        const s = v === 0n ? '(null)' : ((await host.string(v)) ?? '(efault)');
        text = precision !== undefined ? s.slice(0, precision) : s;
        break;
      }
      case 'p':
        suffixUsed = pext !== '';
        if (pext === 'S' || pext === 's' || pext === 'B') text = host.symbol(v);
        else if (pext === 'x') text = v.toString(16).padStart(16, '0');
        // A plain %p is hashed by the kernel (never the address): say so rather than guess the hash.
        else text = v === 0n ? '(null)' : '(ptrval)';
        break;
      default:
        text = '';
    }
    const pad = width - text.length;
    if (pad > 0) text = flags.includes('-') ? text + ' '.repeat(pad) : flags.includes('0') && conv !== 's' ? text.replace(/^(-?(?:0x)?)/, (p) => p + '0'.repeat(pad)) : ' '.repeat(pad) + text;
    out += text + (suffixUsed ? '' : pext);
  }
  return out + fmt.slice(last);
}
