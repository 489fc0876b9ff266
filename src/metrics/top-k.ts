/**
 * The most frequent items of a stream in bounded memory: the space-saving algorithm (Metwally et al., 2005). Each
 * count is at most its item's true count plus the smallest count when the item came in; items that occur more often
 * than 1/capacity of the stream are always among those kept.
 */
export class TopK {
  private readonly counts = new Map<string, number>();

  constructor(private readonly capacity: number) {}

  add(item: string): void {
    const count = this.counts.get(item);
    if (count !== undefined) {
      this.counts.set(item, count + 1);
      return;
    }
    if (this.counts.size < this.capacity) {
      this.counts.set(item, 1);
      return;
    }
    let smallest: string | undefined;
    let smallestCount = Number.POSITIVE_INFINITY;
    for (const [kept, keptCount] of this.counts) {
      if (keptCount < smallestCount) {
        smallest = kept;
        smallestCount = keptCount;
      }
    }
    this.counts.delete(smallest as string);
    this.counts.set(item, smallestCount + 1);
  }

  /** The items kept, most frequent first. */
  top(): Array<{ item: string; count: number }> {
    return [...this.counts].map(([item, count]) => ({ item, count })).sort((a, b) => b.count - a.count);
  }
}
