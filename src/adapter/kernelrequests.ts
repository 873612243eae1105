/** The kernel-awareness requests of the session: the kernel log, the task list, showing a task's stack, translating an address. */
import { StoppedEvent } from '@vscode/debugadapter';
import type { DebugProtocol } from '@vscode/debugprotocol';
import type { Debugger } from '../engine/debugger';
import { errors } from '../util/errors';
import { KERNEL_LOG_REQUEST, SHOW_TASK_REQUEST, TASKS_REQUEST, TRANSLATE_REQUEST, type TasksArguments, type TranslateArguments } from './events';
import { translateBody } from './translate';
import { kernelLogBody } from './kernellog';
import { tasksBody } from './ktasks';
import type { TaskThreads } from './taskthreads';

export interface KernelRequestHost {
  debugger(): Debugger;
  taskThreads(): TaskThreads;
  sendEvent(e: DebugProtocol.Event): void;
}

export function kernelRequests(h: KernelRequestHost): Record<string, (args: never) => Promise<unknown>> {
  return {
    [KERNEL_LOG_REQUEST]: () => kernelLogBody(h.debugger()),
    [TASKS_REQUEST]: (a: TasksArguments) => tasksBody(h.debugger(), a ?? {}),
    [SHOW_TASK_REQUEST]: (a: { pid: number }) => showTask(h, a.pid),
    [TRANSLATE_REQUEST]: (a: TranslateArguments) => translateBody(h.debugger(), a),
  };
}

/** The Kernel Tasks view picked a task: its stack goes in the Call Stack, focused as a stop would be. */
async function showTask(h: KernelRequestHost, pid: number): Promise<{ threadId: number }> {
  const dbg = h.debugger();
  if (dbg.isRunning) throw errors.targetRunning("show a task's stack");
  if (!Number.isInteger(pid) || pid < 0) throw errors.unsupported(`'pid' must be a task's pid, a whole number (got ${JSON.stringify(pid)}).`);
  const { threadId, name } = await dbg.stoppedTurn(() => h.taskThreads().show(dbg, pid));
  const e = new StoppedEvent('task', threadId) as DebugProtocol.StoppedEvent;
  Object.assign(e.body, { allThreadsStopped: true, preserveFocusHint: false, description: name });
  h.sendEvent(e);
  return { threadId };
}
