// The start-up look at the downstream MTA: connect, read the greeting, QUIT. A gateway whose MTA is
// not there still starts (the MTA may come up later), but the admin must hear at once that every
// message will be deferred until it answers, not find out from a client's 451.
import { formatReply, SmtpClient, type SmtpReply } from './smtp-client.js';

export type ProbeResult = { reachable: true; greeting: SmtpReply } | { reachable: false; reason: string };

/** Never throws: an unreachable or refusing downstream is a result. `timeout` bounds the connect and the greeting each. */
export async function probeDownstream(host: string, port: number, timeout: number): Promise<ProbeResult> {
  let client: SmtpClient;
  try {
    client = await SmtpClient.connect({ host, port, connectTimeout: timeout, commandTimeout: timeout });
  } catch (err) {
    return { reachable: false, reason: (err as Error).message };
  }
  const greeting = client.greeting!;
  await client.quit(); // QUIT, then closed whatever the answer
  // a 554 greeting (RFC 5321 3.1) is "no service here": every transaction would fail just the same
  if (greeting.code !== 220) return { reachable: false, reason: `greeting ${formatReply(greeting)}` };
  return { reachable: true, greeting };
}
