/**
 * A value now, or later. The pipeline's stages and what they call (token cache, principal cache,
 * tenant flags and rate limits in memory, the signed context token) answer most requests from
 * memory: returning the value itself there, and a promise only when they must wait (a signature
 * check, JWKS, Redis), spares every such request a promise, its microtasks and a pass of Fastify's
 * async hook runner per stage.
 *
 * Only native promises count as "later" (`instanceof Promise`): every asynchronous step here is an
 * `async` function or a jose/ioredis promise, and a value that merely has a `then` field (a token
 * claim, say) must never be mistaken for one.
 */
export type MaybePromise<T> = T | Promise<T>;

/** `next(value)` now if the value is here, else once it is; errors propagate as thrown or rejected. */
export function andThen<T, R>(value: MaybePromise<T>, next: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/**
 * `next` of what `run` gives, now or once it settles; `onError` for what `run` throws or rejects with
 * (not for what `next` throws: that propagates, as from any stage).
 */
export function settle<T, R>(run: () => MaybePromise<T>, next: (value: T) => MaybePromise<R>, onError: (error: unknown) => MaybePromise<R>): MaybePromise<R> {
  let value: MaybePromise<T>;
  try {
    value = run();
  } catch (error) {
    return onError(error);
  }
  return value instanceof Promise ? value.then(next, onError) : next(value);
}
