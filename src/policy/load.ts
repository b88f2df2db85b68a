// Reads a policy file, applies `--set` overrides and validates the result with the schema.
// Every problem is reported as `file:line:column: key: what was expected`, the way compilers and
// `postfix check` do, so an admin can jump straight to it.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isMap, isScalar, LineCounter, parseDocument, parse as parseYaml, type Document } from 'yaml';
import type { z } from 'zod';
import { MOVED_OPTIONS, policySchema, type Policy } from './schema.js';

export interface PolicyProblem {
  /** `file:line:column`, or `--set key.path` for a command-line override */
  where: string;
  /** dotted key path, empty for the whole document */
  key: string;
  message: string;
}

export class PolicyError extends Error {
  constructor(
    readonly file: string,
    readonly problems: PolicyProblem[],
  ) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'PolicyError';
  }
}

export function formatProblem(p: PolicyProblem): string {
  return `${p.where}: ${p.key ? p.key + ': ' : ''}${p.message}`;
}

export interface LoadedPolicy {
  policy: Policy;
  /** short hash of the effective policy: logged on every (re)load */
  version: string;
  file: string;
}

/** `KEY.PATH=VALUE`; VALUE is read as YAML, so `5`, `true`, `[a.example, b.example]` work. */
export function parseOverride(text: string): { path: string[]; value: unknown } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new PolicyError('--set', [{ where: `--set ${text}`, key: '', message: 'expected KEY.PATH=VALUE' }]);
  const path = text.slice(0, eq).split('.');
  if (path.some((p) => p === '')) {
    throw new PolicyError('--set', [{ where: `--set ${text}`, key: '', message: 'empty key in KEY.PATH' }]);
  }
  let value: unknown;
  try {
    value = parseYaml(text.slice(eq + 1));
  } catch (err) {
    throw new PolicyError('--set', [{ where: `--set ${text}`, key: path.join('.'), message: (err as Error).message }]);
  }
  return { path, value: value ?? null };
}

export function loadPolicy(file: string, overrides: string[] = []): LoadedPolicy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PolicyError(file, [{ where: file, key: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  return parsePolicy(text, file, overrides);
}

export function parsePolicy(text: string, file: string, overrides: string[] = []): LoadedPolicy {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length) {
    throw new PolicyError(
      file,
      doc.errors.map((e) => ({ where: at(e.pos[0]), key: '', message: e.message.split('\n')[0] })),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new PolicyError(file, [{ where: `${file}:1:1`, key: '', message: 'expected a mapping of policy options' }]);
  }
  const applied = overrides.map(parseOverride);
  for (const o of applied) setPath(raw as Record<string, unknown>, o.path, o.value);

  const result = policySchema.safeParse(raw);
  if (!result.success) {
    throw new PolicyError(
      file,
      result.error.issues.flatMap((issue) => describeIssue(issue, doc, at, file, applied)),
    );
  }
  return { policy: result.data, version: policyVersion(result.data), file };
}

function describeIssue(issue: z.core.$ZodIssue, doc: Document, at: (offset: number) => string, file: string, overrides: { path: string[] }[]): PolicyProblem[] {
  const path = issue.path.map(String);
  const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...path, k]) : [path];
  return keys.map((keyPath) => {
    const key = keyPath.join('.');
    const override = overrides.find((o) => startsWith(keyPath, o.path) || startsWith(o.path, keyPath));
    const moved = MOVED_OPTIONS[key];
    const message = issue.code === 'unrecognized_keys' ? (moved ? `moved: this option is now ${moved}` : 'unknown option') : explain(issue);
    if (override) return { where: `--set ${override.path.join('.')}`, key, message };
    return { where: locate(doc, keyPath, at, file), key, message };
  });
}

function explain(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
    return `required, expected ${issue.expected}`;
  }
  if (issue.code === 'invalid_value') return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator') {
    return `${issue.message}`;
  }
  return issue.message;
}

/** Position of the deepest node on `path` that exists in the file (the key itself where possible). */
function locate(doc: Document, path: string[], at: (offset: number) => string, file: string): string {
  for (let depth = path.length; depth > 0; depth--) {
    const parent = depth === 1 ? doc.contents : doc.getIn(path.slice(0, depth - 1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === path[depth - 1]);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) return at(range[0]);
    }
    const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return at(node.range[0]);
  }
  return `${file}:1:1`;
}

function startsWith(path: string[], prefix: string[]): boolean {
  return prefix.length <= path.length && prefix.every((p, i) => path[i] === p);
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

export function policyVersion(policy: Policy): string {
  return createHash('sha256').update(stableJson(policy)).digest('hex').slice(0, 12);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
