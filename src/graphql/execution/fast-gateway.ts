import { createHash } from 'node:crypto';
import {
  ApolloGateway,
  buildOperationContext,
  executeQueryPlan,
  type GatewayConfig,
  type GraphQLDataSource,
  type ServiceMap,
} from '@apollo/gateway';
import { operationFromDocument, type Schema } from '@apollo/federation-internals';
import type { QueryPlan, QueryPlanner } from '@apollo/query-planner';
import type { GatewayExecutionResult, GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';
import { getVariableValues, GraphQLError, Kind, type GraphQLSchema, type VariableDefinitionNode } from 'graphql';
import { compilePlan, type Compilation } from './compile-plan.js';
import { runNode, type PlanRun } from './plan-runner.js';

/**
 * The ApolloGateway state this executor shares: the schemas, the query planner and its plan cache,
 * the data sources. They are private in its typings but are the same fields in the pinned 2.14.4
 * (package.json pins it; the differential test fails if they move).
 */
interface GatewayInternals {
  schema?: GraphQLSchema;
  apiSchema?: Schema;
  supergraphSchema?: GraphQLSchema;
  queryPlanStore: { get(key: string): Promise<QueryPlan | undefined>; set(key: string, value: QueryPlan): Promise<void> };
  queryPlanner?: QueryPlanner;
  serviceMap: Record<string, { url?: string; dataSource: GraphQLDataSource }>;
  logger: { warn(message: string): void; debug(message: string): void };
  config: GatewayConfig;
  recursiveSelectionsLimitDisabled: boolean;
  nonLocalSelectionsLimitDisabled: boolean;
  experimental_didResolveQueryPlan?: (options: {
    queryPlan: QueryPlan;
    serviceMap: ServiceMap;
    requestContext: GatewayGraphQLRequestContext;
    operationContext: ReturnType<typeof buildOperationContext>;
  }) => void;
}

type Executor = (requestContext: GatewayGraphQLRequestContext) => Promise<GatewayExecutionResult>;

/**
 * Apollo Gateway with a faster execution of its query plans. Planning, the plan cache, schema
 * loading and reloads, data sources (`process`: transport, headers, metrics, errors) are the stock
 * gateway's; what changes is running a plan: the per-plan work (representation extraction, result
 * shaping) is compiled once and kept with the plan, and no tracing objects are built per node. A plan
 * the compiler does not cover (@defer, subscriptions, @fromContext, introspection) runs on the stock
 * executor, decided once per plan; so does every request while Apollo usage reporting captures traces,
 * and the whole gateway when `debug` or the experimental query-plan exposure is configured.
 */
export class FastApolloGateway extends ApolloGateway {
  private readonly compiled = new WeakMap<QueryPlan, Compilation>();
  private readonly coverage = { compiled: 0, stock: 0 };

  constructor(config?: GatewayConfig) {
    super(config);
    const stock = this.executor;
    if (config?.debug || config?.__exposeQueryPlanExperimental) return;
    this.executor = (requestContext) => this.execute(requestContext, stock);
  }

  /** How many distinct plans run on the compiled executor and how many on the stock one. */
  planCoverage(): { compiled: number; stock: number } {
    return { ...this.coverage };
  }

  private get internals(): GatewayInternals {
    return this as unknown as GatewayInternals;
  }

  private async execute(requestContext: GatewayGraphQLRequestContext, stock: Executor): Promise<GatewayExecutionResult> {
    if (requestContext.metrics?.captureTraces) return stock(requestContext);
    const internals = this.internals;
    const { request, document, queryHash } = requestContext;
    const planKey = request.operationName
      ? createHash('sha256').update(queryHash).update(request.operationName).digest('hex')
      : queryHash;
    const operationContext = buildOperationContext({
      schema: internals.schema!,
      operationDocument: document,
      operationName: request.operationName,
    });

    const variableDefinitions = operationContext.operation.variableDefinitions as VariableDefinitionNode[] | undefined;
    if (variableDefinitions) {
      const { errors } = getVariableValues(operationContext.schema, variableDefinitions, request.variables || {});
      if (errors && errors.length > 0) return { errors };
    }

    const queryPlan = await this.queryPlan(planKey, requestContext);
    const serviceMap: ServiceMap = Object.create(null) as ServiceMap;
    for (const [name, { dataSource }] of Object.entries(internals.serviceMap)) serviceMap[name] = dataSource;
    internals.experimental_didResolveQueryPlan?.({ queryPlan, serviceMap, requestContext, operationContext });

    const compilation = this.compilationOf(queryPlan, operationContext);
    if (!compilation.ok) {
      return executeQueryPlan(
        queryPlan,
        serviceMap,
        requestContext,
        operationContext,
        internals.supergraphSchema!,
        internals.apiSchema!,
        internals.config.telemetry,
      );
    }

    const plan = compilation.plan;
    const run: PlanRun = {
      plan,
      requestContext,
      dataSource: (name) => serviceMap[name],
      supergraphSchema: internals.supergraphSchema!,
      errors: [],
      data: Object.create(null) as Record<string, unknown>,
    };
    if (plan.node) await runNode(run, plan.node, { path: [], data: run.data });

    let data: Record<string, unknown> | null | undefined;
    try {
      const shaped = plan.shaper.shape(run.data, request.variables);
      // As the stock gateway: shaping errors are reported only when execution had none, and then as
      // the `valueCompletion` extension (what Apollo Router does), not as GraphQL errors.
      if (run.errors.length === 0 && shaped.errors.length > 0) {
        return { extensions: { valueCompletion: shaped.errors }, data: shaped.data };
      }
      data = shaped.data;
    } catch (error) {
      if (error instanceof GraphQLError) return { errors: [error] };
      if (error instanceof Error) return { errors: [new GraphQLError(error.message, { originalError: error })] };
      (requestContext.logger ?? console).error(`Unexpected error during query plan execution: ${String(error)}`);
      return { errors: [new GraphQLError('Unexpected error during query plan execution')] };
    }
    return run.errors.length === 0 ? { data } : { errors: run.errors, data };
  }

  /** The plan from the gateway's own plan cache, planned and stored there on a miss, as the stock executor does. */
  private async queryPlan(planKey: string, requestContext: GatewayGraphQLRequestContext): Promise<QueryPlan> {
    const internals = this.internals;
    const cached = await internals.queryPlanStore.get(planKey);
    if (cached) return cached;
    const operation = operationFromDocument(internals.apiSchema!, requestContext.document, {
      operationName: requestContext.request.operationName,
    });
    const queryPlan = internals.queryPlanner!.buildQueryPlan(operation, {
      recursiveSelectionsLimitDisabled: internals.recursiveSelectionsLimitDisabled,
      nonLocalSelectionsLimitDisabled: internals.nonLocalSelectionsLimitDisabled,
    });
    try {
      await internals.queryPlanStore.set(planKey, queryPlan);
    } catch (error) {
      internals.logger.warn('Could not store queryPlan' + ((error as Error)?.message || String(error)));
    }
    return queryPlan;
  }

  /** Compiled once per plan object (the plan cache keeps plans by reference; a schema change drops them). */
  private compilationOf(queryPlan: QueryPlan, operationContext: ReturnType<typeof buildOperationContext>): Compilation {
    let compilation = this.compiled.get(queryPlan);
    if (compilation) return compilation;
    try {
      const operation = operationFromDocument(
        this.internals.apiSchema!,
        { kind: Kind.DOCUMENT, definitions: [operationContext.operation, ...Object.values(operationContext.fragments)] },
        { validate: false },
      );
      compilation = compilePlan(queryPlan, operation, this.internals.supergraphSchema!);
    } catch (error) {
      // The stock executor reports this failure in its own words.
      compilation = { ok: false, reason: (error as Error).message };
    }
    this.compiled.set(queryPlan, compilation);
    if (compilation.ok) this.coverage.compiled++;
    else {
      this.coverage.stock++;
      this.internals.logger.debug(`query plan runs on the stock executor: ${compilation.reason}`);
    }
    return compilation;
  }
}
