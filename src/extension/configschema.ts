import type { RequestSchema } from './configcheck';

/** The request schemas this extension contributes, read from its own package.json. */
export function contributedSchemas(packageJSON: unknown): Partial<Record<'launch' | 'attach', RequestSchema>> {
  const debuggers = (packageJSON as { contributes?: { debuggers?: Array<{ type: string; configurationAttributes?: Record<string, RequestSchema> }> } }).contributes?.debuggers ?? [];
  const ours = debuggers.find((d) => d.type === 'qemu-kernel')?.configurationAttributes ?? {};
  return { launch: ours.launch, attach: ours.attach };
}
