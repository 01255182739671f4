import { afterEach, describe, expect, it } from 'vitest';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { startStack } from '../helpers/stack.js';

/**
 * @apollo/gateway sends anonymous usage data to Apollo over HTTPS unless APOLLO_TELEMETRY_DISABLED is
 * set when it is constructed. A self-hosted gateway does not call out unasked: starting one without
 * the variable sets it to 'true' first; an operator's own value is left alone.
 */
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
