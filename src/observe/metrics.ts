// The one metrics registry (prom-client), served on /metrics with /healthz beside it when the policy
// names `metrics.listen`. Counters mirror the log's events, so a dashboard and a grep agree.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { memoryBudget } from '../message/memory-budget.js';
import type { Logger } from './log.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'mailmoat_' });

export const metrics = {
  messages: new Counter({
    name: 'mailmoat_messages_total',
    help: 'Messages judged, by front end (smtp, milter) and action (relay, tag, quarantine, defer, reject, error)',
    labelNames: ['front', 'action'] as const,
    registers: [registry],
  }),
  findings: new Counter({
    name: 'mailmoat_findings_total',
    help: 'Findings by symbol (excepted ones not counted)',
    labelNames: ['symbol'] as const,
    registers: [registry],
  }),
  rateAlerts: new Counter({
    name: 'mailmoat_rate_alerts_total',
    help: 'Outbound sender-rate thresholds crossed, by symbol and configured action',
    labelNames: ['symbol', 'action'] as const,
    registers: [registry],
  }),
  stateUnavailable: new Counter({
    name: 'mailmoat_state_unavailable_total',
    help: 'Times shared state (Redis) could not be reached, by component and fail mode',
    labelNames: ['component', 'failMode'] as const,
    registers: [registry],
  }),
  passwordRetries: new Counter({
    name: 'mailmoat_password_retries_total',
    help: 'Held encrypted items tried with the passwords of a separate mail, by outcome (released, held, clean-held, still-locked, gone)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  memoryWaits: new Counter({
    name: 'mailmoat_memory_budget_waits_total',
    help: 'Messages that waited for room in limits.memoryBudget before their inspection, by front end (smtp, milter)',
    labelNames: ['front'] as const,
    registers: [registry],
  }),
  connectionLimits: new Counter({
    name: 'mailmoat_connection_limits_total',
    help: 'Connections refused or closed by a connection bound, by front end (smtp, milter) and bound',
    labelNames: ['front', 'bound'] as const,
    registers: [registry],
  }),
};

// the memory budget as it is when scraped
new Gauge({
  name: 'mailmoat_memory_budget_bytes',
  help: 'Bytes held from limits.memoryBudget: message bytes kept in memory, and messages under inspection at their size',
  registers: [registry],
  collect() {
    this.set(memoryBudget.inUse);
  },
});
new Gauge({
  name: 'mailmoat_memory_budget_waiting',
  help: 'Messages waiting for room in limits.memoryBudget',
  registers: [registry],
  collect() {
    this.set(memoryBudget.waiters);
  },
});

/** Counts one judged message and its findings. */
export function countMessage(front: 'smtp' | 'milter', action: string, findings: { symbol: string; excepted?: string }[] = []): void {
  metrics.messages.inc({ front, action });
  for (const f of findings) if (!f.excepted) metrics.findings.inc({ symbol: f.symbol });
}

export async function startMetricsServer(host: string, port: number, log: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  log.info({ event: 'listening', front: 'metrics', metrics: `${address.address}:${address.port}` }, 'metrics on /metrics, health on /healthz');
  return server;
}
