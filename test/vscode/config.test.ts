/** The configuration provider in the real extension host: bad configurations never start QEMU. */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { sampleWorkspace } from './util';

describe('launch configurations in the extension host', function () {
  this.timeout(60000);

  async function refused(config: Record<string, unknown>): Promise<void> {
    const sessions: string[] = [];
    const sub = vscode.debug.onDidStartDebugSession((s) => sessions.push(s.name));
    try {
      const started = await vscode.debug.startDebugging(sampleWorkspace(), { type: 'qemu-kernel', request: 'launch', name: 'refused', ...config });
      assert.equal(started, false, `startDebugging accepted ${JSON.stringify(config)}`);
      assert.deepEqual(sessions, [], 'no debug session (and so no QEMU) was started');
    } finally {
      sub.dispose();
    }
  }

  it('refuses a value the schema does not allow', () => refused({ sampleGuest: true, smp: 0 }));
  it('refuses an unknown accelerator', () => refused({ sampleGuest: true, accel: 'hax' }));
  it('refuses a missing kernel file after variable substitution', () => refused({ kernel: '${workspaceFolder}/no-such-bzImage' }));
  it('refuses a launch with neither kernel nor sampleGuest', () => refused({}));
});
