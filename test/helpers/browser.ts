// A real browser for the console's tests: Debian's chromium driven by puppeteer-core (which never
// downloads a browser). Without /usr/bin/chromium the suite is skipped with a message naming the
// package; CI installs it (.ci/run).
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { PASSWORD } from './console.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** `before` hook body: the browser, or the suite skipped when chromium is not installed. */
export async function launchBrowser(context: Mocha.Context): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    console.log(`      skipped: needs ${CHROMIUM} (Debian package chromium)`);
    context.skip();
  }
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // root in CI and containers: chromium's sandbox needs user namespaces it may not have there
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
  });
}

/** Signs in through the login form; resolves on the page the console lands on. */
export async function signIn(page: Page, base: string, user: string, password = PASSWORD, next = '/'): Promise<void> {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.type('input[name=user]', user);
  await page.type('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit].primary')]);
}

/** Clicks and waits for the page it leads to. */
export async function clickAndWait(page: Page, selector: string): Promise<void> {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

/** An HTTP server standing for "the Internet": any request reaching it is a leak. */
export async function startRemote(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'image/png' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, hits, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
