/**
 * One full spell of a store's queue of appends: every caller that asks for room while it is
 * full gets the same promise, resolved when the store opens again, so they go on in the order
 * they asked (see MessageArchiveStore.roomToAppend).
 */
export class RoomSignal {
  #room: { promise: Promise<void>; resolve: () => void } | undefined;

  /** The promise of room for this full spell (made by the first caller). */
  wait(): Promise<void> {
    if (!this.#room) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#room = { promise, resolve };
    }
    return this.#room.promise;
  }

  /** Lets every waiting caller go on; true when some were waiting. */
  open(): boolean {
    const room = this.#room;
    if (!room) return false;
    this.#room = undefined;
    room.resolve();
    return true;
  }
}
