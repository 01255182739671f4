import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { startStack } from '../helpers/stack.js';

/**
 * @apollo/gateway sends anonymous usage data to Apollo over HTTPS unless APOLLO_TELEMETRY_DISABLED is
 * set when it is constructed. A self-hosted gateway does not call out unasked: starting one without
 * the variable sets it to 'true' first; an operator's own value is left alone.
 */

/** Hosts this process opens HTTP(S) requests to while `work` runs (Node's own diagnostics channel). */
async function requestedHosts(work: () => Promise<void>): Promise<string[]> {
  const hosts: string[] = [];
  const onStart = (message: unknown) => {
    const request = (message as { request: ClientRequest }).request;
    hosts.push(String(request.getHeader('host') ?? request.host));
  };
  subscribe('http.client.request.start', onStart);
  try {
    await work();
  } finally {
    unsubscribe('http.client.request.start', onStart);
  }
  return hosts;
}
const original = process.env.APOLLO_TELEMETRY_DISABLED;
afterEach(() => {
  if (original === undefined) delete process.env.APOLLO_TELEMETRY_DISABLED;
  else process.env.APOLLO_TELEMETRY_DISABLED = original;
});

describe('APOLLO_TELEMETRY_DISABLED', () => {
  it('is set to true by a gateway started without it', async () => {
    delete process.env.APOLLO_TELEMETRY_DISABLED;
    const stack = await startStack({ definitions: [catalogSubgraph()], env: { DEFAULT_TENANT_ID: 'acme' } });
    try {
      expect(process.env.APOLLO_TELEMETRY_DISABLED).toBe('true');
    } finally {
      await stack.close();
    }
  });

  it('is set before @apollo/gateway reads it: nothing is sent to Apollo, nor cloud metadata asked, from start to stop', async () => {
    delete process.env.APOLLO_TELEMETRY_DISABLED;
    // With telemetry on, the gateway's constructor probes cloud metadata endpoints for its report and
    // stopping it flushes the report to Apollo: both are HTTP requests from this process.
    const hosts = await requestedHosts(async () => {
      const stack = await startStack({ definitions: [catalogSubgraph()], env: { DEFAULT_TENANT_ID: 'acme' } });
      await stack.close();
    });
    expect(hosts.filter((host) => !/^(127\.0\.0\.1|localhost)(:\d+)?$/.test(host))).toEqual([]);
  });

  it("keeps the operator's value", async () => {
    process.env.APOLLO_TELEMETRY_DISABLED = '1';
    const stack = await startStack({ definitions: [catalogSubgraph()], env: { DEFAULT_TENANT_ID: 'acme' } });
    try {
      expect(process.env.APOLLO_TELEMETRY_DISABLED).toBe('1');
    } finally {
      await stack.close();
    }
  });
});
