/** Text is searched case-insensitively through a folded copy, the same way on every backend. */
export function foldText(text: string): string {
  return text.toLowerCase();
}
