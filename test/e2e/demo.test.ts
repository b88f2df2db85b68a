// `mailmoat demo --exit` as a new user runs it (a child process, nothing else running): every step
// shows what it is meant to, and the stand-in MTA got the clean message and the released one once.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Browser } from 'puppeteer-core';
import { launchBrowser, signIn } from '../helpers/browser.js';
import { mainScript } from '../helpers/served.js';

function runDemo(): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mainScript, 'demo', '--exit'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('mailmoat demo --exit', function () {
  this.timeout(90000);
  let run: { status: number | null; stdout: string; stderr: string };
  /** the output of step N: from its `N. ` title to the next title or the end of the steps */
  let steps: string[];

  before(async () => {
    run = await runDemo();
    steps = run.stdout.split(/^\d\. /m).slice(1);
  });

  it('exits 0 with five steps, all as expected, and nothing on stderr', () => {
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.equal(run.stderr, '');
    assert.equal(steps.length, 5, run.stdout);
    assert.doesNotMatch(run.stdout, /✘/);
    assert.match(run.stdout, /^All 5 steps went as expected\.$/m);
  });

  it('1: the clean message is relayed', () => {
    assert.match(steps[0], /^A clean message is relayed/);
    assert.match(steps[0], /reply {4}250 2\.0\.0 Ok: queued as STANDIN\d/);
    assert.match(steps[0], /verdict {2}relay, score 0, nothing found/);
    assert.match(steps[0], /result {3}✔ relayed/);
  });

  it('2: the macro document is quarantined, its findings placed in the document', () => {
    assert.match(steps[1], /reply {4}250 2\.0\.0 Ok: quarantined as [0-9A-Z]{26}/);
    assert.match(steps[1], /verdict {2}quarantine, score \d+:/);
    assert.match(steps[1], /OFFICE_MACRO_AUTOEXEC \(\d+\) in invoice-0612\.doc > Macros\/VBA/);
    assert.match(steps[1], /result {3}✔ held in the quarantine/);
  });

  it('3: the outbound message is relayed, the hijacked reply quarantined as SPOOF_HIJACK', () => {
    const replies = [...steps[2].matchAll(/reply {4}(.*)/g)].map((m) => m[1]);
    assert.equal(replies.length, 2, steps[2]);
    assert.match(replies[0], /^250 2\.0\.0 Ok: queued as STANDIN\d/);
    assert.match(replies[1], /^250 2\.0\.0 Ok: quarantined as [0-9A-Z]{26}/);
    assert.match(steps[2], /SPOOF_THREAD_IMPERSONATION \(\d+\)/);
    assert.match(steps[2], /SPOOF_HIJACK/);
    assert.match(steps[2], /result {3}✔/);
  });

  it("4: the internal PC's Word burst: three relayed, the fourth deferred with 451 4.7.1 by the outbound rate", () => {
    const replies = [...steps[3].matchAll(/^ +(\d{3} .*) {2}\[(.*)\]$/gm)].map((m) => ({ reply: m[1], verdict: m[2] }));
    assert.equal(replies.length, 4, steps[3]);
    for (const r of replies.slice(0, 3)) assert.match(r.reply, /^250 2\.0\.0 Ok: queued as STANDIN\d/);
    assert.match(replies[3].reply, /^451 4\.7\.1 /);
    assert.match(replies[3].verdict, /^defer RATE_OFFICE_ATTACHMENTS/);
  });

  it('5: the release goes through the release code and reaches the stand-in MTA', () => {
    const held = /quarantined as ([0-9A-Z]{26})/.exec(steps[1])![1];
    assert.match(steps[4], new RegExp(`release {2}${held} via 127\\.0\\.0\\.1:\\d+`));
    assert.match(steps[4], /reply {4}final: 250 2\.0\.0 Ok: queued as STANDIN\d/);
    assert.match(steps[4], /result {3}✔ delivered once to the stand-in MTA; the item is now "released"/);
  });

  it("the stand-in MTA's list: the clean message and the released invoice exactly once each, the hijacked reply never", () => {
    const received = [...run.stdout.matchAll(/^ {3}STANDIN\d+ +(<[^>]+>) /gm)].map((m) => m[1]);
    const count = (id: string) => received.filter((r) => r === id).length;
    assert.equal(count('<minutes-tuesday@partner.example>'), 1, received.join(' '));
    assert.equal(count('<invoice-0612@supplier.example>'), 1, received.join(' '));
    assert.equal(count('<re-q3-quote@hacked-shop.example>'), 0);
    assert.equal(count('<report-4@example.com>'), 0);
    assert.equal(received.length, 6, 'the note, the quote request, three reports, the released invoice');
    assert.match(run.stdout, /the quarantine holds 1\./);
  });

  it('prints the console URL and a demo login, and removes its temporary files', () => {
    assert.match(run.stdout, /console {2}http:\/\/127\.0\.0\.1:\d+\/ {2}\(user demo, password \S+\)$/m);
    const dir = /files {4}(\S+) /.exec(run.stdout)![1];
    assert.equal(existsSync(dir), false, `${dir} removed`);
  });
});

describe('mailmoat demo, left running: its console in a browser (chromium)', function () {
  this.timeout(120000);
  let browser: Browser;
  let child: ChildProcess | undefined;

  before(async function () {
    browser = await launchBrowser(this);
  });
  after(async () => {
    child?.kill('SIGINT');
    await browser?.close();
  });

  it('signs in with the printed login and shows the quarantined invoice; Ctrl-C stops it and removes its files', async () => {
    child = spawn(process.execPath, [mainScript, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const running = new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (/Ctrl-C stops it/.test(stdout)) resolve();
      });
      child!.once('exit', (code) => reject(new Error(`demo exited ${code}: ${stdout}`)));
    });
    await running;
    const [, url, user, password] = /console {2}(http:\/\/\S+\/) {2}\(user (\S+), password (\S+)\)/.exec(stdout)!;
    const held = /quarantined as ([0-9A-Z]{26})/.exec(stdout)![1];
    const page = await browser.newPage();
    await signIn(page, url.replace(/\/$/, ''), user, password, '/quarantine?state=all');
    const list = await page.content();
    assert.match(list, new RegExp(held), 'the invoice the demo quarantined is listed');
    await page.close();
    const dir = /files {4}(\S+) /.exec(stdout)![1];
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGINT');
    await exited;
    child = undefined;
    assert.equal(existsSync(dir), false, `${dir} removed`);
  });
});
