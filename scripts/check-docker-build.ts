import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import dockerignoreModule from '@balena/dockerignore';
import { Arg, Cmd, Copy, DockerfileParser, Env, From, Run, type Instruction } from 'dockerfile-ast';
import { DEV_KEYS_DIR, ensureDevKeys, mintDevToken } from '../src/auth/dev-keys.js';
import { freePort, stop } from './lib/bench-procs.js';
import { healthCheckCommand, localEnvironment, readComposeFile, type ComposeService } from './lib/compose-file.js';

/**
 * `npm run check:docker`: the Dockerfile's stages, reproduced without Docker. Each stage gets a
 * directory standing in for its filesystem; `COPY` takes from the build context exactly what Docker
 * would send (after .dockerignore) or from an earlier stage, `RUN` runs there with the host's
 * /bin/sh, `node` and `npm` standing in for the base image's. Then, in the final stage's files: every
 * command docker-compose.yml runs exists, the runtime node_modules is measured, and (unless
 * --no-smoke) each compose service built from this image is started with its compose environment
 * and must pass its compose health check, answer a query and accept a development token.
 *
 * Limits (it fails, naming the instruction, rather than guess):
 * - base images are not pulled: the host's Node (same major as `FROM node:<major>` or a warning)
 *   and tools stand in; RUN runs as the current user with only PATH, HOME, LANG, TERM and the
 *   Dockerfile's ENV/ARG values in its environment (HOME keeps the npm cache and config).
 * - no ARG/ENV substitution in COPY/WORKDIR, no ADD, no SHELL, no RUN flags (--mount…), no
 *   heredocs, no COPY --parents/--exclude, no COPY --from of an image; --chown/--chmod/--link are
 *   ignored. COPY source wildcards support `*` and `?` only.
 * - .dockerignore goes through @balena/dockerignore (Docker's matching rules, `!` exceptions
 *   included); empty directories are not copied.
 * - the smoke run uses no Redis (REDIS_URL is dropped) and fresh development keys in the temporary
 *   directory, never the ones in .dev/.
 */

const USAGE = `Usage: npm run check:docker -- [--context .] [--file Dockerfile] [--compose docker-compose.yml] [--no-smoke] [--keep]`;
const { values: options } = (() => {
  try {
    return parseArgs({
      options: {
        context: { type: 'string', default: '.' },
        file: { type: 'string' },
        compose: { type: 'string' },
        'no-smoke': { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`check:docker: ${(error as Error).message}\n${USAGE}\n`);
    process.exit(64);
  }
})();
if (options.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

class CheckFailure extends Error {}
function fail(message: string): never {
  throw new CheckFailure(message);
}

const context = resolve(options.context);
const dockerfilePath = resolve(context, options.file ?? 'Dockerfile');
const composePath = resolve(context, options.compose ?? 'docker-compose.yml');
const work = mkdtempSync(join(tmpdir(), 'docker-build-check-'));
const started = Date.now();

// ---- the build context, as Docker would send it -------------------------------------------------

const ignoreFile = join(context, '.dockerignore');
const ignoreLines = existsSync(ignoreFile) ? readFileSync(ignoreFile, 'utf8').split(/\r?\n/) : [];
// Typed as `export default` but shipped as `module.exports = factory`: TypeScript (NodeNext) expects the
// factory one `.default` deeper than Node puts it.
const dockerignore = dockerignoreModule as unknown as typeof dockerignoreModule.default;
const ignored = dockerignore().add(ignoreLines);
// Without `!` exceptions nothing below an excluded directory can come back: skip it (node_modules).
const hasExceptions = ignoreLines.some((line) => line.trim().startsWith('!'));

/** Files (and symlinks) of the context that survive .dockerignore, as posix paths relative to it. */
const contextFiles = ((): string[] => {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(context, dir), { withFileTypes: true })) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      const excluded = ignored.ignores(path);
      if (entry.isDirectory()) {
        if (!excluded || hasExceptions) walk(path);
      } else if (!excluded) {
        files.push(path);
      }
    }
  };
  walk('');
  return files;
})();
const contextDirs = new Set(contextFiles.flatMap((file) => file.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));

/** Context paths (files or directories) a COPY source names, Docker's way (`*` and `?` within a segment). */
function matchContext(source: string): string[] {
  const path = posix.normalize(source.replace(/^\/+/, '')).replace(/\/+$/, '') || '.';
  if (path === '..' || path.startsWith('../')) fail(`COPY ${source}: outside the build context`);
  if (path === '.') return ['.'];
  if (/[[\]\\]/.test(path)) fail(`COPY ${source}: only * and ? wildcards are supported`);
  if (!/[*?]/.test(path)) return contextFiles.includes(path) || contextDirs.has(path) ? [path] : [];
  const pattern = new RegExp(`^${path.replace(/[.+^${}()|]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  return [...contextFiles, ...contextDirs].filter((candidate) => pattern.test(candidate)).sort();
}

function copyEntry(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  if (lstatSync(from).isSymbolicLink()) symlinkSync(readlinkSync(from), to);
  else copyFileSync(from, to);
}

// ---- stages ----------------------------------------------------------------------------------------

interface Stage {
  name: string;
  /** Directory standing in for the stage's `/`. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  cmd: string[] | null;
}

const dockerfile = DockerfileParser.parse(readFileSync(dockerfilePath, 'utf8'));
const instructions = dockerfile.getInstructions();
const stages: Stage[] = [];
let stage: Stage | null = null;
let step = 0;
let stepsInStage = 0;

const inStage = (path: string, current: Stage) => join(current.root, posix.resolve(current.workdir, path));
const noVariables = (instruction: Instruction, text: string) => {
  if (text.includes('$')) fail(`${instruction.getKeyword()} ${text}: variable substitution is not supported here`);
  return text;
};

function runStep(instruction: Instruction, current: Stage): void {
  const keyword = instruction.getKeyword();
  const label = `[${current.name} ${++step}/${stepsInStage}] ${keyword} ${instruction.getArgumentsContent() ?? ''}`;
  console.log(label);
  if (instruction instanceof Copy) return copyStep(instruction, current);
  if (instruction instanceof Run) return runCommand(instruction, current, label);
  if (instruction instanceof Env) {
    for (const property of instruction.getProperties()) current.env[property.getName()] = property.getUnescapedValue() ?? '';
    return;
  }
  if (instruction instanceof Arg) {
    const property = instruction.getProperty();
    const value = property?.getUnescapedValue();
    if (property && value != null) current.env[property.getName()] = value;
    return;
  }
  if (instruction instanceof Cmd) {
    const json = instruction.getJSONStrings().map((argument) => argument.getJSONValue());
    current.cmd = json.length > 0 ? json : ['/bin/sh', '-c', instruction.getArgumentsContent() ?? ''];
    return;
  }
  switch (keyword) {
    case 'WORKDIR':
      current.workdir = posix.resolve(current.workdir, noVariables(instruction, instruction.getArgumentsContent() ?? '/'));
      mkdirSync(join(current.root, current.workdir), { recursive: true });
      return;
    // Image metadata: nothing to reproduce in files.
    case 'USER':
    case 'EXPOSE':
    case 'HEALTHCHECK':
    case 'LABEL':
    case 'STOPSIGNAL':
    case 'VOLUME':
    case 'ENTRYPOINT':
      return;
    default:
      fail(`${keyword} is not supported by this check`);
  }
}

function copyStep(instruction: Copy, current: Stage): void {
  const flags = instruction.getFlags().map((flag) => flag.getName());
  const unsupported = flags.filter((name) => !['from', 'chown', 'chmod', 'link'].includes(name));
  if (unsupported.length > 0) fail(`COPY --${unsupported.join(', --')} is not supported by this check`);
  if (instruction.getHeredocs().length > 0) fail('COPY with a heredoc is not supported by this check');
  const json = instruction.getJSONStrings().map((argument) => argument.getJSONValue());
  const args = json.length > 0 ? json : instruction.getArguments().map((argument) => argument.getValue());
  if (args.length < 2) fail(`COPY ${args.join(' ')}: needs a source and a destination`);
  const sources = args.slice(0, -1).map((source) => noVariables(instruction, source));
  const dest = noVariables(instruction, args.at(-1)!);
  const destIsDir = dest.endsWith('/') || dest === '.';
  const needsDir = (count: number) => {
    if (count > 1 && !destIsDir) fail(`COPY ${args.join(' ')}: with several sources the destination must end with /`);
  };
  needsDir(sources.length);
  const target = inStage(dest, current);
  const fromName = instruction.getFromFlag()?.getValue();

  if (fromName) {
    const from = stages.find((candidate) => candidate.name === fromName);
    if (!from) fail(`COPY --from=${fromName}: no earlier stage of that name (copying from images is not supported)`);
    for (const source of sources) {
      const path = join(from.root, posix.resolve('/', source));
      if (!existsSync(path)) fail(`COPY --from=${fromName} ${source}: not found in stage ${fromName}`);
      const to = lstatSync(path).isDirectory() || !destIsDir ? target : join(target, basename(path));
      cpSync(path, to, { recursive: true, verbatimSymlinks: true });
    }
    return;
  }

  const matched = sources.map((source) => {
    const matches = matchContext(source);
    if (matches.length === 0) {
      const why = ignored.ignores(source.replace(/^\.?\/+/, '').replace(/\/+$/, '')) ? ' (excluded by .dockerignore)' : '';
      fail(`COPY ${source}: not found in the build context${why}`);
    }
    return matches;
  });
  needsDir(matched.flat().length);
  let copied = 0;
  for (const matches of matched) {
    for (const match of matches) {
      if (match === '.' || contextDirs.has(match)) {
        // A directory's contents go into the destination, as Docker copies them.
        const prefix = match === '.' ? '' : `${match}/`;
        for (const file of contextFiles.filter((candidate) => candidate.startsWith(prefix))) {
          copyEntry(join(context, file), join(target, file.slice(prefix.length)));
          copied++;
        }
      } else {
        copyEntry(join(context, match), destIsDir ? join(target, basename(match)) : target);
        copied++;
      }
    }
  }
  console.log(`    ${copied} file${copied === 1 ? '' : 's'} from the context`);
}

function runCommand(instruction: Run, current: Stage, label: string): void {
  if (instruction.getFlags().length > 0) fail(`RUN --${instruction.getFlags()[0]!.getName()} is not supported by this check`);
  if (instruction.getHeredocs().length > 0) fail('RUN with a heredoc is not supported by this check');
  const json = instruction.getJSONStrings().map((argument) => argument.getJSONValue());
  const [command, ...args] = json.length > 0 ? json : ['/bin/sh', '-c', instruction.getArgumentsContent() ?? ''];
  const result = spawnSync(command!, args, { cwd: join(current.root, current.workdir), env: { ...baseEnv(), ...current.env }, stdio: 'inherit' });
  if (result.error) fail(`${label}: ${result.error.message}`);
  if (result.status !== 0) fail(`${label}: exit code ${result.status ?? result.signal}`);
}

/** What a RUN sees besides ENV/ARG: enough to find node and npm and the npm cache. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TERM']) if (process.env[name]) env[name] = process.env[name]!;
  return env;
}

function startStage(instruction: From): Stage {
  const image = instruction.getImage() ?? '';
  const name = instruction.getBuildStage() ?? String(stages.length);
  const parent = stages.find((candidate) => candidate.name === image);
  const root = join(work, `stage-${stages.length}-${name}`);
  mkdirSync(root, { recursive: true });
  const current: Stage = parent
    ? { name, root, workdir: parent.workdir, env: { ...parent.env }, cmd: parent.cmd }
    : { name, root, workdir: '/', env: {}, cmd: null };
  if (parent) cpSync(parent.root, root, { recursive: true, verbatimSymlinks: true });
  const nodeMajor = /^node:(\d+)/.exec(image)?.[1];
  const hostMajor = process.versions.node.split('.')[0];
  console.log(`\n[${name}] FROM ${image}${parent ? '' : ` (host Node v${process.versions.node} stands in)`}`);
  if (nodeMajor && nodeMajor !== hostMajor) console.warn(`warning: the image has Node ${nodeMajor}, this host Node ${hostMajor}: results may differ`);
  return current;
}

// ---- after the build: what the image holds and whether it runs -------------------------------------

/**
 * Size of a tree: the bytes of its files (what an image layer holds, whatever the filesystem) and
 * the blocks they take here (what `du` says; a copy may take more blocks than its original).
 */
function treeSize(dir: string): { bytes: number; diskBytes: number; files: number } {
  const seen = new Set<string>();
  let bytes = 0;
  let diskBytes = 0;
  let files = 0;
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      const stat = lstatSync(full);
      const key = `${stat.dev}:${stat.ino}`;
      if (!seen.has(key)) {
        // Hard links count once, as du counts them.
        seen.add(key);
        diskBytes += stat.blocks * 512;
        if (!entry.isDirectory()) bytes += stat.size;
      }
      if (entry.isDirectory()) walk(full);
      else files++;
    }
  };
  walk(dir);
  return { bytes, diskBytes, files };
}

interface Running {
  name: string;
  child: ChildProcess;
  output: string[];
}


async function waitHealthy(name: string, service: ComposeService, env: Record<string, string>, cwd: string, server: Running): Promise<void> {
  const [command, ...args] = healthCheckCommand(service);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (server.child.exitCode !== null) fail(`${name} exited (${server.child.exitCode}) before its health check passed:\n${server.output.join('')}`);
    if (spawnSync(command!, args, { cwd, env, stdio: 'ignore', timeout: 5_000 }).status === 0) return;
    if (Date.now() > deadline) fail(`${name}: health check ${JSON.stringify(service.healthcheck!.test)} did not pass within 30 s:\n${server.output.join('')}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function smokeRun(final: Stage, appDir: string): Promise<void> {
  const compose = readComposeFile(composePath);
  const built = Object.entries(compose.services).filter(([, service]) => service.build !== undefined);
  const ports = Object.fromEntries(await Promise.all(built.map(async ([name]) => [name, await freePort()] as const)));
  // Fresh development keys for secrets that live in .dev/; other secrets are read from the context.
  const devDir = join(work, 'dev-keys');
  await ensureDevKeys(devDir);
  const secrets = Object.fromEntries(
    Object.entries(compose.secrets ?? {}).map(([name, { file }]) => {
      const path = posix.normalize(file);
      return [name, path.startsWith(`${DEV_KEYS_DIR}/`) ? join(devDir, basename(path)) : resolve(context, path)];
    }),
  );
  const local = { services: Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, `127.0.0.1:${port}`])), secrets };
  console.log(`\nsmoke run: ${built.map(([name]) => name).join(', ')} from the final stage (no Redis: REDIS_URL dropped)`);

  const running: Running[] = [];
  try {
    for (const [name, service] of built) {
      const command = service.command ?? final.cmd ?? fail(`${name}: no command and no CMD`);
      const env = { ...baseEnv(), ...final.env, ...localEnvironment(compose, service, local), HOST: '127.0.0.1', PORT: String(ports[name]) };
      const child = spawn(command[0]!, command.slice(1), { cwd: appDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const entry: Running = { name, child, output: [] };
      child.stdout!.on('data', (chunk: Buffer) => entry.output.push(chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => entry.output.push(chunk.toString()));
      running.push(entry);
      await waitHealthy(name, service, env, appDir, entry);
      console.log(`    ${name}: healthy (${JSON.stringify(service.healthcheck!.test.at(-1))} on port ${ports[name]})`);
    }
    const gateway = `http://127.0.0.1:${ports.gateway ?? fail('docker-compose.yml has no gateway service')}`;
    const query = '{ orders { id buyer { name } items { product { name inStock } } } }';
    const answer = await fetch(`${gateway}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    const body = (await answer.json()) as { data?: { orders?: unknown[] }; errors?: unknown[] };
    if (answer.status !== 200 || body.errors || !body.data?.orders?.length) fail(`gateway query across the subgraphs: ${answer.status} ${JSON.stringify(body)}`);
    console.log(`    gateway: ${query} → ${body.data!.orders!.length} orders from all four subgraphs`);
    const token = await mintDevToken({ sub: 'u-acme-1', tenant: 'acme', roles: ['admin'] }, devDir);
    const users = await fetch(`${gateway}/api/v1/users`, { headers: { authorization: `Bearer ${token}` } });
    if (users.status !== 200) fail(`gateway GET /api/v1/users with a development token: ${users.status} ${await users.text()}`);
    console.log('    gateway: GET /api/v1/users with an `npm run token` token → 200');
  } finally {
    await Promise.all(running.map(({ child }) => stop(child)));
  }
}

// ---- main -------------------------------------------------------------------------------------------

try {
  const shown = relative(process.cwd(), dockerfilePath);
  console.log(`docker build check: ${shown.startsWith('..') ? dockerfilePath : shown}, context ${context} (${contextFiles.length} files after .dockerignore), work in ${work}`);
  for (const [index, instruction] of instructions.entries()) {
    if (instruction instanceof From) {
      stage = startStage(instruction);
      stages.push(stage);
      step = 0;
      const next = instructions.findIndex((candidate, i) => i > index && candidate instanceof From);
      stepsInStage = (next === -1 ? instructions.length : next) - index - 1;
      continue;
    }
    if (!stage) fail(`${instruction.getKeyword()} before the first FROM is not supported by this check`);
    runStep(instruction, stage);
  }
  const final = stages.at(-1) ?? fail('no FROM in the Dockerfile');
  const appDir = join(final.root, final.workdir);

  // Every command the image is run with (CMD and compose's) must find its entry file.
  const compose = readComposeFile(composePath);
  const commands = [final.cmd, ...Object.values(compose.services).filter((service) => service.build !== undefined).map((service) => service.command)];
  for (const command of commands) {
    const entry = command?.find((arg, i) => i > 0 && /\.[cm]?js$/.test(arg));
    if (entry && !existsSync(join(appDir, entry))) fail(`${command!.join(' ')}: ${entry} is not in the image`);
  }
  console.log(`\nentry points present: ${[...new Set(commands.flatMap((command) => command?.filter((arg) => /\.[cm]?js$/.test(arg)) ?? []))].join(', ')}`);

  const modules = join(appDir, 'node_modules');
  if (existsSync(modules)) {
    const { bytes, diskBytes, files } = treeSize(modules);
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    console.log(`runtime node_modules: ${mib(bytes)} in ${files.toLocaleString('en')} files (${mib(diskBytes)} on this disk)`);
  }

  if (!options['no-smoke']) await smokeRun(final, appDir);
  console.log(`\ndocker build check passed (${stages.map((s) => s.name).join(' → ')}, ${Math.round((Date.now() - started) / 1000)} s)`);
} catch (error) {
  if (!(error instanceof CheckFailure)) throw error;
  process.stderr.write(`\ndocker build check FAILED: ${error.message}\n`);
  process.exitCode = 1;
} finally {
  if (options.keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
