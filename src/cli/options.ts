/** Option tables shared by the qkd subcommands. */
export const LAUNCH_OPTIONS = {
  kernel: { type: 'string' },
  vmlinux: { type: 'string' },
  initrd: { type: 'string' },
  initramfs: { type: 'string' },
  append: { type: 'string' },
  arch: { type: 'string' },
  memory: { type: 'string' },
  smp: { type: 'string' },
  accel: { type: 'string' },
  kaslr: { type: 'string' },
  qemu: { type: 'string' },
  'console-log': { type: 'string' },
  'rsp-log': { type: 'string' },
  'module-path': { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
