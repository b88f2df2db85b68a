// Postfix's own tools as test peers. When they are not installed (a laptop without the Debian
// package `postfix`), the tests that need them are skipped with a message that says so.
import { existsSync } from 'node:fs';

export function postfixTool(name: 'smtp-sink' | 'smtp-source' | 'postfix' | 'postconf'): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/local/sbin', '/usr/bin']) {
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/** `before` hook body: skips the suite unless the tool exists. */
export function requirePostfixTool(context: Mocha.Context, name: Parameters<typeof postfixTool>[0]): string {
  const path = postfixTool(name);
  if (!path) {
    console.log(`      skipped: needs ${name} (Debian package postfix)`);
    context.skip();
  }
  return path;
}
