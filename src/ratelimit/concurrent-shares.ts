/**
 * Things held at once (REST exchanges in flight, open event streams), counted per key at several
 * scopes, each with a cap. Checking every cap and taking the share is one synchronous step, so
 * concurrent callers cannot all pass the check before any of them counts: call `take` before the
 * first `await`. Counts are per gateway process, like the connections they protect.
 */
export class ConcurrentShares<Scope extends string> {
  private readonly scopes: readonly Scope[];
  private readonly counts = new Map<Scope, Map<string, number>>();

  /** Caps are checked in the order given; the first exhausted scope is the one reported. */
  constructor(private readonly caps: Readonly<Record<Scope, number>>) {
    this.scopes = Object.keys(caps) as Scope[];
    for (const scope of this.scopes) this.counts.set(scope, new Map());
  }

  /** A release function (safe to call more than once, as every exit path may), or the exhausted scope. */
  take(keys: Readonly<Record<Scope, string>>): (() => void) | Scope {
    for (const scope of this.scopes) {
      if ((this.counts.get(scope)!.get(keys[scope]) ?? 0) >= this.caps[scope]) return scope;
    }
    this.adjust(keys, 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.adjust(keys, -1);
    };
  }

  /** Counts without keeping zero entries, so the maps hold only keys with something held. */
  private adjust(keys: Readonly<Record<Scope, string>>, by: 1 | -1): void {
    for (const scope of this.scopes) {
      const counts = this.counts.get(scope)!;
      const next = (counts.get(keys[scope]) ?? 0) + by;
      if (next <= 0) counts.delete(keys[scope]);
      else counts.set(keys[scope], next);
    }
  }
}
