/**
 * TLS output in pieces (src/transports/tcp/socket-transport.ts): what a client reads is what the
 * server wrote, in order and whole, however it was cut; no piece splits a UTF-8 character; a
 * burst ends the pacing; closing delivers what was still waiting.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import tls from "node:tls";
import { generate } from "selfsigned";
import type { TransportSink } from "../../src/core/stream/transport.js";
import { SocketTransport } from "../../src/transports/tcp/socket-transport.js";

const LIMITS = { maxStanzaBytes: 65536, maxDepth: 32, bytesPerSecond: 0, burstBytes: 0 };
const IGNORE: TransportSink = {
  streamStart: () => undefined,
  element: () => undefined,
  streamEnd: () => undefined,
  error: () => undefined,
  connectionClosed: () => undefined,
};

interface Pair {
  transport: SocketTransport;
  /** Every chunk the server's TLS socket was asked to write, as bytes. */
  writes: Buffer[];
  /** Resolves with all the client read once the server's side ended. */
  received: Promise<Buffer>;
}

describe("TLS output in pieces", () => {
  let server: tls.Server;
  let pending: ((socket: tls.TLSSocket) => void) | undefined;

  before(async () => {
    const pems = await generate([{ name: "commonName", value: "localhost" }], {
      keyType: "ec",
      curve: "P-256",
      algorithm: "sha256",
    });
    server = tls.createServer({ cert: pems.cert, key: pems.private }, (socket) => pending?.(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });
  const clients: tls.TLSSocket[] = [];
  after(() => {
    for (const client of clients) client.destroy();
    server.close();
  });

  async function connect(): Promise<Pair> {
    const accepted = new Promise<tls.TLSSocket>((resolve) => {
      pending = resolve;
    });
    const { port } = server.address() as AddressInfo;
    const client = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
    clients.push(client);
    const chunks: Buffer[] = [];
    client.on("data", (chunk: Buffer) => chunks.push(chunk));
    const received = new Promise<Buffer>((resolve) => client.on("end", () => resolve(Buffer.concat(chunks))));
    const socket = await accepted;
    const writes: Buffer[] = [];
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    socket.write = ((chunk: string | Buffer, ...rest: unknown[]) => {
      writes.push(typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk));
      return write(chunk, ...rest);
    }) as typeof socket.write;
    const transport = new SocketTransport(socket, undefined, true);
    transport.start(IGNORE, LIMITS);
    return { transport, writes, received };
  }

  test("a write larger than a piece arrives whole and in order, cut only between characters", async () => {
    const { transport, writes, received } = await connect();
    // Two-, three- and four-byte characters across every possible cut.
    const first = `<message>${"😀".repeat(300)}${"é€a".repeat(100)}</message>`;
    const second = `<message>${"b".repeat(500)}</message>`;
    transport.write(first);
    assert.ok(transport.queuedBytes >= Buffer.byteLength(first), "waiting output counts as queued");
    await nextTurn();
    transport.write(second);
    await sleep(200);
    transport.end();
    const text = (await received).toString("utf8");
    assert.equal(text, first + second);
    assert.ok(writes.length >= 3, `written in ${writes.length} pieces`);
    const decoder = new TextDecoder("utf-8", { fatal: true });
    for (const piece of writes) {
      assert.ok(piece.length <= 768, `a piece of ${piece.length} bytes`);
      assert.doesNotThrow(() => decoder.decode(piece), "a piece split a character");
    }
  });

  test("a burst larger than the pacing limit leaves at once, and the stream is no longer paced", async () => {
    const { transport, writes, received } = await connect();
    const burst = `<iq>${"x".repeat(9000)}</iq>`;
    transport.write(burst);
    await sleep(100);
    assert.equal(writes.length, 1);
    assert.equal(writes[0]!.length, Buffer.byteLength(burst));
    const later = `<iq>${"y".repeat(2000)}</iq>`;
    transport.write(later);
    await sleep(100);
    assert.equal(writes.length, 2, "after the burst a turn's output is one write again");
    transport.end();
    assert.equal((await received).toString("utf8"), burst + later);
  });

  test("ending the stream delivers the pieces still waiting, then the close", async () => {
    const { transport, received } = await connect();
    const text = `<message>${"z".repeat(3000)}</message>`;
    transport.write(text);
    await nextTurn();
    transport.closeStream();
    transport.end();
    assert.equal((await received).toString("utf8"), `${text}</stream:stream>`);
  });

  test("output for a client that stopped reading is never hidden from the send-buffer limit", async () => {
    const { transport } = await connect();
    const client = clients.at(-1)!;
    client.pause();
    // Small writes, each in its own turn, until the kernel's buffers are full and a piece waits.
    const stanza = `<message>${"w".repeat(480)}</message>`;
    for (let i = 0; i < 40_000 && transport.queuedBytes < 4 * 1024 * 1024; i++) {
      transport.write(stanza);
      await nextTurn();
    }
    await nextTurn();
    assert.ok(transport.queuedBytes > 1024 * 1024, `${transport.queuedBytes} bytes queued`);
    // What waits from earlier turns is backlog (the engine drops the stream past its limit).
    assert.ok(
      transport.backlogBytes >= transport.queuedBytes - 3 * 8192,
      `backlog ${transport.backlogBytes} of ${transport.queuedBytes} queued`,
    );
    transport.destroy();
  });
});
