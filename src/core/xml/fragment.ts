/**
 * Parses one stored top-level element (an offline message, a vCard) back into
 * an XmlElement with the same strict parser the streams use, so stored data
 * can never smuggle in what a client could not send.
 */
import type { XmlElement } from "./element.js";
import { StreamParser } from "./parser.js";

const STREAM_OPEN =
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

/** The element, or undefined when the text is not exactly one well-formed element. */
export function parseElement(xml: string, maxBytes = 16 * 1024 * 1024): XmlElement | undefined {
  let result: XmlElement | undefined;
  let count = 0;
  let failed = false;
  const parser = new StreamParser(
    {
      streamStart: () => {},
      element: (el) => {
        count++;
        result = el;
      },
      streamEnd: () => {},
      error: () => {
        failed = true;
      },
    },
    { maxStanzaBytes: maxBytes, maxDepth: 256 },
  );
  parser.write(STREAM_OPEN);
  parser.write(xml);
  return failed || count !== 1 ? undefined : result;
}
