import { trustEveryPeerMessage, trustsEveryPeer, type GatewayConfig } from './schema.js';

/**
 * Settings that are valid but unsafe outside development: start-up logs each as a warning.
 * (In production the same settings are refused by the schema.)
 */
export function configWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  const everyPeer = trustsEveryPeer(config.trustProxy);
  if (everyPeer) warnings.push(`TRUST_PROXY=${trustEveryPeerMessage(everyPeer)}; refused when NODE_ENV=production`);
  return warnings;
}
