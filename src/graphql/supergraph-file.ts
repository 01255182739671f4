import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { SupergraphManager } from '@apollo/gateway';
import type { SupergraphSdlUpdateFunction } from '@apollo/gateway';
import { Supergraph } from '@apollo/federation-internals';
import type { FastifyBaseLogger } from 'fastify';

export interface SubgraphEndpoint {
  readonly name: string;
  readonly url: string;
}

export type SupergraphStatus =
  | { readonly state: 'loading'; readonly reason: string }
  | { readonly state: 'ready'; readonly hash: string; readonly loadedAt: string; readonly subgraphs: readonly SubgraphEndpoint[] };

interface SupergraphFileOptions {
  path: string;
  watch: boolean;
  logger: FastifyBaseLogger;
  /** Quiet period before a change is read, so an editor's or `cp`'s partial write is not loaded. */
  debounceMs?: number;
  /** Turns the file's SDL into what the gateway executes (e.g. without features enforced elsewhere). */
  prepare?: (supergraphSdl: string) => string;
  onLoaded?: (hash: string) => void;
  onRejected?: (reason: string) => void;
}

/**
 * Feeds Apollo Gateway from a supergraph file and hot-reloads it. Each candidate is validated here
 * first, so a broken file never reaches the gateway: at start-up we keep waiting for a valid one
 * (readiness stays 503 and says why), later the running schema simply keeps serving.
 */
export class SupergraphFile implements SupergraphManager {
  private readonly path: string;
  private currentHash: string | null = null;
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private onChange: (() => void) | null = null;
  private _status: SupergraphStatus = { state: 'loading', reason: 'supergraph not loaded yet' };

  constructor(private readonly options: SupergraphFileOptions) {
    this.path = resolve(options.path);
  }

  get status(): SupergraphStatus {
    return this._status;
  }

  async initialize({ update }: { update: SupergraphSdlUpdateFunction }) {
    if (this.options.watch) this.startWatching();
    const supergraphSdl = await this.waitForValidSupergraph();
    this.onChange = () => void this.reload(update);
    return { supergraphSdl, cleanup: async () => this.stop() };
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
    this.onChange = null;
  }

  private async waitForValidSupergraph(): Promise<string> {
    for (;;) {
      const candidate = await this.readCandidate();
      if (candidate.ok) {
        this.markLoaded(candidate.hash, candidate.subgraphs);
        return candidate.sdl;
      }
      this._status = { state: 'loading', reason: candidate.reason };
      this.options.onRejected?.(candidate.reason);
      this.options.logger.error({ path: this.path, reason: candidate.reason }, 'supergraph rejected, waiting for a valid file');
      if (!this.watcher) throw new Error(`Invalid supergraph ${this.path}: ${candidate.reason}`);
      await new Promise<void>((resolveChange) => (this.onChange = resolveChange));
    }
  }

  private async reload(update: SupergraphSdlUpdateFunction): Promise<void> {
    const candidate = await this.readCandidate();
    if (!candidate.ok) {
      this.options.onRejected?.(candidate.reason);
      this.options.logger.error(
        { path: this.path, reason: candidate.reason },
        'supergraph reload rejected; the previous supergraph keeps serving',
      );
      return;
    }
    if (candidate.hash === this.currentHash) return;
    try {
      update(candidate.sdl);
      this.markLoaded(candidate.hash, candidate.subgraphs);
      this.options.logger.info({ path: this.path, hash: candidate.hash }, 'supergraph reloaded');
    } catch (error) {
      this.options.onRejected?.((error as Error).message);
      this.options.logger.error(
        { path: this.path, reason: (error as Error).message },
        'supergraph reload rejected by the gateway; the previous supergraph keeps serving',
      );
    }
  }

  private markLoaded(hash: string, subgraphs: readonly SubgraphEndpoint[]): void {
    this.currentHash = hash;
    this._status = { state: 'ready', hash, loadedAt: new Date().toISOString(), subgraphs };
    this.options.onLoaded?.(hash);
  }

  private async readCandidate(): Promise<
    { ok: true; sdl: string; hash: string; subgraphs: SubgraphEndpoint[] } | { ok: false; reason: string }
  > {
    let sdl: string;
    try {
      sdl = await readFile(this.path, 'utf8');
    } catch (error) {
      return { ok: false, reason: `cannot read file: ${(error as NodeJS.ErrnoException).code ?? 'error'}` };
    }
    const hash = createHash('sha256').update(sdl).digest('hex');
    try {
      const executable = this.options.prepare ? this.options.prepare(sdl) : sdl;
      const supergraph = Supergraph.build(executable, { validateSupergraph: true });
      const subgraphs = supergraph.subgraphs().values().map((subgraph) => ({ name: subgraph.name, url: subgraph.url }));
      supergraph.apiSchema();
      return { ok: true, sdl: executable, hash, subgraphs };
    } catch (error) {
      return { ok: false, reason: firstLine((error as Error).message) };
    }
  }

  /** Watch the directory, not the file: editors and deploy tools replace files by rename. */
  private startWatching(): void {
    const file = basename(this.path);
    this.watcher = watch(dirname(this.path), (_event, changed) => {
      if (changed !== null && changed !== file) return;
      if (this.debounce) clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.onChange?.(), this.options.debounceMs ?? 150);
    });
    this.watcher.on('error', (error) =>
      this.options.logger.error({ path: this.path, reason: error.message }, 'supergraph watcher failed'),
    );
  }
}

function firstLine(message: string): string {
  const line = message.split('\n').find((l) => l.trim() !== '') ?? message;
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}
