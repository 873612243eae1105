/**
 * Ids handed to the client (frames, variable containers), valid for one stop. A plain
 * counter into a map: no packing of thread and index into bit-fields that could overflow.
 */
export class StopHandles<T> {
  private next = 1;
  private readonly map = new Map<number, T>();

  create(value: T): number {
    const id = this.next++;
    this.map.set(id, value);
    return id;
  }

  get(id: number): T | undefined {
    return this.map.get(id);
  }

  /** Forget every id; numbering goes on so a stale id from an old stop never matches. */
  reset(): void {
    this.map.clear();
  }
}
