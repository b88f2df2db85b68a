import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (holds policies/), from dist/src/cli/ or src/cli/. */
export const packageRoot = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  fileURLToPath(import.meta.url).includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..',
);
export const defaultPolicyFile = path.join(packageRoot, 'policies', 'default.yaml');
