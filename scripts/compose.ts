import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import {
  breakingChanges,
  composeFromConfig,
  formatBreakingChange,
  type BreakingChange,
  type CompositionIssue,
} from '../src/composition/compose.js';

const usage = `Usage: npm run compose -- [options]

Composes the subgraphs listed in --config into the supergraph file --out.

Options:
  --check               do not write --out; fail if it differs from the composed result (stale)
  --fail-on-breaking    fail if the composed result breaks clients of the baseline
  --against <baseline>  baseline for breaking changes: a git ref (read as <ref>:<path of --out>),
                        a file, or an http(s) URL; default: the current --out file
  --config <file>       composition config (default: supergraph/subgraphs.yaml)
  --out <file>          supergraph file (default: supergraph/supergraph.graphql)
  -h, --help            print this help

Exit codes (the first that applies wins):
  1   composition failed
  4   the --against baseline could not be read
  3   breaking changes against the baseline (with --fail-on-breaking)
  2   --out is stale (with --check)
  0   ok
  64  usage error`;

const exitCode = { ok: 0, compositionFailed: 1, stale: 2, breaking: 3, baselineUnreadable: 4, usage: 64 } as const;

/** A failure that ends the run with one line on stderr and a given exit code, never a stack trace. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

function parseOptions() {
  try {
    return parseArgs({
      options: {
        config: { type: 'string', default: 'supergraph/subgraphs.yaml' },
        out: { type: 'string', default: 'supergraph/supergraph.graphql' },
        check: { type: 'boolean', default: false },
        'fail-on-breaking': { type: 'boolean', default: false },
        against: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    // parseArgs throws ERR_PARSE_ARGS_* (unknown option, missing value, stray argument) with a readable message.
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS_')) throw error;
    throw new CliError(`${(error as Error).message.split('\n')[0]}\nRun \`npm run compose -- --help\` for usage.`, exitCode.usage);
  }
}

const isUrl = (baseline: string) => /^https?:\/\//i.test(baseline);
const isFile = (baseline: string) => existsSync(baseline) && statSync(baseline).isFile();

/** Reads the baseline supergraph: an http(s) URL, else an existing file, else a git ref. */
async function readBaseline(baseline: string, out: string): Promise<string> {
  if (isUrl(baseline)) return fetchBaseline(baseline);
  if (isFile(baseline)) return readFileSync(baseline, 'utf8');
  return readBaselineFromGit(baseline, out);
}

async function fetchBaseline(url: string): Promise<string> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
    throw new CliError(`Cannot read baseline ${url}: ${cause}`, exitCode.baselineUnreadable);
  }
  if (!response.ok) {
    const status = `HTTP ${response.status} ${response.statusText}`.trimEnd();
    throw new CliError(`Cannot read baseline ${url}: ${status}`, exitCode.baselineUnreadable);
  }
  return response.text();
}

const git = promisify(execFile);

/** `git show <ref>:<path of out in its repository>`, run where `out` lives so any clone or checkout works. */
async function readBaselineFromGit(ref: string, out: string): Promise<string> {
  // A ref starting with "-" would be taken by git as an option.
  if (ref.startsWith('-')) throw new CliError(`Invalid baseline ${ref}: not a git ref, file or http(s) URL`, exitCode.usage);
  const cwd = dirname(resolve(out));
  try {
    // --show-prefix is the directory's path from the repository root, so symlinked checkouts still match.
    const { stdout: prefix } = await git('git', ['rev-parse', '--show-prefix'], { cwd });
    const object = `${ref}:${prefix.trim()}${basename(out)}`;
    const { stdout } = await git('git', ['show', object], { cwd, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim().split('\n')[0];
    throw new CliError(
      `Cannot read baseline ${ref} from git: ${stderr || (error as Error).message.split('\n')[0]}`,
      exitCode.baselineUnreadable,
    );
  }
}

function reportCompositionErrors(config: string, errors: readonly CompositionIssue[]): void {
  console.error(`Composition of ${config} failed with ${errors.length} error(s):`);
  for (const error of errors) {
    const where = error.subgraphs.length ? ` [subgraphs: ${error.subgraphs.join(', ')}]` : '';
    console.error(`  ${error.code}${where}: ${error.message}`);
  }
}

function breakingChangesAgainst(baselineSdl: string, baselineName: string, composedSdl: string): BreakingChange[] {
  try {
    return breakingChanges(baselineSdl, composedSdl);
  } catch (error) {
    // e.g. a URL answering with an HTML page, or a ref from before the file was a supergraph.
    const reason = (error as Error).message.split('\n')[0];
    throw new CliError(`Baseline ${baselineName} is not a valid supergraph: ${reason}`, exitCode.baselineUnreadable);
  }
}

async function main(): Promise<number> {
  const options = parseOptions();
  if (options.help) {
    console.log(usage);
    return exitCode.ok;
  }
  const { config, out, check, against } = options;
  const failOnBreaking = options['fail-on-breaking'];

  const outcome = composeFromConfig(config);
  if (!outcome.ok) {
    reportCompositionErrors(config, outcome.errors);
    return exitCode.compositionFailed;
  }
  const composed = outcome.supergraphSdl;

  const current = existsSync(out) ? readFileSync(out, 'utf8') : null;
  const baselineName = against ?? out;
  const baseline = against !== undefined ? await readBaseline(against, out) : current;
  const breaking = baseline === null ? [] : breakingChangesAgainst(baseline, baselineName, composed);
  if (breaking.length > 0) {
    console.error(`${breaking.length} breaking change(s) against ${baselineName}:`);
    for (const change of breaking) console.error(`  ${formatBreakingChange(change)}`);
  }
  const failsOnBreaking = failOnBreaking && breaking.length > 0;
  const stale = current !== composed;

  if (check && stale) console.error(`${out} is stale: run \`npm run compose\` and commit the result.`);
  // Without --check the file is brought up to date, unless the run fails on breaking changes.
  if (!check && stale && !failsOnBreaking) writeFileSync(out, composed);

  if (failsOnBreaking) return exitCode.breaking;
  if (check && stale) return exitCode.stale;
  console.log(`${out}: composed ${stale ? 'and written' : 'and up to date'} (${outcome.hints} composition hints).`);
  return exitCode.ok;
}

try {
  process.exitCode = await main();
} catch (error) {
  if (!(error instanceof CliError)) throw error;
  console.error(error.message);
  process.exitCode = error.exitCode;
}
