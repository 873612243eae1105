/** Every command package.json contributes is really registered by the extension. */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { extension } from './util';

interface Manifest {
  contributes?: { commands?: Array<{ command: string; title: string }>; views?: Record<string, Array<{ id: string }>> };
}

describe('commands', () => {
  it('registers each command of contributes.commands', async () => {
    const ext = extension();
    await ext.activate();
    const contributed = ((ext.packageJSON as Manifest).contributes?.commands ?? []).map((c) => c.command);
    assert.ok(contributed.length > 0, 'package.json contributes no commands');
    const registered = new Set(await vscode.commands.getCommands(true));
    assert.deepEqual(
      contributed.filter((c) => !registered.has(c)),
      [],
      'contributed in package.json but not registered by activate()',
    );
  });

  it('has every registered qemuKernel.* command contributed, so none is missing from the palette by mistake', async () => {
    const manifest = extension().packageJSON as Manifest;
    const contributed = new Set((manifest.contributes?.commands ?? []).map((c) => c.command));
    // VS Code itself registers <viewId>.focus, .open, .resetViewLocation, … for each contributed view.
    const views = new Set(Object.values(manifest.contributes?.views ?? {}).flatMap((vs) => vs.map((v) => v.id)));
    const ours = (await vscode.commands.getCommands(true)).filter((c) => c.startsWith('qemuKernel.') && !views.has(c.slice(0, c.lastIndexOf('.'))));
    assert.ok(ours.length > 0);
    assert.deepEqual(
      ours.filter((c) => !contributed.has(c)),
      [],
      'registered but not in contributes.commands',
    );
  });
});
