import { createHash } from 'node:crypto';
import { authorizationRequirements, type AuthorizationRequirements } from '../field-authorization.js';
import { rateLimitDirectives, type FieldRateLimit } from '../field-rate-limits.js';
import type { CostWeights } from '../operation-limits.js';
import { costDirectives } from './cost-directives.js';

/**
 * Everything the admission stage reads from one supergraph, built once when the file is read and
 * never changed: a reload builds a new snapshot, and the stage picks the one that belongs to the
 * schema a request was validated against, so no request mixes two supergraphs.
 */
export interface SupergraphSnapshot {
  /** The supergraph as the file holds it (with the directives the gateway itself never sees). */
  readonly sdl: string;
  readonly hash: string;
  readonly requirements: AuthorizationRequirements;
  /** `Type.field` → limit: `@rateLimit` in the supergraph, overridden by the configuration. */
  readonly fieldLimits: ReadonlyMap<string, FieldRateLimit>;
  /** `@cost` / `@listSize` from the supergraph (configured `fieldCosts` still win, in the cost model). */
  readonly costWeights: CostWeights;
}

export function buildSnapshot(sdl: string, configuredFieldLimits: Readonly<Record<string, FieldRateLimit>>): SupergraphSnapshot {
  return Object.freeze({
    sdl,
    hash: createHash('sha256').update(sdl).digest('hex'),
    requirements: authorizationRequirements(sdl),
    fieldLimits: new Map([...rateLimitDirectives(sdl), ...Object.entries(configuredFieldLimits)]),
    costWeights: costDirectives(sdl),
  });
}

/**
 * Snapshots by the schema Apollo validates requests against. A snapshot is staged when its file is
 * read (keyed by the SDL handed to the gateway) and bound to the gateway's API schema when the gateway
 * switches to it; a request then finds the snapshot of exactly the schema it was validated with.
 */
export class SupergraphSnapshots<State extends { readonly snapshot: SupergraphSnapshot }> {
  private readonly staged = new Map<string, SupergraphSnapshot>();
  private readonly bySchema = new WeakMap<object, State>();
  private active: { schema: object; executableSdl: string; state: State } | null = null;

  constructor(private readonly stateOf: (snapshot: SupergraphSnapshot) => State) {}

  /** A candidate read from the file; `executableSdl` is what the gateway will be given. */
  stage(executableSdl: string, snapshot: SupergraphSnapshot): void {
    if (this.active && executableSdl === this.active.executableSdl) {
      // Only what the gateway never sees changed (a requirement, a rate limit, a weight): the gateway
      // keeps its schema and announces nothing, so the new snapshot takes over that schema now.
      if (snapshot.hash !== this.active.state.snapshot.hash) this.bind(this.active.schema, executableSdl, snapshot);
      return;
    }
    this.staged.set(executableSdl, snapshot);
    // Candidates the gateway rejected are never bound: keep only the few most recent.
    if (this.staged.size > 4) this.staged.delete(this.staged.keys().next().value!);
  }

  /** The gateway serves `apiSchema`, built from `executableSdl`. */
  activate(apiSchema: object, executableSdl: string): void {
    // Apollo Gateway announces the SDL it was given, so the lookup matches; should it ever not, the
    // latest candidate is the one it just accepted.
    const snapshot = this.staged.get(executableSdl) ?? [...this.staged.values()].at(-1);
    if (!snapshot) return;
    this.staged.delete(executableSdl);
    this.bind(apiSchema, executableSdl, snapshot);
  }

  for(schema: object): State | null {
    return this.bySchema.get(schema) ?? this.active?.state ?? null;
  }

  private bind(schema: object, executableSdl: string, snapshot: SupergraphSnapshot): void {
    const state = this.stateOf(snapshot);
    this.bySchema.set(schema, state);
    this.active = { schema, executableSdl, state };
  }
}
