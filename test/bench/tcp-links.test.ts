/**
 * The bench counts a server's open server-to-server links from /proc/net/tcp
 * (bench/lib/tcp-links.ts): the local address as the kernel writes it, and only established
 * connections whose local end is the server's listening address.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { establishedAt, inboundLinks, procNetAddress } from "../../bench/lib/tcp-links.js";

const TABLE = [
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 02DF5B7F:AD13 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 36744 1",
  "   1: 02DF5B7F:AD13 01DF5B7F:C350 01 00000000:00000000 00:00000000 00000000     0        0 36745 1",
  "   2: 02DF5B7F:AD13 01DF5B7F:C351 01 00000000:00000000 00:00000000 00000000     0        0 36746 1",
  "   3: 02DF5B7F:AD13 01DF5B7F:C352 06 00000000:00000000 00:00000000 00000000     0        0 0 1",
  "   4: 01DF5B7F:C350 02DF5B7F:AD13 01 00000000:00000000 00:00000000 00000000     0        0 36747 1",
  "   5: 0100007F:AD13 0100007F:C353 01 00000000:00000000 00:00000000 00000000     0        0 36748 1",
  "",
].join("\n");

test("an address is written as the kernel writes it in /proc/net/tcp", () => {
  assert.equal(procNetAddress("127.0.0.1", 5269, "LE"), "0100007F:1495");
  assert.equal(procNetAddress("127.91.223.2", 44307, "LE"), "02DF5B7F:AD13");
  assert.equal(procNetAddress("127.91.223.2", 44307, "BE"), "7F5BDF02:AD13");
  assert.throws(() => procNetAddress("::1", 5269), /not an IPv4 address/);
});

test("only established connections to the listening address count", () => {
  // Rows 1 and 2: the listener (0A), a closing one (06), the other end of a link (its local
  // end is the client's) and another address's connection are not links into the server.
  assert.equal(establishedAt(TABLE, "127.91.223.2", 44307, "LE"), 2);
  assert.equal(establishedAt(TABLE, "127.91.223.1", 50000, "LE"), 1);
  assert.equal(establishedAt(TABLE, "127.91.223.2", 5269, "LE"), 0);
});

test("the connections open to a listener on this machine are counted", async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const accepted: net.Socket[] = [];
  server.on("connection", (s) => accepted.push(s));
  const clients: net.Socket[] = [];
  try {
    assert.equal(inboundLinks("127.0.0.1", port), 0);
    for (let i = 0; i < 3; i++) {
      const c = net.connect(port, "127.0.0.1");
      await new Promise((resolve) => c.once("connect", resolve));
      clients.push(c);
    }
    assert.equal(inboundLinks("127.0.0.1", port), 3);
  } finally {
    for (const c of [...clients, ...accepted]) c.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
