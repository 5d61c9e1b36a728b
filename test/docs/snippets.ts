/**
 * The runnable blocks of the documentation. A fenced code block is runnable when the line
 * before its fence is an HTML comment (invisible when the Markdown is rendered):
 *
 *     <!-- runnable -->                        a shell block, run in a fresh working directory
 *     <!-- runnable: in the checkout -->       a shell block, run at the root of the repository
 *     <!-- runnable: save as NAME -->          any block, saved as NAME in the working directory
 *                                              (a later shell block runs it)
 *
 * Blocks run in document order, each document against its own server.
 */

export interface RunnableBlock {
  /** The document, relative to the repository root. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The fence's info string: sh, python, … */
  lang: string;
  /** The block's text, without the fence's indentation. */
  code: string;
  /** Where a shell block runs. */
  where: "workdir" | "checkout";
  /** For a block to save rather than run. */
  saveAs?: string;
}

const MARKER = /^\s*<!--\s*runnable(?::\s*(.*?))?\s*-->\s*$/;
const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)\s*$/;

export class SnippetMarkerError extends Error {}

export function runnableBlocks(file: string, markdown: string): RunnableBlock[] {
  const lines = markdown.split("\n");
  const blocks: RunnableBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = MARKER.exec(lines[i]!);
    if (!marker) continue;
    const open = FENCE.exec(lines[i + 1] ?? "");
    if (!open)
      throw new SnippetMarkerError(`${file}:${i + 1}: a runnable marker must be right before a fence`);
    const [, indent, fence, lang] = open as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 2;
    for (; j < lines.length; j++) {
      const line = lines[j]!;
      if (line.trim() === fence) break;
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart());
    }
    if (j === lines.length)
      throw new SnippetMarkerError(`${file}:${i + 2}: the runnable block is not closed`);
    const option = (marker[1] ?? "").trim();
    const block: RunnableBlock = { file, line: i + 2, lang, code: `${body.join("\n")}\n`, where: "workdir" };
    if (option === "in the checkout") block.where = "checkout";
    else if (option.startsWith("save as ")) block.saveAs = option.slice("save as ".length).trim();
    else if (option !== "")
      throw new SnippetMarkerError(`${file}:${i + 1}: unknown runnable option "${option}"`);
    if (block.saveAs === undefined && lang !== "sh" && lang !== "bash") {
      throw new SnippetMarkerError(
        `${file}:${i + 2}: only sh blocks run; save a ${lang} block with "save as NAME"`,
      );
    }
    blocks.push(block);
    i = j;
  }
  return blocks;
}
