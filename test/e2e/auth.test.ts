import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { SignJWT, base64url, generateKeyPair } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TEST_AUDIENCE, TEST_ISSUER, TestIssuer } from '../helpers/issuer.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';

/** A real JWKS endpoint on port 0 that can be taken down and counts its fetches. */
async function startJwksServer(issuer: TestIssuer) {
  let down = false;
  let fetches = 0;
  const server: Server = createServer(async (_request, response) => {
    fetches++;
    if (down) {
      response.writeHead(503).end('unavailable');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(await issuer.jwks()));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    get fetches() {
      return fetches;
    },
    setDown: (value: boolean) => (down = value),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const logLines: string[] = [];
const logStream = new Writable({
  write(chunk, _encoding, done) {
    logLines.push(String(chunk));
    done();
  },
});

let issuer: TestIssuer;
let jwks: Awaited<ReturnType<typeof startJwksServer>>;
let stack: Stack;
const contextTokensSeen: string[] = [];
let accountsCalls = 0;

beforeAll(async () => {
  issuer = await TestIssuer.create('RS256');
  jwks = await startJwksServer(issuer);
  stack = await startStack({
    issuer,
    logger: { level: 'info', stream: logStream },
    env: {
      JWT_PUBLIC_KEY: '',
      JWT_JWKS_URL: jwks.url,
      JWT_ALGORITHMS: 'RS256,ES256',
      JWT_JWKS_COOLDOWN_SECONDS: '1',
      SUBSCRIPTION_GRACE_SECONDS: '86400',
      DEFAULT_TENANT_ID: 'acme',
    },
    configure: {
      accounts: {
        configure: (app) =>
          app.addHook('onRequest', async (request) => {
            accountsCalls++;
            const token = request.headers['x-gateway-context'];
            if (typeof token === 'string') contextTokensSeen.push(token);
          }),
      },
    },
    routes: (app) => {
      // A REST-style route behind the same pipeline (the REST proxy plugs in the same way).
      app.route({
        method: ['GET', 'POST'],
        url: '/api/v1/echo',
        config: { policy: { auth: 'authenticated' } },
        handler: async (request) => ({ principal: request.gateway.principal }),
      });
      app.get('/api/v1/admin', { config: { policy: { auth: 'authenticated', roles: ['admin'] } } }, async () => ({ ok: true }));
    },
  });
});
afterAll(async () => {
  await stack.close();
  await jwks.close();
});
beforeEach(() => jwks.setDown(false));

const now = () => Math.floor(Date.now() / 1000);
const WHOAMI = { query: '{ whoami { userId tenantId roles } }' };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function expectRefused(headers: Record<string, string>, status: number, code: string) {
  const graphql = await postGraphQL(stack.url, WHOAMI, headers);
  expect(graphql.status).toBe(status);
  expect(graphql.body.errors?.[0]?.extensions?.code).toBe(code);
  expect(graphql.body.data).toBeUndefined();

  const rest = await fetch(`${stack.url}/api/v1/echo`, { headers });
  expect(rest.status).toBe(status);
  expect(rest.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = (await rest.json()) as { code: string; status: number };
  expect(problem).toMatchObject({ code, status });
  if (status === 401) {
    expect(graphql.headers.get('www-authenticate')).toMatch(/^Bearer realm="gateway"/);
    expect(rest.headers.get('www-authenticate')).toMatch(/^Bearer realm="gateway"/);
  }
  return { graphql, rest };
}

describe('attack corpus: every forged or broken credential is refused with the right code', () => {
  it('alg: none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify({ sub: 'u-acme-1', tenant_id: 'acme', iss: TEST_ISSUER, aud: TEST_AUDIENCE, exp: now() + 600 }));
    await expectRefused(bearer(`${header}.${payload}.`), 401, 'INVALID_TOKEN');
  });

  it('HS256 signed with the RSA public key (algorithm confusion)', async () => {
    const publicPem = await issuer.publicKeyPem();
    const forged = await new SignJWT({ sub: 'u-acme-1', tenant_id: 'acme', roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256', kid: issuer.current.kid })
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(publicPem));
    await expectRefused(bearer(forged), 401, 'INVALID_TOKEN');
  });

  it('expired', async () => {
    const { rest } = await expectRefused(bearer(await issuer.mint({ iat: now() - 7200, exp: now() - 3600 })), 401, 'TOKEN_EXPIRED');
    expect(rest.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('not valid yet (nbf in the future)', async () => {
    await expectRefused(bearer(await issuer.mint({ nbf: now() + 3600 })), 401, 'INVALID_TOKEN');
  });

  it('wrong issuer and wrong audience', async () => {
    await expectRefused(bearer(await issuer.mint({ iss: 'https://evil.test' })), 401, 'INVALID_TOKEN');
    await expectRefused(bearer(await issuer.mint({ aud: 'someone-else' })), 401, 'INVALID_TOKEN');
  });

  it('signed by a key the IdP never published (unknown kid)', async () => {
    const stranger = await TestIssuer.create('RS256');
    await expectRefused(bearer(await stranger.mint({}, { kid: 'key-404' })), 401, 'INVALID_TOKEN');
  });

  it('issued in the future, beyond the clock tolerance (within it is accepted)', async () => {
    await expectRefused(bearer(await issuer.mint({ iat: now() + 600, exp: now() + 3600 })), 401, 'INVALID_TOKEN');
    expect((await postGraphQL(stack.url, WHOAMI, bearer(await issuer.mint({ iat: now() + 10 })))).status).toBe(200);
  });

  it('tampered payload', async () => {
    const [header, , signature] = (await issuer.mint()).split('.');
    const payload = base64url.encode(JSON.stringify({ sub: 'u-acme-1', tenant_id: 'globex', iss: TEST_ISSUER, aud: TEST_AUDIENCE, exp: now() + 600 }));
    await expectRefused(bearer(`${header}.${payload}.${signature}`), 401, 'INVALID_TOKEN');
  });

  it('truncated, garbage and oversized tokens', async () => {
    const token = await issuer.mint();
    await expectRefused(bearer(token.slice(0, -12)), 401, 'INVALID_TOKEN');
    await expectRefused(bearer('abc.def.ghi'), 401, 'INVALID_TOKEN');
    await expectRefused(bearer('x'.repeat(9_000)), 401, 'INVALID_TOKEN');
  });

  it('an Authorization header without the Bearer scheme', async () => {
    const token = await issuer.mint();
    await expectRefused({ authorization: token }, 401, 'INVALID_TOKEN');
    await expectRefused({ authorization: 'Basic YWxpY2U6c2VjcmV0' }, 401, 'INVALID_TOKEN');
  });

  it('a token for tenant B asking for tenant A', async () => {
    const globexUser = await issuer.mint({ sub: 'u-globex-1', tenant_id: 'globex', tenant_access: [{ tenant_id: 'globex', role: 'admin' }] });
    await expectRefused({ ...bearer(globexUser), 'x-tenant-id': 'acme' }, 403, 'TENANT_ACCESS_DENIED');
  });

  it('no credentials on a route that requires them', async () => {
    const rest = await fetch(`${stack.url}/api/v1/echo`);
    expect(rest.status).toBe(401);
    expect(rest.headers.get('www-authenticate')).toBe('Bearer realm="gateway"');
    expect(((await rest.json()) as { code: string }).code).toBe('UNAUTHENTICATED');
  });

  it('the gateway still serves normally after the whole corpus, and never logged a token', async () => {
    const token = await issuer.mint({ roles: ['admin'] });
    const { body } = await postGraphQL(stack.url, WHOAMI, bearer(token));
    expect(body.data).toEqual({ whoami: { userId: 'u-acme-1', tenantId: 'acme', roles: ['admin'] } });
    const logs = logLines.join('');
    expect(logs).toContain('"reqId"');
    expect(logs).not.toContain(token.split('.')[2]);
    expect(logs).not.toMatch(/authorization/i);
  });
});

describe('tenants', () => {
  it('switches to another tenant the token grants, with that tenant role', async () => {
    const token = await issuer.mint({
      roles: ['admin'],
      permissions: ['read:orders'],
      tenant_access: [
        { tenant_id: 'acme', role: 'admin' },
        { tenant_id: 'globex', role: 'viewer' },
      ],
    });
    const { body } = await postGraphQL(stack.url, { query: '{ whoami { userId tenantId roles permissions } }' }, { ...bearer(token), 'x-tenant-id': 'globex' });
    // Token-wide permissions were issued for the home tenant: they do not travel.
    expect(body.data).toEqual({ whoami: { userId: 'u-acme-1', tenantId: 'globex', roles: ['viewer'], permissions: [] } });
  });

  it('refuses a token issued before the tenant subscription changed (TOKEN_STALE), accepts a fresh one', async () => {
    const old = await issuer.mint({ sub: 'u-globex-2', tenant_id: 'globex', iat: now() - 600 });
    await stack.gateway.tenantFlags.markSubscriptionChanged('globex', now() - 60);
    await expectRefused(bearer(old), 401, 'TOKEN_STALE');
    const fresh = await issuer.mint({ sub: 'u-globex-2', tenant_id: 'globex' });
    expect((await postGraphQL(stack.url, WHOAMI, bearer(fresh))).status).toBe(200);
  });

  it('a token without iat cannot prove it is fresh: TOKEN_STALE once its tenant has a freshness rule', async () => {
    const noIat = await issuer.mint({ sub: 'u-initech-1', tenant_id: 'initech', iat: undefined });
    expect(JSON.parse(Buffer.from(noIat.split('.')[1]!, 'base64url').toString())).not.toHaveProperty('iat');
    // No rule for the tenant yet: nothing to prove.
    expect((await postGraphQL(stack.url, WHOAMI, bearer(noIat))).status).toBe(200);
    await stack.gateway.tenantFlags.markSubscriptionChanged('initech', now() - 60);
    await expectRefused(bearer(noIat), 401, 'TOKEN_STALE');
    const fresh = await issuer.mint({ sub: 'u-initech-1', tenant_id: 'initech' });
    expect((await postGraphQL(stack.url, WHOAMI, bearer(fresh))).status).toBe(200);
  });

  it('read-only tenant: queries pass, mutations and REST writes are refused', async () => {
    const token = await issuer.mint({ tenant_id: 'acme', roles: ['admin'], permissions: ['write:orders'] });
    await stack.gateway.tenantFlags.setReadOnly('acme', true);
    try {
      const mutation = await postGraphQL(
        stack.url,
        { query: 'mutation { restock(upc: "acme-anvil", quantity: 1) { quantity } }' },
        bearer(token),
      );
      expect(mutation.status).toBe(403);
      expect(mutation.body.errors?.[0]?.extensions?.code).toBe('TENANT_READ_ONLY');
      const read = await postGraphQL(stack.url, { query: '{ products(first: 1) { upc } }' }, bearer(token));
      expect(read.body).toEqual({ data: { products: [{ upc: 'acme-anvil' }] } });

      const post = await fetch(`${stack.url}/api/v1/echo`, { method: 'POST', headers: bearer(token) });
      expect(post.status).toBe(403);
      expect(((await post.json()) as { code: string }).code).toBe('TENANT_READ_ONLY');
      expect((await fetch(`${stack.url}/api/v1/echo`, { headers: bearer(token) })).status).toBe(200);
    } finally {
      await stack.gateway.tenantFlags.setReadOnly('acme', false);
    }
  });

  it('a read_only claim in the token works the same way', async () => {
    const token = await issuer.mint({ read_only: true });
    const mutation = await postGraphQL(stack.url, { query: 'mutation { restock(upc: "acme-anvil", quantity: 1) { quantity } }' }, bearer(token));
    expect(mutation.body.errors?.[0]?.extensions?.code).toBe('TENANT_READ_ONLY');
  });

  it('an expired subscription works during the grace period, then is refused', async () => {
    const inGrace = await issuer.mint({ subscription: { tier: 'pro', status: 'expired', valid_until: now() - 3600 } });
    expect((await postGraphQL(stack.url, WHOAMI, bearer(inGrace))).status).toBe(200);
    const lapsed = await issuer.mint({ subscription: { tier: 'pro', status: 'expired', valid_until: now() - 2 * 86400 } });
    await expectRefused(bearer(lapsed), 403, 'SUBSCRIPTION_EXPIRED');
  });

  it('route roles: a non-admin is refused with 403 FORBIDDEN', async () => {
    const viewer = await issuer.mint({ roles: ['viewer'] });
    const refused = await fetch(`${stack.url}/api/v1/admin`, { headers: bearer(viewer) });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { code: string }).code).toBe('FORBIDDEN');
    const admin = await issuer.mint({ roles: ['admin'] });
    expect((await fetch(`${stack.url}/api/v1/admin`, { headers: bearer(admin) })).status).toBe(200);
  });

  it('passes subscription tier and demo flag downstream', async () => {
    const token = await issuer.mint({ demo: true, subscription: { tier: 'enterprise', status: 'active' } });
    const echo = (await (await fetch(`${stack.url}/api/v1/echo`, { headers: bearer(token) })).json()) as {
      principal: { demo: boolean; subscription: { tier: string } };
    };
    expect(echo.principal).toMatchObject({ demo: true, subscription: { tier: 'enterprise' } });
  });
});

describe('JWKS key source', () => {
  it('caches verified tokens: the second use skips verification', async () => {
    const token = await issuer.mint({ sub: 'u-acme-2' });
    const hits = async () => (await stack.gateway.metrics.authCacheHits.get()).values[0]?.value ?? 0;
    const before = await hits();
    await postGraphQL(stack.url, WHOAMI, bearer(token));
    await postGraphQL(stack.url, WHOAMI, bearer(token));
    expect(await hits()).toBe(before + 1);
  });

  it('accepts a token with a rotated key after one refetch, and rate-limits refetches', async () => {
    await postGraphQL(stack.url, WHOAMI, bearer(await issuer.mint()));
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the 1 s cooldown
    // Tokens with unknown kids, minted up front: signing is slow on a loaded machine, and only the
    // requests themselves should fall inside the cooldown window measured below.
    const stranger = await TestIssuer.create('RS256');
    const strangers = await Promise.all(Array.from({ length: 10 }, () => stranger.mint({}, { kid: `nope-${Math.random()}` })));
    const before = jwks.fetches;
    await issuer.rotate();
    const rotated = await issuer.mint();
    const { body } = await postGraphQL(stack.url, WHOAMI, bearer(rotated));
    const refetchedAt = Date.now();
    expect(body.data).toMatchObject({ whoami: { userId: 'u-acme-1' } });
    expect(jwks.fetches).toBe(before + 1);

    // A burst of tokens with unknown kids right after: no further fetch during the cooldown. On a
    // machine slow enough for the burst to outlast the 1 s cooldown, one fetch per elapsed second.
    const burst = await Promise.all(strangers.map(async (token) => (await postGraphQL(stack.url, WHOAMI, bearer(token))).status));
    const cooldownsElapsed = Math.floor((Date.now() - refetchedAt) / 1_000);
    expect(burst.every((status) => status === 401)).toBe(true);
    expect(jwks.fetches - (before + 1)).toBeLessThanOrEqual(cooldownsElapsed);
  });

  it('IdP down: known keys keep working, unknown keys get 401 (not 500)', async () => {
    const known = await issuer.mint({ sub: 'u-acme-2', jti: 'fresh' });
    jwks.setDown(true);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await postGraphQL(stack.url, WHOAMI, bearer(known))).status).toBe(200);
    const stranger = await TestIssuer.create('RS256');
    await expectRefused(bearer(await stranger.mint({}, { kid: 'during-outage' })), 401, 'INVALID_TOKEN');
  });
});

describe('field-level authorization (@authenticated, @requiresScopes)', () => {
  it('anonymous: @authenticated fields are null with an error, the rest of the query runs', async () => {
    const { status, body } = await postGraphQL(stack.url, { query: '{ products(first: 1) { upc } users { id email } }' });
    expect(status).toBe(200);
    expect(body.data).toEqual({
      products: [{ upc: 'acme-anvil' }],
      users: [
        { id: 'u-acme-1', email: null },
        { id: 'u-acme-2', email: null },
      ],
    });
    // One error per denied occurrence, at its path with the list index.
    expect(body.errors).toEqual([
      expect.objectContaining({ path: ['users', 0, 'email'], extensions: expect.objectContaining({ code: 'UNAUTHORIZED_FIELD_OR_TYPE' }) }),
      expect.objectContaining({ path: ['users', 1, 'email'], extensions: expect.objectContaining({ code: 'UNAUTHORIZED_FIELD_OR_TYPE' }) }),
    ]);
  });

  it('anonymous callers cannot pick a tenant other than the default', async () => {
    const { status, body } = await postGraphQL(stack.url, WHOAMI, { 'x-tenant-id': 'globex' });
    expect(status).toBe(403);
    expect(body.errors?.[0]?.extensions?.code).toBe('TENANT_ACCESS_DENIED');
  });

  it('signed-in callers see @authenticated fields; scopes gate @requiresScopes fields', async () => {
    const viewer = await issuer.mint({ roles: ['viewer'], permissions: [] });
    const viewed = await postGraphQL(stack.url, { query: '{ users { id email } orders { id internalNotes } }' }, bearer(viewer));
    expect(viewed.body.data).toEqual({
      users: [
        { id: 'u-acme-1', email: 'alice@acme.test' },
        { id: 'u-acme-2', email: 'bob@acme.test' },
      ],
      orders: [
        { id: 'o-acme-1', internalNotes: null },
        { id: 'o-acme-2', internalNotes: null },
      ],
    });
    expect(viewed.body.errors).toEqual([
      expect.objectContaining({ path: ['orders', 0, 'internalNotes'], extensions: expect.objectContaining({ code: 'UNAUTHORIZED_FIELD_OR_TYPE' }) }),
      expect.objectContaining({ path: ['orders', 1, 'internalNotes'], extensions: expect.objectContaining({ code: 'UNAUTHORIZED_FIELD_OR_TYPE' }) }),
    ]);

    // Same operation text for an admin: a different plan, not the viewer's cached one.
    const admin = await issuer.mint({ roles: ['admin'] });
    const administered = await postGraphQL(stack.url, { query: '{ users { id email } orders { id internalNotes } }' }, bearer(admin));
    expect(administered.body.errors).toBeUndefined();
    expect((administered.body.data as { orders: { internalNotes: string | null }[] }).orders[0]!.internalNotes).toBe(
      'Customer asked for gift wrapping',
    );
    // …and the viewer again still gets nothing (no plan leaks back either).
    const again = await postGraphQL(stack.url, { query: '{ users { id email } orders { id internalNotes } }' }, bearer(viewer));
    expect((again.body.data as { orders: { internalNotes: string | null }[] }).orders[0]!.internalNotes).toBeNull();
  });

  it('a permission-gated list comes back null inside fragments and aliases too', async () => {
    const query = 'query { me { ...Me } } fragment Me on User { name history: orders { id } }';
    const without = await postGraphQL(stack.url, { query }, bearer(await issuer.mint({ permissions: [] })));
    expect(without.body.data).toEqual({ me: { name: 'Alice Adams', history: null } });
    expect(without.body.errors?.[0]).toMatchObject({ path: ['me', 'history'], extensions: { code: 'UNAUTHORIZED_FIELD_OR_TYPE' } });
    const withPermission = await postGraphQL(stack.url, { query }, bearer(await issuer.mint({ permissions: ['read:orders'] })));
    expect(withPermission.body).toEqual({ data: { me: { name: 'Alice Adams', history: [{ id: 'o-acme-1' }] } } });
  });

  it('when nothing authorized is left, no subgraph is called', async () => {
    const before = accountsCalls;
    const anonymousWithTenant = await postGraphQL(stack.url, { query: '{ users { email } }' });
    expect(anonymousWithTenant.body.data).toBeNull();
    expect(anonymousWithTenant.body.errors).toEqual([
      expect.objectContaining({ path: ['users', 'email'], extensions: expect.objectContaining({ code: 'UNAUTHORIZED_FIELD_OR_TYPE' }) }),
    ]);
    expect(accountsCalls).toBe(before);
  });
});

describe('x-gateway-context', () => {
  it('is verified by the subgraph: calls without it or with a forged one are refused', async () => {
    await postGraphQL(stack.url, WHOAMI, bearer(await issuer.mint()));
    const genuine = contextTokensSeen.at(-1)!;
    const accounts = stack.subgraphs.accounts!.url;
    const call = (headers: Record<string, string>) =>
      fetch(accounts, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(WHOAMI) });

    expect((await call({ 'x-user-id': 'u-acme-1', 'x-tenant-id': 'acme' })).status).toBe(401);
    const impostor = await generateKeyPair('EdDSA');
    const forged = await new SignJWT({ tenant_id: 'globex', roles: ['admin'], request_id: 'x', principal_kind: 'user' })
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject('u-globex-1')
      .setIssuer('federated-gateway')
      .setAudience('gateway-services')
      .setExpirationTime('1m')
      .sign(impostor.privateKey);
    expect((await call({ 'x-gateway-context': forged })).status).toBe(401);

    const accepted = await call({ 'x-gateway-context': genuine });
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toMatchObject({ data: { whoami: { userId: 'u-acme-1', tenantId: 'acme' } } });
  });

  it('the gateway publishes its verification keys', async () => {
    const response = await fetch(`${stack.url}/.well-known/jwks.json`);
    const body = (await response.json()) as { keys: { kty: string; kid: string; d?: string }[] };
    expect(body.keys).toHaveLength(1);
    expect(body.keys[0]!.kid).toBeTruthy();
    expect(body.keys[0]!.d).toBeUndefined(); // never the private part
  });
});

describe('policy for the GraphQL endpoint as a whole', () => {
  it('AUTH_GRAPHQL_ROLES / AUTH_GRAPHQL_PERMISSIONS gate /graphql before any operation runs', async () => {
    const guarded = await startStack({ issuer, env: { AUTH_GRAPHQL_ROLES: 'staff,admin', AUTH_GRAPHQL_PERMISSIONS: 'graphql:use' } });
    try {
      const viewer = await postGraphQL(guarded.url, WHOAMI, await guarded.bearer({ roles: ['viewer'], permissions: ['graphql:use'] }));
      expect(viewer.status).toBe(403);
      expect(viewer.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const noPermission = await postGraphQL(guarded.url, WHOAMI, await guarded.bearer({ roles: ['staff'] }));
      expect(noPermission.status).toBe(403);
      const staff = await postGraphQL(guarded.url, WHOAMI, await guarded.bearer({ roles: ['staff'], permissions: ['graphql:use'] }));
      expect(staff.status).toBe(200);
    } finally {
      await guarded.close();
    }
  });
});

describe('token freshness without iat', () => {
  const initech = { DEFAULT_TENANT_ID: 'initech' };

  it('anonymous callers of a tenant with a freshness rule are not refused: they hold no token', async () => {
    const strict = await startStack({ issuer, env: initech });
    try {
      await strict.gateway.tenantFlags.markSubscriptionChanged('initech', now() - 60);
      expect((await postGraphQL(strict.url, WHOAMI)).body.data).toEqual({ whoami: { userId: null, tenantId: 'initech', roles: [] } });
    } finally {
      await strict.close();
    }
  });

  it('TOKEN_FRESHNESS_ALLOW_MISSING_IAT=true: the whole deployment accepts tokens without iat; an old iat is still stale', async () => {
    const lenient = await startStack({ issuer, env: { ...initech, TOKEN_FRESHNESS_ALLOW_MISSING_IAT: 'true' } });
    try {
      await lenient.gateway.tenantFlags.markSubscriptionChanged('initech', now() - 60);
      const noIat = await issuer.mint({ sub: 'u-initech-2', tenant_id: 'initech', iat: undefined });
      expect((await postGraphQL(lenient.url, WHOAMI, bearer(noIat))).status).toBe(200);
      const old = await issuer.mint({ sub: 'u-initech-2', tenant_id: 'initech', iat: now() - 600 });
      const refused = await postGraphQL(lenient.url, WHOAMI, bearer(old));
      expect(refused.status).toBe(401);
      expect(refused.body.errors?.[0]?.extensions?.code).toBe('TOKEN_STALE');
    } finally {
      await lenient.close();
    }
  });
});
