import { describe, expect, it } from 'vitest';
import { SupergraphSnapshots, type SupergraphSnapshot } from '../../src/graphql/admission/snapshot.js';

/** A snapshot stand-in: only its hash tells snapshots apart here. */
const snapshot = (hash: string) => ({ hash }) as SupergraphSnapshot;

function snapshots() {
  const misses: string[] = [];
  const store = new SupergraphSnapshots((s) => ({ snapshot: s }), (sdl) => misses.push(sdl));
  const hashFor = (schema: object) => store.for(schema)?.snapshot.hash ?? null;
  return { store, misses, hashFor };
}

describe('supergraph snapshots bound to the schema the gateway serves', () => {
  it('a rules-only change of the served SDL binds at once, and still binds when the gateway switches away and back', () => {
    const { store, hashFor } = snapshots();
    const [schemaA, schemaB, schemaA2] = [{}, {}, {}];
    store.stage('A', snapshot('a1'));
    store.activate(schemaA, 'A');
    store.stage('B', snapshot('b'));
    store.stage('A', snapshot('a2')); // same executable SDL as served, other requirements
    expect(hashFor(schemaA)).toBe('a2');
    store.activate(schemaB, 'B');
    expect(hashFor(schemaB)).toBe('b');
    store.activate(schemaA2, 'A');
    expect(hashFor(schemaA2)).toBe('a2');
  });

  it('a schema nothing was staged for stays unbound (requests refused), reported, never given another snapshot', () => {
    const { store, misses, hashFor } = snapshots();
    const [known, unknown] = [{}, {}];
    store.stage('A', snapshot('a'));
    store.activate(known, 'A');
    store.activate(unknown, 'X');
    expect(hashFor(unknown)).toBeNull();
    expect(misses).toEqual(['X']);
    expect(hashFor(known)).toBe('a'); // requests validated against the old schema keep its rules
    // Staging the served SDL afterwards binds it.
    store.stage('X', snapshot('x'));
    expect(hashFor(unknown)).toBe('x');
  });
});
