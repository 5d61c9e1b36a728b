/**
 * `client.start()` of @xmpp/client 0.14, resolved as soon as the client is online.
 *
 * Its start() writes the stream header, waits for the write callback, and only then
 * listens for the server's header ("open"). Under load a TLS write callback can come
 * after the answer has been read, and the "open" it waits for is gone. After RFC 6120
 * SASL the stream restart emits another "open" and start() recovers; after SASL2 there
 * is no restart, so start() times out on a client that is already online. Waiting for
 * "online" as well sidesteps that; a start() that fails before then still rejects.
 */
import type { Client, Jid } from "@xmpp/client";

export function startOnline(client: Client, start: () => Promise<Jid> = () => client.start()): Promise<Jid> {
  return new Promise<Jid>((resolve, reject) => {
    const onOnline = (jid: Jid) => {
      client.removeListener("online", onOnline);
      resolve(jid);
    };
    client.on("online", onOnline);
    start().then(
      (jid) => {
        client.removeListener("online", onOnline);
        resolve(jid);
      },
      (err: unknown) => {
        client.removeListener("online", onOnline);
        reject(err);
      },
    );
  });
}
