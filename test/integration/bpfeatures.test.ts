/**
 * Breakpoint features built on the expression evaluator, against the real sample guest:
 * a condition that is false on the first kernel_clone call, a hit count, a logpoint that
 * prints without stopping, and a data breakpoint that stops on a global's write at the line
 * that wrote it.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import { GuestPaths } from '../../src/guest/build';
import { requireBuilt, sampleGuest } from '../support/env';
import { TestSession } from '../support/session';

function lineOf(file: string, text: string): number {
  const i = fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(text));
  if (i < 0) throw new Error(`'${text}' not found in ${file}`);
  return i + 1;
}

describe('conditions, hit counts, logpoints and data breakpoints', function () {
  this.timeout(600_000);
  let guest: GuestPaths;
  let s: TestSession;

  beforeEach(async function () {
    requireBuilt(this);
    guest = sampleGuest(this);
    s = new TestSession(this);
    await s.start();
  });

  afterEach(async () => {
    await s?.stop();
  });

  const launch = (): DebugProtocol.LaunchRequestArguments => s.launchArgs({ kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd });

  async function evaluate(frameId: number, expression: string): Promise<string> {
    return (await s.dc.evaluateRequest({ expression, frameId, context: 'watch' })).body.result;
  }

  it('a condition false for the first kernel_clone call skips it; a hit count stops on the Nth', async () => {
    const initialized = s.dc.waitForEvent('initialized');
    await s.dc.launchRequest(launch());
    await initialized;
    // The first call creates kernel_init's thread, the second kthreadd's (init/main.c rest_init).
    const bps = await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone', condition: 'args->fn != kernel_init' }] });
    assert.equal(bps.body.breakpoints[0].verified, true);
    const stopped = s.dc.waitForEvent('stopped');
    await s.dc.configurationDoneRequest();
    const stop = (await stopped) as DebugProtocol.StoppedEvent;
    assert.equal(stop.body.reason, 'breakpoint');
    const top = await s.topFrame(stop.body.threadId as number);
    assert.equal(top.name, 'kernel_clone');
    assert.match(await evaluate(top.id, 'args->fn'), /<kthreadd>$/);

    // Now a hit count: the condition goes, `% 1` would stop on every hit, '== 2' on the second from now.
    await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone', hitCondition: '== 2' }] });
    const next = s.dc.waitForEvent('stopped');
    await s.dc.continueRequest({ threadId: stop.body.threadId as number });
    const stop2 = (await next) as DebugProtocol.StoppedEvent;
    const top2 = await s.topFrame(stop2.body.threadId as number);
    assert.equal(top2.name, 'kernel_clone');
    // The hit before this one was skipped: this is not the thread right after kthreadd.
    assert.doesNotMatch(await evaluate(top2.id, 'args->fn'), /<kthreadd>$/);

    // A condition that can't be evaluated stops and says why, as gdb does.
    const bad = await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone', hitCondition: 'often' }] });
    assert.equal(bad.body.breakpoints[0].verified, false);
    assert.match(bad.body.breakpoints[0].message ?? '', /hitCondition: 'often' is not a hit count/);
  });

  it('a logpoint prints into the Debug Console without stopping', async () => {
    const fork = path.join(guest.source, 'kernel', 'fork.c');
    const line = lineOf(fork, 'u64 clone_flags = args->flags;');
    const initialized = s.dc.waitForEvent('initialized');
    await s.dc.launchRequest(launch());
    await initialized;
    const lp = await s.dc.setBreakpointsRequest({ source: { path: fork }, breakpoints: [{ line, logMessage: 'clone fn={args->fn} flags={args->flags,x} {{literal}}' }] });
    assert.equal(lp.body.breakpoints[0].verified, true);
    await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_init' }] });
    const stopped = s.dc.waitForEvent('stopped');
    await s.dc.configurationDoneRequest();
    const stop = (await stopped) as DebugProtocol.StoppedEvent;
    // Two clones (kernel_init's and kthreadd's threads) come before kernel_init runs.
    assert.equal((await s.topFrame(stop.body.threadId as number)).name, 'kernel_init');
    const logs = s.output.filter((o) => o.startsWith('clone fn='));
    assert.ok(logs.length >= 2, `logpoint lines: ${JSON.stringify(s.output)}`);
    assert.match(logs[0], /^clone fn=0xffffffff[0-9a-f]+ <kernel_init> flags=0x[0-9a-f]+ \{literal\}\n$/);
    assert.match(logs[1], /<kthreadd>/);
  });

  it('a data breakpoint on a global stops on the write, at the writing line', async () => {
    const { stop } = await s.launchToBreak(launch(), ['kernel_clone']);
    const tid = stop.body.threadId as number;
    const top = await s.topFrame(tid);
    const before = BigInt(await evaluate(top.id, 'jiffies_64'));
    const info = await s.dc.dataBreakpointInfoRequest({ name: 'jiffies_64', frameId: top.id });
    assert.ok(info.body.dataId, info.body.description);
    assert.deepEqual(info.body.accessTypes, ['write', 'read', 'readWrite']);
    const set = await s.dc.setDataBreakpointsRequest({ breakpoints: [{ dataId: info.body.dataId as string, accessType: 'write' }] });
    assert.equal(set.body.breakpoints[0].verified, true, set.body.breakpoints[0].message);
    await s.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
    const stopped = s.dc.waitForEvent('stopped');
    await s.dc.continueRequest({ threadId: tid });
    const hit = (await stopped) as DebugProtocol.StoppedEvent;
    assert.equal(hit.body.reason, 'data breakpoint');
    assert.deepEqual(hit.body.hitBreakpointIds, [set.body.breakpoints[0].id]);
    const at = await s.topFrame(hit.body.threadId as number);
    assert.ok(at.source?.path, 'the writing frame has a source');
    const text = fs.readFileSync(at.source.path, 'utf8').split('\n')[at.line - 1];
    assert.match(text, /jiffies_64\s*\+=/, `${at.name} ${at.source.path}:${at.line}: ${text}`);
    assert.ok(BigInt(await evaluate(at.id, 'jiffies_64')) > before);

    // Sizes the stub can't watch are refused with the reason.
    const big = await s.dc.dataBreakpointInfoRequest({ name: 'init_task.comm', frameId: at.id });
    assert.equal(big.body.dataId, null);
    assert.match(big.body.description, /16 bytes .*1, 2, 4 or 8 bytes/);
  });
});
