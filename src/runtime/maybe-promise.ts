/**
 * Values that are there now or come later, passed on without waiting when they are there.
 *
 * The limiter answers in the same turn whenever nothing needs to be waited for: a decision a lease covers, a cached
 * denial, a key this isolate has hashed already. Awaiting such a value anyway costs a turn of the event loop and an
 * async function's allocations on every request, which is most of what a lease's admission and a repeated denial cost
 * otherwise (bench/README.md: "The hot key", "The limiter from any code (hot-admitted-core)" and "The denied flood:
 * its floor, and what `front()` adds"). Every layer that passes such a value on does it with the functions here, so
 * that the trick lives in this file and the layers read as plain steps.
 */

/** A value now, or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

/** `next` of `value`: in this turn when `value` is there, else once its promise settles (rejections pass through). */
export function andThen<T, U>(value: MaybePromise<T>, next: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/** Every value of `values`: in this turn when all are there, else once every promise among them settles. */
export function allOf<T>(values: readonly MaybePromise<T>[]): MaybePromise<T[]> {
  return values.some((value) => value instanceof Promise) ? Promise.all(values) : (values as T[]);
}

/** Whether `value` is still to come: then a caller that only answers what is there now leaves it to the slower path. */
export function isPending<T>(value: MaybePromise<T>): value is Promise<T> {
  return value instanceof Promise;
}

/** `value` as a promise, for an API that must return one (Hono's middleware, `limit()`): one resolved promise, no turn. */
export function asPromise<T>(value: MaybePromise<T>): Promise<T> {
  return value instanceof Promise ? value : Promise.resolve(value);
}
