/**
 * A running guest's whole state saved and restored through QMP (QEMU 7.2's `snapshot-save`,
 * `snapshot-load`, `snapshot-delete` jobs). The state goes into a qcow2 node: a `-kernel`
 * guest with no disk gets one made here, with `blockdev-create` (no qemu-img needed), in a
 * folder the caller names, and added with `blockdev-add` while the guest runs; no device uses
 * it. Every writable disk the guest has is snapshotted with it, so a disk that cannot be
 * (raw, say) is refused with the reason before anything is written.
 */
import * as path from 'node:path';
import type { QmpClient } from './qmp';

export const VMSTATE_NODE = 'qkd-vmstate';
const VMSTATE_FILE_NODE = 'qkd-vmstate-file';
/** The qcow2's virtual size: no device reads it; the VM state is stored beside it, whatever its size. */
const VMSTATE_DISK_BYTES = 64 * 1024 * 1024;
const JOB_POLL_MS = 20;

export interface SnapshotInfo {
  tag: string;
  /** Bytes of VM state (RAM and devices). */
  vmStateBytes: number;
  /** When it was taken. */
  date: Date;
  /** The guest's clock at that moment, in seconds. */
  vmClockSeconds: number;
}

interface BlockNode {
  'node-name': string;
  drv: string;
  ro: boolean;
  file: string;
  image?: { snapshots?: Array<{ name: string; 'vm-state-size': number; 'date-sec': number; 'date-nsec': number; 'vm-clock-sec': number; 'vm-clock-nsec': number }> };
}

interface Job {
  id: string;
  status: string;
  error?: string;
}

export class SnapshotError extends Error {}

export class Snapshots {
  private jobs = 0;

  /** `dir`: a private (0700) folder that outlives the guest as long as its snapshots should. */
  constructor(
    private readonly qmp: QmpClient,
    private readonly dir: string,
  ) {}

  /** Save the guest's state as `tag`, replacing a snapshot of that name. */
  async save(tag: string): Promise<void> {
    checkTag(tag);
    const devices = await this.devices();
    if ((await this.list()).some((s) => s.tag === tag)) await this.job('snapshot-delete', { tag, devices });
    await this.job('snapshot-save', { tag, vmstate: VMSTATE_NODE, devices });
  }

  /** Put the guest back in the state saved as `tag`; it stays paused or running as it was. */
  async load(tag: string): Promise<void> {
    checkTag(tag);
    if (!(await this.list()).some((s) => s.tag === tag)) throw new SnapshotError(`there is no snapshot '${tag}'${await this.knownTags()}`);
    await this.job('snapshot-load', { tag, vmstate: VMSTATE_NODE, devices: await this.devices() });
  }

  async delete(tag: string): Promise<void> {
    checkTag(tag);
    if (!(await this.list()).some((s) => s.tag === tag)) throw new SnapshotError(`there is no snapshot '${tag}'${await this.knownTags()}`);
    await this.job('snapshot-delete', { tag, devices: await this.devices() });
  }

  /** The snapshots the state node holds, oldest first; none before the first save. */
  async list(): Promise<SnapshotInfo[]> {
    const node = (await this.nodes()).find((n) => n['node-name'] === VMSTATE_NODE);
    return (node?.image?.snapshots ?? [])
      .map((s) => ({ tag: s.name, vmStateBytes: s['vm-state-size'], date: new Date(s['date-sec'] * 1000 + s['date-nsec'] / 1e6), vmClockSeconds: s['vm-clock-sec'] + s['vm-clock-nsec'] / 1e9 }))
      .sort((a, b) => a.date.getTime() - b.date.getTime());
  }

  private async knownTags(): Promise<string> {
    const tags = (await this.list()).map((s) => s.tag);
    return tags.length ? ` (there are: ${tags.join(', ')})` : ' (none has been saved)';
  }

  private nodes(): Promise<BlockNode[]> {
    return this.qmp.execute<BlockNode[]>('query-named-block-nodes', { flat: true });
  }

  /** The state node (made on first use) and every other writable image, which must all be qcow2. */
  private async devices(): Promise<string[]> {
    let nodes = await this.nodes();
    if (!nodes.some((n) => n['node-name'] === VMSTATE_NODE)) {
      await this.makeStateNode();
      nodes = await this.nodes();
    }
    const formats = nodes.filter((n) => n.drv !== 'file' && n.drv !== 'host_device' && !n.ro && n['node-name'] !== VMSTATE_NODE && !n['node-name'].startsWith('#'));
    const unable = formats.filter((n) => n.drv !== 'qcow2');
    if (unable.length) {
      throw new SnapshotError(`the guest's disk ${unable.map((n) => `'${n['node-name']}' (${n.drv}, ${n.file})`).join(', ')} is writable but not qcow2, so its contents cannot be saved with the state; use a qcow2 image, or attach it read-only`);
    }
    return [VMSTATE_NODE, ...formats.map((n) => n['node-name'])];
  }

  private async makeStateNode(): Promise<void> {
    const file = path.join(this.dir, 'vmstate.qcow2');
    await this.job('blockdev-create', { options: { driver: 'file', filename: file, size: 0 } });
    await this.qmp.execute('blockdev-add', { driver: 'file', 'node-name': VMSTATE_FILE_NODE, filename: file });
    await this.job('blockdev-create', { options: { driver: 'qcow2', file: VMSTATE_FILE_NODE, size: VMSTATE_DISK_BYTES } });
    await this.qmp.execute('blockdev-add', { driver: 'qcow2', 'node-name': VMSTATE_NODE, file: VMSTATE_FILE_NODE });
  }

  /** Run a QMP job to its end: wait for `concluded`, take its error, dismiss it (7.2 leaves it to us). */
  private async job(command: string, args: Record<string, unknown>): Promise<void> {
    const id = `qkd-${command}-${process.pid}-${++this.jobs}`;
    await this.qmp.execute(command, { 'job-id': id, ...args });
    for (;;) {
      const job = (await this.qmp.execute<Job[]>('query-jobs')).find((j) => j.id === id);
      if (!job) throw new SnapshotError(`${command}: the job disappeared before it concluded`);
      if (job.status === 'concluded' || job.status === 'null') {
        await this.qmp.execute('job-dismiss', { id }).catch(() => undefined);
        if (job.error) throw new SnapshotError(`${command}: ${job.error}`);
        return;
      }
      await new Promise((r) => setTimeout(r, JOB_POLL_MS));
    }
  }
}

/** A tag QEMU takes and a shell can pass: no spaces, not empty. */
function checkTag(tag: string): void {
  if (!/^[\w.+-]{1,64}$/.test(tag)) throw new SnapshotError(`'${tag}' is not a snapshot name: use letters, digits, '.', '-', '_' or '+' (at most 64)`);
}
