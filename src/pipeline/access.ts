import type { FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.js';
import type { ContextSigner } from '../auth/context-signer.js';
import type { Principal } from '../auth/principal.js';
import type { TenantDecision, TenantGuard } from '../auth/tenant-guard.js';
import type { GatewayContext } from '../context.js';
import type { AuthFailureGuard } from '../ratelimit/auth-failures.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { routeOf } from './caller-context.js';
import { andThen, settle } from './maybe-async.js';
import type { Stage } from './stages.js';

/** Who may call a route. Every destination route declares one; routes without one skip auth. */
export interface RoutePolicy {
  /** `public`: credentials are not even read. `optional`: anonymous admitted, bad credentials refused. */
  readonly auth: 'public' | 'optional' | 'authenticated';
  /** The caller needs at least one of these roles. */
  readonly roles?: readonly string[];
  /** The caller needs all of these permissions. */
  readonly permissions?: readonly string[];
  /** How a read-only tenant's writes are recognised: by HTTP method, or by GraphQL operation type. */
  readonly writes?: 'method' | 'graphql-operation';
  /** Accept a short-lived stream ticket in `?ticket=` (event streams opened by browsers). */
  readonly allowTicket?: boolean;
  /** Requests of this route that carry no operation (e.g. the IDE page) and need no caller. */
  readonly skip?: (request: FastifyRequest) => boolean;
  /**
   * A credential only this route accepts (the `/metrics` scrape token), tried before the usual ones:
   * the caller it returns is checked against the policy like any other; null = not this credential.
   */
  readonly routeCredential?: (request: FastifyRequest) => Principal | null;
}

/** `public` or `authenticated` (with these permissions): how operational routes are configured. */
export type OperationalAuth = 'public' | 'authenticated';

/**
 * Policy of an operational route (`/docs`, `/health/services`): its setting if configured, else
 * authenticated in production (they show upstream URLs, service state, the route table) and public
 * elsewhere.
 */
export function operationalPolicy(auth: OperationalAuth | undefined, permissions: readonly string[], nodeEnv: string): RoutePolicy {
  const effective = auth ?? (nodeEnv === 'production' ? 'authenticated' : 'public');
  return effective === 'public' ? { auth: 'public' } : { auth: 'authenticated', permissions };
}

/** Operational routes count against the caller's buckets like any REST-style route. */
export const OPERATIONAL_RATE_LIMIT = { kind: 'rest' } as const;

declare module 'fastify' {
  interface FastifyContextConfig {
    policy?: RoutePolicy;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface AccessDependencies {
  authenticator: Authenticator;
  authFailures: AuthFailureGuard | null;
  tenantGuard: TenantGuard;
  /** TOKEN_FRESHNESS_ALLOW_MISSING_IAT: tokens without `iat` pass tenant freshness rules. */
  tokenFreshnessAllowMissingIat: boolean;
  signer: ContextSigner;
  metrics: GatewayMetrics;
}

/**
 * Pipeline stages auth → tenant checks → route policy, for every route that declares a policy
 * (GraphQL, REST, streams alike). What they establish replaces the anonymous context the first
 * stage built, together with the signed context token for downstream calls. Returns the stage: it
 * finishes at once when every answer is in memory (a cached token, its principal and context token,
 * tenant flags without Redis) and returns a promise only for what it must wait for.
 */
export function accessControl(deps: AccessDependencies): Stage {
  /** A refused credential is counted, and a 401 counts against the client address, before the refusal goes on. */
  const refused = (request: FastifyRequest, error: unknown): Promise<never> | never => {
    deps.metrics.authAttempts.inc({ result: error instanceof GatewayError ? error.code.toLowerCase() : 'error' });
    if (error instanceof GatewayError && error.status === 401 && deps.authFailures) {
      return deps.authFailures.recordFailure(request.gateway.clientIp).then(() => {
        throw error;
      });
    }
    throw error;
  };

  const admitCaller = (request: FastifyRequest, policy: RoutePolicy, outcome: Authenticated): void | Promise<void> => {
    deps.metrics.authAttempts.inc({ result: outcome.via });
    if (policy.auth === 'authenticated' && outcome.principal.kind === 'anonymous') {
      throw new GatewayError('UNAUTHENTICATED');
    }
    const decision = deps.tenantGuard.check(outcome.principal, request.requestedTenantId, deps.tokenFreshnessAllowMissingIat);
    return andThen(decision, (decided) => applyPolicy(request, policy, decided));
  };

  const applyPolicy = (request: FastifyRequest, policy: RoutePolicy, decision: TenantDecision): void | Promise<void> => {
    const { principal } = decision;
    if (policy.roles?.length && !policy.roles.some((role) => principal.roles.includes(role))) {
      throw new GatewayError('FORBIDDEN', `Requires one of the roles: ${policy.roles.join(', ')}`);
    }
    if (policy.permissions?.length && !policy.permissions.every((p) => principal.permissions.includes(p))) {
      throw new GatewayError('FORBIDDEN', `Requires the permissions: ${policy.permissions.join(', ')}`);
    }
    if (decision.readOnly && (policy.writes ?? 'method') === 'method' && !SAFE_METHODS.has(request.method)) {
      throw new GatewayError('TENANT_READ_ONLY');
    }
    return andThen(deps.signer.sign(principal), (signed) => establish(request, decision, signed));
  };

  return (request, reply) => {
    const policy = routeOf(request).config.policy;
    if (!policy || policy.auth === 'public' || policy.skip?.(request)) return;

    const blockedFor = deps.authFailures?.blockedFor(request.gateway.clientIp) ?? 0;
    if (blockedFor > 0) {
      reply.header('retry-after', String(blockedFor));
      throw new GatewayError('RATE_LIMITED', 'Too many failed authentication attempts; retry later');
    }
    const routeCaller = policy.routeCredential?.(request) ?? null;
    return settle<Authenticated, void>(
      () =>
        routeCaller
          ? { principal: routeCaller, via: 'route_credential' }
          : deps.authenticator.authenticate({
              authorization: request.headers.authorization,
              apiKey: single(request.headers['x-api-key']),
              ticket: policy.allowTicket ? single((request.query as Record<string, string | string[] | undefined>).ticket) : undefined,
            }),
      (authenticated) => admitCaller(request, policy, authenticated),
      (error) => refused(request, error),
    );
  };
}

type Authenticated = { principal: Principal; via: string };

/**
 * The caller, as established, into the request's context. The pipeline owns that object until the
 * route runs: filled in place rather than copied (one object per request, not two).
 */
function establish(request: FastifyRequest, decision: TenantDecision, contextToken: string): void {
  const context = request.gateway as { -readonly [K in keyof GatewayContext]: GatewayContext[K] };
  context.principal = decision.principal;
  context.tenantReadOnly = decision.readOnly;
  context.contextToken = contextToken;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
