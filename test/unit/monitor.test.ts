/** The QEMU monitor terminal's byte handling: CR LF out, one CR per Enter in. */
import * as assert from 'node:assert/strict';
import { toMonitorInput, toTerminalNewlines } from '../../src/qemu/monitor';

describe('qemu/monitor newline handling', () => {
  it('gives a lone LF its CR and leaves CR LF alone', () => {
    assert.deepEqual(toTerminalNewlines('a\nb\r\nc', false), { text: 'a\r\nb\r\nc', endsWithCR: false });
    assert.deepEqual(toTerminalNewlines('\n\n', false), { text: '\r\n\r\n', endsWithCR: false });
  });

  it('does not double a CR LF split across two chunks', () => {
    const first = toTerminalNewlines('VM status: running\r', false);
    assert.equal(first.endsWithCR, true);
    assert.equal(toTerminalNewlines('\n(qemu) ', first.endsWithCR).text, '\n(qemu) ');
    assert.equal(toTerminalNewlines('\n(qemu) ', false).text, '\r\n(qemu) ');
  });

  it('turns a pasted CR LF into one Enter and keeps editing keys as they are', () => {
    assert.equal(toMonitorInput('info status\r\ninfo cpus\r\n'), 'info status\rinfo cpus\r');
    assert.equal(toMonitorInput('info reg\t\x7f\x1b[A\r'), 'info reg\t\x7f\x1b[A\r');
  });
});
