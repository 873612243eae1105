/**
 * toUserError: what a DAP error response carries for an error of a lower layer. Built from
 * the real error classes, so a renamed class (toUserError reads `name`) fails here.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { MemoryError } from '../../src/engine/memcache';
import { ExprSyntaxError } from '../../src/engine/expr/lexer';
import { QmpError } from '../../src/qemu/qmp';
import { RspConnectionError, RspError, RspErrorReply, RspProtocolError, RspUnsupported } from '../../src/rsp/errors';
import { FramingError } from '../../src/rsp/framing';
import { DwarfError } from '../../src/symbols/dwarf/reader';
import { UnavailableError } from '../../src/symbols/dwarf/expr';
import { ElfError } from '../../src/symbols/elf';
import { ErrorCode, errors, toUserError } from '../../src/util/errors';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
}

describe('util/errors toUserError: lower layers map to the user-facing codes', () => {
  const cases: Array<[string, unknown, ErrorCode, RegExp]> = [
    ['a lost gdbstub connection', new RspConnectionError('g', 'connection closed by the stub'), ErrorCode.GdbstubLost, /^Lost the gdbstub: connection closed by the stub\. .*restart the session/],
    ['an Exx reply', new RspErrorReply('m0,8', 0x0e), ErrorCode.GdbstubError, /could not do this: stub returned error E0e for 'm0,8'/],
    ['an empty (unsupported) reply', new RspUnsupported('Z4,0,8'), ErrorCode.Unsupported, /does not support this: .*Z4,0,8.*newer QEMU/],
    ['a packet sent while the guest runs', new RspError("cannot send 'g' while the target is running", 'g'), ErrorCode.TargetRunning, /while the guest is running; pause it first/],
    ['a reply of the wrong shape', new RspProtocolError('qC', 'no thread id'), ErrorCode.GdbstubError, /not understood: unexpected reply to 'qC'.*"rspLog"/],
    ['a framing error', new FramingError('bad checksum'), ErrorCode.GdbstubError, /not understood: RSP framing: bad checksum/],
    ['a QMP error', new QmpError('cont', 'GenericError', 'guest is dead'), ErrorCode.QemuMonitor, /^QEMU refused a monitor command: cont: guest is dead\.$/],
    ['an unreadable ELF', new ElfError('/k/vmlinux', 'truncated section headers'), ErrorCode.NotElf, /^Cannot read the ELF file \/k\/vmlinux: truncated section headers\. Point 'vmlinux'/],
    ['bad DWARF', new DwarfError('.debug_info', 0x1234, 'unknown form 0x99'), ErrorCode.DebugInfo, /debug info could not be read: \.debug_info at 0x1234: unknown form 0x99\. Rebuild/],
    ['unreadable guest memory', new MemoryError(0xffff8000n), ErrorCode.MemoryAccess, /^Cannot access memory at address 0xffff8000$/],
    ['an unavailable DWARF value', new UnavailableError('optimized out'), ErrorCode.Expression, /^optimized out$/],
    ['a missing file (ENOENT)', thrown(() => fs.readFileSync('/nonexistent/qkd/file')), ErrorCode.FileNotFound, /^'\/nonexistent\/qkd\/file' does not exist \(open\)\./],
    ['a directory read as a file (EISDIR)', thrown(() => fs.readFileSync(os.tmpdir())), ErrorCode.FileAccess, /Cannot use .*: it is a directory \(read\)\. Fix its permissions or choose another path/],
    ['a permission error (EACCES)', Object.assign(new Error("EACCES: permission denied, open '/root/x'"), { code: 'EACCES', syscall: 'open', path: '/root/x' }), ErrorCode.FileAccess, /^Cannot use '\/root\/x': permission denied \(open\)/],
    ['a bug of ours', new TypeError("Cannot read properties of undefined (reading 'pc')"), ErrorCode.Internal, /^Cannot read properties of undefined/],
    ['a thrown string', 'boom', ErrorCode.Internal, /^boom$/],
  ];
  for (const [what, err, code, text] of cases) {
    it(what, () => {
      const u = toUserError(err);
      assert.equal(ErrorCode[u.code], ErrorCode[code]);
      assert.match(u.message, text);
    });
  }

  it('passes a UserError through as it is, expression errors included', () => {
    const e = errors.invalidField('smp', 'is bad', 'Fix it.');
    assert.equal(toUserError(e), e);
    const syntax = new ExprSyntaxError('unexpected ")" at column 3', { start: 2, end: 3 }, 'a )');
    assert.equal(toUserError(syntax), syntax);
  });
});
