import { SignJWT } from 'jose';

/** A bearer token signed with a shared HMAC secret (for gateways started with JWT_SECRET). */
export async function hs256Bearer(secret: string, subject: string, claims: Record<string, unknown>): Promise<string> {
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(secret));
  return `Bearer ${token}`;
}
