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
 * switches to it; a request then finds the snapshot of exactly the schema it was validated with, or
 * none: a schema without its snapshot is refused rather than run with another supergraph's rules.
 */
export class SupergraphSnapshots<State extends { readonly snapshot: SupergraphSnapshot }> {
  private readonly staged = new Map<string, SupergraphSnapshot>();
  private readonly bySchema = new WeakMap<object, State>();
  /** The schema the gateway serves now (bound to a snapshot or not). */
  private served: { schema: object; executableSdl: string } | null = null;

  constructor(
    private readonly stateOf: (snapshot: SupergraphSnapshot) => State,
    private readonly onMiss: (executableSdl: string) => void = () => {},
  ) {}

  /** A candidate read from the file; `executableSdl` is what the gateway will be given. */
  stage(executableSdl: string, snapshot: SupergraphSnapshot): void {
    // Always staged, even when the gateway already serves this SDL: it may switch away and back.
    this.staged.delete(executableSdl);
    this.staged.set(executableSdl, snapshot);
    // Candidates the gateway rejected are never bound: keep only the few most recent.
    if (this.staged.size > 4) this.staged.delete(this.staged.keys().next().value!);
    if (this.served && executableSdl === this.served.executableSdl && this.bySchema.get(this.served.schema)?.snapshot.hash !== snapshot.hash) {
      // Only what the gateway never sees changed (a requirement, a rate limit, a weight): the gateway
      // keeps its schema and announces nothing, so the new snapshot takes over that schema now.
      this.bySchema.set(this.served.schema, this.stateOf(snapshot));
    }
  }

  /** The gateway serves `apiSchema`, built from `executableSdl`. */
  activate(apiSchema: object, executableSdl: string): void {
    this.served = { schema: apiSchema, executableSdl };
    const snapshot = this.staged.get(executableSdl);
    // Apollo Gateway announces the SDL it was given, so this never misses; if it did, no guess:
    // the schema stays unbound and its requests are refused until a matching candidate is staged.
    if (!snapshot) return this.onMiss(executableSdl);
    this.bySchema.set(apiSchema, this.stateOf(snapshot));
  }

  for(schema: object): State | null {
    return this.bySchema.get(schema) ?? null;
  }
}
