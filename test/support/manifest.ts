/** The extension's own package.json, as the tests read it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { contributedSchemas } from '../../src/extension/configschema';
import type { RequestSchema } from '../../src/extension/configcheck';
import { REPO } from './env';

export function manifest(): unknown {
  return JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
}

export function contributedSchemasFromManifest(): Partial<Record<'launch' | 'attach', RequestSchema>> {
  return contributedSchemas(manifest());
}
