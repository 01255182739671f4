import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8 } from 'jose';

/**
 * Development keys: generated once into a git-ignored folder by `npm start`, trusted by the demo,
 * used by `npm run token`. Every file carries this marker and the gateway refuses to start in
 * production with a key that has it.
 */
export const DEV_KEY_MARKER = 'federated-gateway development key';
export const DEV_KEYS_DIR = '.dev';
export const DEV_ISSUER = 'https://dev.federated-gateway.local';
export const DEV_AUDIENCE = 'federated-gateway';

export interface DevKeyFiles {
  /** ES256 key pair for user tokens (what an IdP would hold / publish). */
  tokenPrivateKey: string;
  tokenPublicKey: string;
  /** Ed25519 key the gateway signs x-gateway-context with. */
  gatewaySigningKey: string;
}

export function devKeyFiles(dir = DEV_KEYS_DIR): DevKeyFiles {
  return {
    tokenPrivateKey: join(dir, 'token-signing.pem'),
    tokenPublicKey: join(dir, 'token-verify.pem'),
    gatewaySigningKey: join(dir, 'gateway-context.pem'),
  };
}

const marked = (pem: string) => `# ${DEV_KEY_MARKER}: never use it in production\n${pem}`;

export function containsDevKey(text: string | undefined): boolean {
  return text !== undefined && text.includes(DEV_KEY_MARKER);
}

/** Creates the development keys unless they already exist; returns their paths. */
export async function ensureDevKeys(dir = DEV_KEYS_DIR): Promise<DevKeyFiles> {
  const files = devKeyFiles(dir);
  if (Object.values(files).every((file) => existsSync(file))) return files;
  mkdirSync(dir, { recursive: true });
  const tokenPair = await generateKeyPair('ES256', { extractable: true });
  const contextPair = await generateKeyPair('EdDSA', { extractable: true });
  writeFileSync(files.tokenPrivateKey, marked(await exportPKCS8(tokenPair.privateKey)), { mode: 0o600 });
  writeFileSync(files.tokenPublicKey, marked(await exportSPKI(tokenPair.publicKey)));
  writeFileSync(files.gatewaySigningKey, marked(await exportPKCS8(contextPair.privateKey)), { mode: 0o600 });
  return files;
}

export interface DevTokenClaims {
  sub: string;
  tenant?: string;
  roles?: string[];
  permissions?: string[];
  tenantAccess?: { tenant_id: string; role: string }[];
  tier?: string;
  demo?: boolean;
  expiresIn?: string;
}

/** Mints a user token shaped like the seeds' payloads, signed with the development key. */
export async function mintDevToken(claims: DevTokenClaims, dir = DEV_KEYS_DIR): Promise<string> {
  const pem = readFileSync(devKeyFiles(dir).tokenPrivateKey, 'utf8').replace(/^#.*\n/, '');
  const key = await importPKCS8(pem, 'ES256');
  return new SignJWT({
    tenant_id: claims.tenant,
    roles: claims.roles ?? [],
    permissions: claims.permissions ?? [],
    tenant_access: claims.tenantAccess ?? (claims.tenant ? [{ tenant_id: claims.tenant, role: claims.roles?.[0] ?? 'member' }] : []),
    subscription: { tier: claims.tier ?? 'pro', status: 'active' },
    ...(claims.demo ? { demo: true } : {}),
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(DEV_ISSUER)
    .setAudience(DEV_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(claims.expiresIn ?? '8h')
    .sign(key);
}
