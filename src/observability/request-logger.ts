import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** The field that carries the request id in every line of a request (Fastify's `requestIdLogLabel`). */
export const REQUEST_ID_LOG_LABEL = 'reqId';

/**
 * Fastify's per-request logger, with the pino child (the request id bound) made on the first line
 * the request logs itself. Fastify makes that child for every request up front; most requests only
 * ever log their completion line, which goes through the parent logger (`unboundParent`) with the
 * request id written as its first field, the same line as through the child, so the child (its
 * bindings serialised, a logger object) and its garbage are skipped on the hot path.
 */
export class DeferredChildLogger implements FastifyBaseLogger {
  private made: FastifyBaseLogger | null = null;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  private get logger(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.made?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: string) {
    this.logger.level = level;
  }

  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.write('error', args);
  }
  warn(...args: unknown[]): void {
    this.write('warn', args);
  }
  info(...args: unknown[]): void {
    this.write('info', args);
  }
  debug(...args: unknown[]): void {
    this.write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.write('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options);
  }

  /**
   * The logger a line may go through with the request id written by the caller: the parent while the
   * child is not made and has no options of its own (the line then carries the same fields in the same
   * order as through the child), else null (log through this object).
   */
  get unboundParent(): FastifyBaseLogger | null {
    return this.made === null && this.options.level === undefined && this.options.serializers === undefined ? this.parent : null;
  }

  private write(level: Level, args: unknown[]): void {
    (this.logger[level] as (...args: unknown[]) => void)(...args);
  }
}

export const deferredChildLogger: NonNullable<FastifyServerOptions['childLoggerFactory']> = (logger, bindings, options) =>
  new DeferredChildLogger(logger, bindings, options);
