export interface SlotLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerTenant: number;
  readonly maxConnectionsPerUser: number;
}

/** Which limit refused a stream. */
export type SlotScope = 'instance' | 'tenant' | 'user';

export interface Slot {
  /** Gives the slot back; safe to call more than once (every exit path may call it). */
  release(): void;
}

/**
 * Open event streams counted per instance, per tenant and per user (within a tenant). Checking and
 * taking a slot is one synchronous step, so concurrent opens cannot all pass the check before any
 * of them counts (the check must come before the first `await` of the stream's setup).
 */
export class StreamSlots {
  private total = 0;
  private readonly byTenant = new Map<string, number>();
  private readonly byUser = new Map<string, number>();

  constructor(private readonly limits: SlotLimits) {}

  reserve(tenant: string, user: string): Slot | { refused: SlotScope } {
    // The user key is scoped to the tenant: subjects of different tenants never share a budget.
    const userKey = `${tenant}\u0000${user}`;
    if (this.total >= this.limits.maxConnections) return { refused: 'instance' };
    if ((this.byTenant.get(tenant) ?? 0) >= this.limits.maxConnectionsPerTenant) return { refused: 'tenant' };
    if ((this.byUser.get(userKey) ?? 0) >= this.limits.maxConnectionsPerUser) return { refused: 'user' };
    this.total++;
    increment(this.byTenant, tenant, 1);
    increment(this.byUser, userKey, 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.total--;
        increment(this.byTenant, tenant, -1);
        increment(this.byUser, userKey, -1);
      },
    };
  }

  get size(): number {
    return this.total;
  }
}

/** Counts without keeping zero entries, so the maps hold only callers with open streams. */
function increment(counts: Map<string, number>, key: string, by: 1 | -1): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}
