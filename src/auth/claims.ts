import type { JWTPayload } from 'jose';
import type { ClaimMapping } from '../config/schema.js';
import type { Principal, Subscription, TenantAccess } from './principal.js';

/**
 * Reads a claim by its configured path: the literal name first (claim names such as
 * `https://example.com/roles` contain dots), then as a dot path into nested objects.
 */
export function readClaim(payload: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let current: unknown = payload;
  for (const segment of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/** Arrays of strings, or the OAuth style `"read:a write:b"` (space or comma separated). */
function stringList(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string' && item !== '');
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : typeof value === 'number' ? String(value) : null;
}

function tenantAccessList(value: unknown): TenantAccess[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry): TenantAccess[] => {
    if (typeof entry === 'string') return [{ tenantId: entry, role: null }];
    if (entry && typeof entry === 'object') {
      const record = entry as Record<string, unknown>;
      const tenantId = optionalString(record.tenant_id ?? record.tenantId ?? record.id);
      return tenantId ? [{ tenantId, role: optionalString(record.role) }] : [];
    }
    return [];
  });
}

function subscriptionOf(value: unknown): Subscription | null {
  if (!value || typeof value !== 'object') return null;
  const record = value as Record<string, unknown>;
  const validUntil = record.valid_until ?? record.validUntil;
  let until: number | null = null;
  if (typeof validUntil === 'number') until = validUntil;
  else if (typeof validUntil === 'string' && !Number.isNaN(Date.parse(validUntil))) until = Math.floor(Date.parse(validUntil) / 1000);
  return {
    tier: optionalString(record.tier) ?? 'free',
    status: optionalString(record.status) ?? 'active',
    validUntil: until,
  };
}

/** A verified token's claims as a principal, following the configured claim mapping. */
export function principalFromClaims(payload: JWTPayload, mapping: ClaimMapping): Principal {
  const claims = payload as Record<string, unknown>;
  const subscription = subscriptionOf(readClaim(claims, mapping.subscription));
  return Object.freeze({
    kind: 'user',
    id: optionalString(readClaim(claims, mapping.subject)),
    tenantId: optionalString(readClaim(claims, mapping.tenantId)),
    roles: stringList(readClaim(claims, mapping.roles)),
    permissions: stringList(readClaim(claims, mapping.permissions)),
    tenantAccess: tenantAccessList(readClaim(claims, mapping.tenantAccess)),
    subscription,
    demo: readClaim(claims, mapping.demo) === true,
    readOnly: readClaim(claims, mapping.readOnly) === true,
    issuedAt: typeof payload.iat === 'number' ? payload.iat : null,
    tier: subscription?.tier ?? null,
  });
}
