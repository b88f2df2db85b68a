// Interop with an MTA-side peer that is not ours: OpenDKIM's `miltertest` (libmilter's constants,
// Lua-scripted conversations) against Mailmoat's milter. Negotiation, the whole conversation with
// the no-reply flags we ask for, and each verdict as miltertest records it (added header, reply
// code, discard, MTA quarantine). Needs the Debian package `miltertest`; skipped with a message otherwise.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startMilter, type RunningMilter } from '../helpers/milter-server.js';

const MILTERTEST = ['/usr/bin/miltertest', '/usr/local/bin/miltertest', '/usr/sbin/miltertest'].find((p) => existsSync(p));

function runScript(dir: string, name: string, lua: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = path.join(dir, `${name}.lua`);
  writeFileSync(file, lua);
  return new Promise((resolve) => {
    execFile(MILTERTEST!, ['-s', file], { timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** A script: connect, negotiate with libmilter's defaults, one message, then `checks` after EOM. */
function script(port: number, subject: string, checks: string, extra = ''): string {
  return `
local conn = mt.connect("inet:${port}@127.0.0.1")
if conn == nil then error("mt.connect failed") end
if mt.negotiate(conn, nil, nil, nil) ~= nil then error("mt.negotiate failed") end
${extra}
if not mt.test_action(conn, SMFIF_ADDHDRS) then error("ADDHDRS not requested") end
if not mt.test_option(conn, SMFIP_NR_HDR) then error("NR_HDR not requested") end
if not mt.test_option(conn, SMFIP_NR_BODY) then error("NR_BODY not requested") end
if not mt.test_option(conn, SMFIP_HDR_LEADSPC) then error("HDR_LEADSPC not requested") end
mt.macro(conn, SMFIC_CONNECT, "j", "mx.test.local", "{client_addr}", "127.0.0.1")
if mt.conninfo(conn, "client.test", "127.0.0.1") ~= nil then error("mt.conninfo failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("conninfo reply") end
if mt.helo(conn, "client.test") ~= nil then error("mt.helo failed") end
mt.macro(conn, SMFIC_MAIL, "i", "QID42", "{auth_authen}", "alice")
if mt.mailfrom(conn, "<alice@internal.test>", "SIZE=1234", "BODY=8BITMIME") ~= nil then error("mt.mailfrom failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("mailfrom reply") end
if mt.rcptto(conn, "<bob@outside.test>", "NOTIFY=FAILURE") ~= nil then error("mt.rcptto failed") end
if mt.rcptto(conn, "<carol@outside.test>") ~= nil then error("mt.rcptto 2 failed") end
if mt.data(conn) ~= nil then error("mt.data failed") end
if mt.header(conn, "From", " Alice <alice@internal.test>") ~= nil then error("mt.header failed") end
if mt.header(conn, "To", " bob@outside.test") ~= nil then error("mt.header failed") end
if mt.header(conn, "Subject", " ${subject}") ~= nil then error("mt.header failed") end
if mt.header(conn, "X-Folded", " one\\n\\ttwo") ~= nil then error("mt.header failed") end
if mt.eoh(conn) ~= nil then error("mt.eoh failed") end
if mt.bodystring(conn, "Hello Bob,\\r\\n") ~= nil then error("mt.bodystring failed") end
if mt.bodystring(conn, "the report.\\r\\n") ~= nil then error("mt.bodystring failed") end
if mt.eom(conn) ~= nil then error("mt.eom failed") end
${checks}
if mt.abort(conn) ~= nil then error("mt.abort failed") end
mt.disconnect(conn)
mt.echo("SCRIPT-OK")
`;
}

describe('interop: miltertest (libmilter MTA side) against the milter', function () {
  let dir: string;
  let m: RunningMilter | undefined;

  before(function () {
    if (!MILTERTEST) {
      console.log('      skipped: needs miltertest (Debian package miltertest)');
      this.skip();
    }
    dir = mkdtempSync(path.join(tmpdir(), 'mailmoat-miltertest-'));
  });

  afterEach(async () => {
    await m?.close();
    m = undefined;
  });

  const rules = [
    'rules.headers=[{symbol: TAG_ME, header: Subject, match: "^tag", action: tag}, {symbol: BAD, header: Subject, match: "^reject", action: reject}, {symbol: LATER, header: Subject, match: "^defer", action: defer}, {symbol: HOLD, header: Subject, match: "^hold", action: quarantine}]',
  ];

  it('a clean message: negotiation, every stage, CONTINUE at EOM and no modification', async () => {
    m = await startMilter(rules);
    const r = await runScript(
      dir,
      'clean',
      script(
        m.port,
        'clean',
        `
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("eom reply " .. mt.getreply(conn)) end
if mt.eom_check(conn, MT_HDRADD) then error("unexpected header added") end
`,
      ),
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SCRIPT-OK/);
    const [line] = await m.waitEvent('message');
    assert.equal(line.verdict, 'relay');
    assert.equal(line.from, 'alice@internal.test');
    assert.deepEqual(line.rcpt, ['bob@outside.test', 'carol@outside.test']);
    assert.equal(line.queueId, 'QID42');
    assert.equal(line.helo, 'client.test');
  });

  it('tag: the X-Mailmoat-Verdict header is added (miltertest sees it), then CONTINUE', async () => {
    m = await startMilter(rules);
    const r = await runScript(
      dir,
      'tag',
      script(
        m.port,
        'tag me',
        `
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("eom reply") end
if not mt.eom_check(conn, MT_HDRADD, "X-Mailmoat-Verdict") then error("no X-Mailmoat-Verdict added") end
local v = mt.getheader(conn, "X-Mailmoat-Verdict", 0)
if v == nil or string.find(v, "tag; score=0; symbols=TAG_ME", 1, true) == nil then error("header value: " .. tostring(v)) end
mt.echo("HEADER=" .. v)
`,
      ),
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /HEADER= tag; score=0; symbols=TAG_ME;\s+id=[0-9A-Z]{26}/);
  });

  it('reject and defer: REPLYCODE with 550 5.7.1 / 451 4.7.1', async () => {
    m = await startMilter(rules);
    const reject = await runScript(
      dir,
      'reject',
      script(
        m.port,
        'reject me',
        `
if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("eom reply " .. mt.getreply(conn)) end
if not mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1") then mt.echo("(smtp reply check not supported)") end
`,
      ),
    );
    assert.equal(reject.code, 0, reject.stdout + reject.stderr);
    const defer = await runScript(
      dir,
      'defer',
      script(
        m.port,
        'defer me',
        `
if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("eom reply " .. mt.getreply(conn)) end
`,
      ),
    );
    assert.equal(defer.code, 0, defer.stdout + defer.stderr);
    const lines = await m.waitEvent('message', 2);
    assert.match(String(lines[0].reply), /^550 5\.7\.1 Message rejected by policy \[/);
    assert.match(String(lines[1].reply), /^451 4\.7\.1 Message deferred by policy/);
  });

  it('quarantine (ours): our durable copy, then DISCARD', async () => {
    const qdir = mkdtempSync(path.join(tmpdir(), 'mailmoat-mt-q-'));
    m = await startMilter([...rules, `quarantine.dir=${qdir}`]);
    const r = await runScript(
      dir,
      'quarantine',
      script(
        m.port,
        'hold me',
        `
if mt.getreply(conn) ~= SMFIR_DISCARD then error("eom reply " .. mt.getreply(conn)) end
`,
      ),
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const [line] = await m.waitEvent('message');
    assert.ok(readdirSync(qdir).includes(`${String(line.id)}.eml`));
  });

  it("quarantine (mta-hold): QUARANTINE with the reason (the MTA's hold queue), then CONTINUE", async () => {
    m = await startMilter([...rules, 'milter.quarantine=mta-hold']);
    const r = await runScript(
      dir,
      'hold',
      script(
        m.port,
        'hold me',
        `
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("eom reply " .. mt.getreply(conn)) end
if not mt.eom_check(conn, MT_QUARANTINE) then error("no quarantine request") end
`,
        `if not mt.test_action(conn, SMFIF_QUARANTINE) then error("QUARANTINE action not requested") end`,
      ),
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});
