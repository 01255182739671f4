import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { breakingChanges, composeFromConfig } from '../src/composition/compose.js';

/**
 * npm run compose                         compose supergraph/subgraphs.yaml into supergraph/supergraph.graphql
 * npm run compose -- --check              fail if composition fails or the committed supergraph is stale
 * npm run compose -- --fail-on-breaking   also fail on breaking changes against the committed supergraph
 * Exit codes: 0 ok, 1 composition failed, 2 supergraph stale, 3 breaking changes.
 */
const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'supergraph/subgraphs.yaml' },
    out: { type: 'string', default: 'supergraph/supergraph.graphql' },
    check: { type: 'boolean', default: false },
    'fail-on-breaking': { type: 'boolean', default: false },
  },
});
const config = values.config!;
const out = values.out!;

const outcome = composeFromConfig(config);
if (!outcome.ok) {
  console.error(`Composition of ${config} failed with ${outcome.errors.length} error(s):`);
  for (const error of outcome.errors) {
    const where = error.subgraphs.length ? ` [subgraphs: ${error.subgraphs.join(', ')}]` : '';
    console.error(`  ${error.code}${where}: ${error.message}`);
  }
  process.exit(1);
}

const previous = existsSync(out) ? readFileSync(out, 'utf8') : null;
const breaking = previous ? breakingChanges(previous, outcome.supergraphSdl) : [];
if (breaking.length > 0) {
  console.error(`${breaking.length} breaking change(s) against ${out}:`);
  for (const change of breaking) console.error(`  ${change}`);
}

if (values.check) {
  if (previous !== outcome.supergraphSdl) {
    console.error(`${out} is stale: run \`npm run compose\` and commit the result.`);
    process.exit(2);
  }
} else if (previous !== outcome.supergraphSdl) {
  if (!(values['fail-on-breaking'] && breaking.length > 0)) writeFileSync(out, outcome.supergraphSdl);
}

if (values['fail-on-breaking'] && breaking.length > 0) process.exit(3);
console.log(`${out}: composed ${values.check ? 'and up to date' : 'and written'} (${outcome.hints} composition hints).`);
