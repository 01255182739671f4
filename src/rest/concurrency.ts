/**
 * Requests in flight to one service, counted per caller and per tenant. A caller or tenant at its
 * share is refused (429) before anything goes upstream, so no one of them can hold every connection
 * of the service's pools and the others always find one free. Counts are per gateway process, as the
 * connections are.
 */
export class ConcurrencyGate {
  private readonly callers = new Map<string, number>();
  private readonly tenants = new Map<string, number>();

  constructor(
    private readonly perCaller: number,
    private readonly perTenant: number,
  ) {}

  /** A release function (idempotent), or the share that is exhausted. */
  tryEnter(caller: string, tenant: string): (() => void) | 'caller' | 'tenant' {
    if ((this.callers.get(caller) ?? 0) >= this.perCaller) return 'caller';
    if ((this.tenants.get(tenant) ?? 0) >= this.perTenant) return 'tenant';
    adjust(this.callers, caller, 1);
    adjust(this.tenants, tenant, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      adjust(this.callers, caller, -1);
      adjust(this.tenants, tenant, -1);
    };
  }
}

function adjust(counts: Map<string, number>, key: string, delta: number): void {
  const next = (counts.get(key) ?? 0) + delta;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}
