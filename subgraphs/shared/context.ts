import type { IncomingHttpHeaders } from 'node:http';
import { GraphQLError } from 'graphql';

/** What the gateway told this subgraph about the caller, read from the headers it sets. */
export interface SubgraphContext {
  readonly tenantId: string | null;
  readonly userId: string | null;
  readonly roles: readonly string[];
  readonly permissions: readonly string[];
  readonly requestId: string | null;
  readonly traceparent: string | null;
}

export function contextFromHeaders(headers: IncomingHttpHeaders): SubgraphContext {
  return {
    tenantId: single(headers['x-tenant-id']),
    userId: single(headers['x-user-id']),
    roles: list(headers['x-user-roles']),
    permissions: list(headers['x-user-permissions']),
    requestId: single(headers['x-request-id']),
    traceparent: single(headers['traceparent']),
  };
}

/** Every demo subgraph is multi-tenant: no tenant, no data. */
export function requireTenant(context: SubgraphContext): string {
  if (!context.tenantId) {
    throw new GraphQLError('This subgraph serves tenant data only; no tenant in the request', {
      extensions: { code: 'TENANT_REQUIRED' },
    });
  }
  return context.tenantId;
}

export function requireUser(context: SubgraphContext): string {
  if (!context.userId) {
    throw new GraphQLError('Sign in to do this', { extensions: { code: 'UNAUTHENTICATED' } });
  }
  return context.userId;
}

/** Per-tenant rows: a tenant's lookups can only ever see its own rows. */
export class TenantTable<Row extends { id: string }> {
  private readonly rows = new Map<string, Map<string, Row>>();

  constructor(seed: Record<string, readonly Row[]>) {
    for (const [tenant, rows] of Object.entries(seed)) {
      this.rows.set(tenant, new Map(rows.map((row) => [row.id, { ...row }])));
    }
  }

  all(tenant: string): Row[] {
    return [...(this.rows.get(tenant)?.values() ?? [])];
  }

  get(tenant: string, id: string): Row | null {
    return this.rows.get(tenant)?.get(id) ?? null;
  }

  put(tenant: string, row: Row): Row {
    let table = this.rows.get(tenant);
    if (!table) this.rows.set(tenant, (table = new Map()));
    table.set(row.id, row);
    return row;
  }
}

function single(value: string | string[] | undefined): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function list(value: string | string[] | undefined): string[] {
  const text = single(value);
  return text ? text.split(',').map((s) => s.trim()).filter(Boolean) : [];
}
