/**
 * A map of at most `maxSize` entries that forgets the least recently used first: the isolate's bounded tables (hashed
 * keys, cached denials, leases). A `Map` keeps insertion order, so moving an entry to the end on every read makes its
 * first key the least recently used. It stands in for an LRU library: the tables need only these four operations, and
 * what a Worker bundles is parsed at every cold start (tiny-lru was 5.5 KB of the 120 KiB budget; docs/api.md).
 */
export class RecentMap<V> {
  readonly #entries = new Map<string, V>();
  readonly #maxSize: number;

  constructor(maxSize: number) {
    if (!Number.isInteger(maxSize) || maxSize < 1) throw new RangeError(`RecentMap: maxSize must be a whole number >= 1 (got ${maxSize})`);
    this.#maxSize = maxSize;
  }

  /** The value of `key`, which becomes the most recently used; undefined when there is none. */
  get(key: string): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  /** Sets `key` as the most recently used, forgetting the least recently used entry when the map is full. */
  set(key: string, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.#maxSize) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
