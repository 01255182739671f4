import { TRUST_EVERY_PEER, type GatewayConfig } from './schema.js';

/**
 * Settings that are valid but unsafe outside development: start-up logs each as a warning.
 * (In production the same settings are refused by the schema.)
 */
export function configWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  if (config.trustProxy === true) warnings.push(`TRUST_PROXY=${TRUST_EVERY_PEER}; refused when NODE_ENV=production`);
  return warnings;
}
