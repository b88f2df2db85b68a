// Release and trust the sender in the console, in a real browser (chromium): a partner's genuine
// reply through his company's new mailing service is held as a spoof; the admin releases it from the
// item page, ticking "Trust the sender" (which names what will be learned); the next reply that way
// is relayed, while the same reply from someone else's servers is still held; taken back from the
// item's page, the next reply that way is held again. The console runs
// beside the gateway on its state, as inside `mailmoat serve`.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { Browser, Page } from 'puppeteer-core';
import { connect, text, transaction } from '../helpers/client.js';
import { clickAndWait, launchBrowser, signIn } from '../helpers/browser.js';
import { startConsoleRig, type ConsoleRig } from '../helpers/console.js';
import { ESP_BOUNCE, HOSTS } from '../fixtures/mail/senders.js';
import { buildMessage } from '../fixtures/mail/threads.js';

const US = 'Alice Walker <alice@internal.test>';
const BOB = 'bob.smith@partner.example';
const THREAD = 'q3-order-trust@internal.test';

describe('console: release and trust the sender (chromium)', function () {
  this.timeout(120_000);
  let browser: Browser;
  let rig: ConsoleRig;
  let page: Page;

  before(async function () {
    browser = await launchBrowser(this);
    // no DNS from the test run: what the servers are is their network and envelope
    rig = await startConsoleRig([], ['spoof.authentication=false']);
    page = await (await browser.createBrowserContext()).newPage();
  });

  after(async () => {
    await browser?.close();
    await rig?.close();
  });

  const reply = (n: number) =>
    buildMessage({
      from: `Bob Smith <${BOB}>`,
      to: US,
      subject: 'RE: Q3 order',
      body: `Invoice ${n} attached.`,
      inReplyTo: THREAD,
      references: [THREAD],
    });

  async function sendIn(host: { address: string; helo: string }, mailFrom: string, bytes: Buffer): Promise<{ held?: string; symbols: string[] }> {
    const client = await connect(rig.gw.port, 'mx.test');
    try {
      assert.equal((await client.command(`XFORWARD ADDR=${host.address} HELO=${host.helo}`)).code, 250);
      assert.equal((await client.command(`MAIL FROM:<${mailFrom}>`)).code, 250);
      assert.equal((await client.command('RCPT TO:<alice@internal.test>')).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      const answer = await client.sendMessage(Readable.from([bytes]), 30_000);
      return { held: /quarantined as ([0-9A-Z]{26})/.exec(text(answer))?.[1], symbols: rig.gw.events('message').at(-1)!.symbols as string[] };
    } finally {
      await client.quit();
    }
  }

  it('the confirmation names what will be trusted; once released and trusted, the next reply that way is relayed and other servers are still held', async () => {
    const out = await transaction(
      rig.gw.port,
      'MAIL FROM:<alice@internal.test>',
      [`RCPT TO:<${BOB}>`],
      buildMessage({ from: US, to: `Bob Smith <${BOB}>`, subject: 'Q3 order', body: 'Please quote.', messageId: THREAD }),
    );
    assert.equal(out.data?.code, 250, text(out.data));
    const genuine = await sendIn(HOSTS.partner, BOB, reply(0));
    assert.equal(genuine.held, undefined, genuine.symbols.join(','));
    const held = await sendIn(HOSTS.esp, ESP_BOUNCE, reply(1));
    assert.ok(held.held && held.symbols.includes('SPOOF_KNOWN_SENDER_NEW_INFRA'), held.symbols.join(','));

    const base = rig.console.url;
    await signIn(page, base, 'admin', undefined, `/quarantine/${held.held}`);
    await clickAndWait(page, 'form.actions button[value=release]');
    const offer = await page.$eval('input[name=trust]', (input) => input.closest('label')?.textContent ?? '');
    assert.match(offer, new RegExp(`Trust the sender: .*${BOB.replace(/\./g, '\\.')}.* net:198\\.18\\.0\\.0/24, env:esp-mailer\\.example`), offer);
    await page.click('input[name=trust]');
    await clickAndWait(page, 'form button.primary[type=submit]');
    const results = await page.$eval('table.results', (t) => t.textContent ?? '');
    assert.match(results, /released/);
    assert.match(
      results,
      new RegExp(`sender trusted.*${BOB.replace(/\./g, '\\.')}, partner\\.example: net:198\\.18\\.0\\.0/24, env:esp-mailer\\.example`, 's'),
    );
    const meta = await rig.console.store.get(held.held);
    assert.ok(meta.history.some((h) => h.event === 'sender-trusted' && h.by === 'admin'));

    const next = await sendIn(HOSTS.esp, ESP_BOUNCE, reply(2));
    assert.equal(next.held, undefined, `trusted servers: ${next.symbols.join(',')}`);
    const other = await sendIn(HOSTS.attacker, 'x@hacked-shop.example', reply(3));
    assert.ok(other.held, `someone else's servers: ${other.symbols.join(',')}`);

    // taken back from the item's page: the next reply that way is held again
    await page.goto(`${base}/quarantine/${held.held}`);
    const trustedNow = await page.$eval('form.untrust', (f) => f.textContent ?? '');
    assert.match(trustedNow, /is trusted to send through net:198\.18\.0\.0\/24, env:esp-mailer\.example/);
    await clickAndWait(page, 'form.untrust button');
    assert.match(await page.$eval('table.results', (t) => t.textContent ?? ''), /trust taken back/);
    const again = await sendIn(HOSTS.esp, ESP_BOUNCE, reply(4));
    assert.ok(again.held, `no longer trusted: ${again.symbols.join(',')}`);
    await page.goto(`${base}/quarantine/${held.held}`);
    assert.equal(await page.$('form.untrust'), null, 'nothing left to take back');
  });

  it('a message held for its content alone offers no trust (nothing it came through was kept: our own outbound mail)', async () => {
    const id = await rig.hold(Buffer.from('From: alice@internal.test\r\nTo: bob@outside.test\r\nSubject: hold me\r\n\r\nHello.\r\n'));
    await page.goto(`${rig.console.url}/quarantine/${id}`);
    await clickAndWait(page, 'form.actions button[value=release]');
    assert.equal(await page.$('input[name=trust]'), null);
  });
});
