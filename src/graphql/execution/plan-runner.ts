import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { applyRewrites } from '@apollo/gateway/dist/dataRewrites.js';
import { assert, ERRORS, errorCodeDef } from '@apollo/federation-internals';
import type { FetchNode, PlanNode, ResponsePath } from '@apollo/query-planner';
import type { GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';
import { GraphQLError, type GraphQLErrorOptions, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import type { CompiledPlan } from './compile-plan.js';
import { deepMerge, flattenAtPath, type ResultMap } from './merge.js';

/**
 * Runs a compiled query plan: the same fetches, in the same order and concurrency, through the same
 * data sources (`process`), merged the same way as @apollo/gateway's `executeQueryPlan`; without its
 * per-node tracing objects and with the per-plan work (representation extraction) compiled.
 */
export interface PlanRun {
  readonly plan: CompiledPlan;
  readonly requestContext: GatewayGraphQLRequestContext;
  readonly dataSource: (serviceName: string) => GraphQLDataSource | undefined;
  readonly supergraphSchema: GraphQLSchema;
  readonly errors: GraphQLError[];
  /** The merged result everything is written into (unshaped). */
  readonly data: ResultMap;
}

interface Cursor {
  readonly path: ResponsePath;
  readonly data: ResultMap | ResultMap[];
}

const INCOMING_OPERATION = 'incoming operation' as Extract<GraphQLDataSourceProcessOptions, { incomingRequestContext: unknown }>['kind'];

export async function runNode(run: PlanRun, node: PlanNode, cursor: Cursor | undefined): Promise<void> {
  if (!cursor) return;
  switch (node.kind) {
    case 'Sequence':
      for (const child of node.nodes) await runNode(run, child, cursor);
      return;
    case 'Parallel':
      await Promise.all(node.nodes.map((child) => runNode(run, child, cursor)));
      return;
    case 'Flatten': {
      const data = flattenAtPath(cursor.data, node.path);
      await runNode(run, node.node, data ? { path: cursor.path.concat(node.path), data: data as ResultMap | ResultMap[] } : undefined);
      return;
    }
    case 'Fetch':
      try {
        await runFetch(run, node, cursor);
      } catch (error) {
        run.errors.push(error as GraphQLError);
      }
      return;
    case 'Condition': {
      const branch = conditionValue(run, node.condition) ? node.ifClause : node.elseClause;
      if (branch) await runNode(run, branch, cursor);
      return;
    }
    default:
      // Compilation refuses plans with other nodes (Defer, Subscription).
      throw new Error(`Unsupported query plan node ${node.kind}`);
  }
}

/** A Condition node's variable, with its default (`evaluateCondition` of @apollo/query-planner). */
function conditionValue(run: PlanRun, variable: string): boolean {
  const values = run.requestContext.request.variables;
  let value: unknown = values && Object.prototype.hasOwnProperty.call(values, variable) ? values[variable] : undefined;
  if (value === undefined) value = run.plan.operation.variableDefinitions.definition(variable)?.defaultValue;
  assert(value !== undefined, () => `Missing value for variable $${variable} (and no default found)`);
  assert(typeof value === 'boolean', () => `Invalid non-boolean value ${String(value)} for Boolean! variable $${variable}`);
  return value;
}

async function runFetch(run: PlanRun, fetch: FetchNode, cursor: Cursor): Promise<void> {
  const service = run.dataSource(fetch.serviceName);
  if (!service) throw new Error(`Couldn't find service with name "${fetch.serviceName}"`);

  let entities: ResultMap[];
  if (Array.isArray(cursor.data)) {
    entities = [];
    for (const entity of cursor.data) if (entity !== null && entity !== undefined) entities.push(entity);
  } else {
    entities = [cursor.data];
  }
  if (entities.length < 1) return;

  const variables: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (fetch.variableUsages) {
    const provided = run.requestContext.request.variables;
    for (const name of fetch.variableUsages) {
      if (provided && Object.prototype.hasOwnProperty.call(provided, name) && provided[name] !== undefined) variables[name] = provided[name];
    }
  }

  if (!fetch.requires) {
    const received = await send(run, service, fetch, cursor, variables);
    if (received) applyRewrites(run.supergraphSchema, fetch.outputRewrites, received);
    for (const entity of entities) deepMerge(entity, received);
    return;
  }

  const extract = run.plan.extractors.get(fetch)!;
  const representations: ResultMap[] = [];
  const representationToEntity: number[] = [];
  for (let index = 0; index < entities.length; index++) {
    const representation = extract(entities[index]);
    if (representation && representation['__typename']) {
      applyRewrites(run.supergraphSchema, fetch.inputRewrites, representation);
      representations.push(representation);
      representationToEntity.push(index);
    }
  }
  if (representations.length < 1) return;
  if ('representations' in variables) throw new Error(`Variables cannot contain key "representations"`);
  variables['representations'] = representations;

  const received = await send(run, service, fetch, cursor, variables);
  if (!received) return;
  const receivedEntities = received['_entities'];
  if (!(receivedEntities && Array.isArray(receivedEntities))) throw new Error(`Expected "data._entities" in response to be an array`);
  if (receivedEntities.length !== representations.length) {
    throw new Error(`Expected "data._entities" to contain ${representations.length} elements`);
  }
  for (let i = 0; i < receivedEntities.length; i++) {
    const receivedEntity = receivedEntities[i] as ResultMap | null | undefined;
    const existingEntity = entities[representationToEntity[i]!]!;
    if (receivedEntity && !receivedEntity['__typename']) receivedEntity['__typename'] = existingEntity['__typename'];
    applyRewrites(run.supergraphSchema, fetch.outputRewrites, receivedEntity as ResultMap);
    deepMerge(existingEntity, receivedEntity);
  }
}

async function send(
  run: PlanRun,
  service: GraphQLDataSource,
  fetch: FetchNode,
  cursor: Cursor,
  variables: Record<string, unknown>,
): Promise<ResultMap | null | undefined> {
  const requestContext = run.requestContext;
  const response = await service.process({
    kind: INCOMING_OPERATION,
    request: { query: fetch.operation, variables, operationName: fetch.operationName, http: undefined },
    incomingRequestContext: requestContext,
    context: requestContext.context,
    document: fetch.operationDocumentNode,
    pathInIncomingRequest: cursor.path,
  });

  if (response.errors) {
    const errorPath = lazyErrorPaths(fetch, cursor, run.data);
    for (const error of response.errors) run.errors.push(downstreamServiceError(error, fetch.serviceName, errorPath));
    if (!response.extensions?.ftv1) {
      const errorPaths = response.errors.map((error) => ({ subgraph: fetch.serviceName, path: error.path }));
      const metrics = requestContext.metrics;
      if (metrics.nonFtv1ErrorPaths) metrics.nonFtv1ErrorPaths.push(...errorPaths);
      else metrics.nonFtv1ErrorPaths = errorPaths;
    }
  }
  return response.data as ResultMap | null | undefined;
}

type ErrorPath = GraphQLErrorOptions['path'];

/** Subgraph error paths in response terms: `_entities` indices mapped back to where the entities sit. */
function lazyErrorPaths(fetch: FetchNode, cursor: Cursor, fullResult: ResultMap): (path: ErrorPath) => ErrorPath {
  let hydrated: ResponsePath[] | undefined;
  return (errorPath) => {
    if (fetch.requires && typeof errorPath?.[1] === 'number') {
      if (!hydrated) {
        hydrated = [];
        hydratePaths([], cursor.path, 0, fullResult, hydrated);
      }
      return [...(hydrated[errorPath[1]] ?? []), ...errorPath.slice(2)];
    }
    return errorPath ? [...cursor.path, ...errorPath.slice()] : undefined;
  };
}

/** `generateHydratedPaths` of @apollo/gateway: every concrete path (list indices filled in) matching `path`. */
function hydratePaths(parent: ResponsePath, path: ResponsePath, from: number, data: unknown, result: ResponsePath[]): void {
  if (data === null || data === undefined) return;
  const head = path[from];
  if (head === undefined || head === null) {
    result.push(parent.slice());
  } else if (head === '@') {
    assert(Array.isArray(data), 'expected array when encountering `@`');
    for (let i = 0; i < data.length; i++) {
      parent.push(i);
      hydratePaths(parent, path, from + 1, data[i], result);
      parent.pop();
    }
  } else if (typeof head === 'string') {
    if (Array.isArray(data)) {
      for (let i = 0; i < data.length; i++) {
        parent.push(i);
        hydratePaths(parent, path, from, data[i], result);
        parent.pop();
      }
    } else if (Object.prototype.hasOwnProperty.call(data, head)) {
      parent.push(head);
      hydratePaths(parent, path, from + 1, (data as ResultMap)[head], result);
      parent.pop();
    }
  } else {
    assert(false, `unknown path part "${String(head)}"`);
  }
}

function downstreamServiceError(original: GraphQLFormattedError, serviceName: string, errorPath: (path: ErrorPath) => ErrorPath): GraphQLError {
  const message = original.message || `Error while fetching subquery from service "${serviceName}"`;
  const { extensions } = original;
  const options: GraphQLErrorOptions = {
    originalError: original as Error,
    path: errorPath(original.path),
    extensions: { ...extensions, serviceName },
  };
  const codeDef = errorCodeDef(original);
  if (!codeDef && extensions?.code) return new GraphQLError(message, options);
  return (codeDef ?? ERRORS.DOWNSTREAM_SERVICE_ERROR).err(message, options);
}
