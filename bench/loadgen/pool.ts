/** Runs task(0..count-1) with at most `concurrency` tasks in flight. */
export async function runPool(
  count: number,
  concurrency: number,
  task: (k: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const k = next++;
      await task(k);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
