import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { loadConfig } from '../../src/config/load.js';
import { ENV_KEYS, REST_SETTINGS } from '../../src/config/schema.js';
import { routeSchema, serviceSchema } from '../../src/rest/config-schema.js';

/**
 * The example configuration and the Kubernetes manifests are what operators copy: they must pass the
 * gateway's own validation, in production, and show every REST setting the schemas define. A setting
 * added to src/rest/config-schema.ts fails here until the examples show it.
 */

/** Top-level REST settings, as the configuration schema groups them. */
const REST_TOP_LEVEL = Object.keys(REST_SETTINGS);
/** Those the environment can set, by variable (ENV_KEYS). */
const REST_ENV = Object.entries(ENV_KEYS)
  .filter(([, key]) => REST_TOP_LEVEL.includes(key))
  .map(([name]) => name);

type Shape = Record<string, z.ZodType>;

/**
 * The object schemas a setting's value may be: through defaults, optionals, nullables, pipes
 * (preprocess, transform: either side), unions (every option) and arrays (their elements).
 */
function objectsWithin(schema: z.ZodType): z.ZodObject[] {
  if (schema instanceof z.ZodObject) return [schema];
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault || schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) {
    return objectsWithin(schema.unwrap() as z.ZodType);
  }
  if (schema instanceof z.ZodPipe) return [...objectsWithin(schema.in as z.ZodType), ...objectsWithin(schema.out as z.ZodType)];
  if (schema instanceof z.ZodUnion) return (schema.options as readonly z.ZodType[]).flatMap(objectsWithin);
  if (schema instanceof z.ZodArray) return objectsWithin(schema.element as z.ZodType);
  return [];
}

/** An object schema's keys, with those of objects nested in them as `parent.child` (a list's elements too). */
function settingPaths(shape: Shape, prefix = ''): string[] {
  return Object.entries(shape).flatMap(([key, schema]) => [
    `${prefix}${key}`,
    ...new Set(objectsWithin(schema).flatMap((inner) => settingPaths(inner.shape as Shape, `${prefix}${key}.`))),
  ]);
}

/** Every `a.b` path some entry of `entries` sets (a list's elements under the list's path). */
function pathsUsed(entries: readonly unknown[]): Set<string> {
  const used = new Set<string>();
  const walk = (value: unknown, prefix: string) => {
    if (Array.isArray(value)) for (const element of value) walk(element, prefix);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      used.add(`${prefix}${key}`);
      walk(child, `${prefix}${key}.`);
    }
  };
  for (const entry of entries) walk(entry, '');
  return used;
}

const SERVICE_SETTINGS = settingPaths(serviceSchema.shape as Shape);
const ROUTE_SETTINGS = settingPaths(routeSchema.shape as Shape);

/** A file's services and routes show every setting their schemas define. */
function expectEveryRestSetting(file: { services?: Record<string, unknown>; routes?: unknown[] }, where: string): void {
  const services = Object.values(file.services ?? {});
  const usedByServices = pathsUsed(services);
  expect(SERVICE_SETTINGS.filter((path) => !usedByServices.has(path)), `${where}: service settings not shown`).toEqual([]);
  const usedByRoutes = pathsUsed(file.routes ?? []);
  expect(ROUTE_SETTINGS.filter((path) => !usedByRoutes.has(path)), `${where}: route settings not shown`).toEqual([]);
}

describe('the settings walker', () => {
  it('finds nested settings through defaults, pipes (preprocess, transform), unions and lists', () => {
    const shape = {
      plain: z.string().optional(),
      preprocessed: z.preprocess((value) => value, z.strictObject({ inner: z.string() })).default({ inner: 'x' }),
      transformed: z.strictObject({ inner: z.string() }).transform((value) => value),
      either: z.union([z.string(), z.strictObject({ inner: z.string() })]),
      list: z.array(z.strictObject({ inner: z.string() })).optional(),
    };
    expect(settingPaths(shape)).toEqual(['plain', 'preprocessed', 'preprocessed.inner', 'transformed', 'transformed.inner', 'either', 'either.inner', 'list', 'list.inner']);
    expect([...pathsUsed([{ list: [{ inner: 'a' }], either: { inner: 'b' } }])]).toEqual(['list', 'list.inner', 'either', 'either.inner']);
  });
});

describe('config/gateway.example.yaml', () => {
  const path = 'config/gateway.example.yaml';
  const file = parse(readFileSync(path, 'utf8')) as Record<string, unknown> & { services: Record<string, unknown>; routes: unknown[] };

  it('passes the gateway configuration loader, in production too', () => {
    for (const NODE_ENV of ['development', 'production']) {
      const config = loadConfig({ GATEWAY_CONFIG: path, NODE_ENV });
      expect(config.routes.length).toBe(file.routes.length);
    }
  });

  it('shows every REST setting: top level, per service (nested ones included) and per route', () => {
    expect(REST_TOP_LEVEL.filter((key) => !(key in file))).toEqual([]);
    expectEveryRestSetting(file, path);
  });
});

describe('deploy/kubernetes/gateway.yaml', () => {
  const documents = parseAllDocuments(readFileSync('deploy/kubernetes/gateway.yaml', 'utf8')).map((d) => d.toJS() as {
    kind: string;
    metadata: { name: string };
    data?: Record<string, string>;
    stringData?: Record<string, string>;
    spec?: { template: { spec: { volumes?: { name: string; configMap?: { name: string } }[]; containers: { volumeMounts?: { name: string; mountPath: string }[] }[] } } };
  });
  const settings = documents.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'federated-gateway')!.data!;
  const secret = documents.find((d) => d.kind === 'Secret')!.stringData!;
  const routes = documents.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'federated-gateway-routes')!;
  const dir = mkdtempSync(join(tmpdir(), 'gw-k8s-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('mounts the route table where GATEWAY_CONFIG points', () => {
    const pod = documents.find((d) => d.kind === 'Deployment')!.spec!.template.spec;
    const volume = pod.volumes!.find((v) => v.configMap?.name === 'federated-gateway-routes')!;
    const mount = pod.containers[0]!.volumeMounts!.find((m) => m.name === volume.name)!;
    expect(settings.GATEWAY_CONFIG).toBe(`${mount.mountPath}/gateway.yaml`);
    expect(Object.keys(routes.data!)).toEqual(['gateway.yaml']);
  });

  it('passes the gateway configuration loader with the ConfigMaps and the Secret as the pod sees them', () => {
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, routes.data!['gateway.yaml']!);
    const config = loadConfig({ ...settings, ...secret, GATEWAY_CONFIG: file });
    expect(config.nodeEnv).toBe('production');
    expect(config.trustProxy).not.toBe(true);
    expect(config.routes.length).toBeGreaterThan(0);
  });

  it('sets every REST setting the environment can carry, and its route table shows the rest', () => {
    expect(REST_ENV.filter((name) => !(name in settings))).toEqual([]);
    expectEveryRestSetting(parse(routes.data!['gateway.yaml']!) as { services: Record<string, unknown>; routes: unknown[] }, 'federated-gateway-routes');
  });
});
