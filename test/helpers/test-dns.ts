/**
 * A DNS server for one test (UDP, RFC 1035): A and SRV records for test domains, NXDOMAIN
 * for every other name. Peers that only resolve through DNS (Prosody, ejabberd) find the
 * test's servers through it, in a mount namespace whose /etc/resolv.conf names it.
 */
import dgram from "node:dgram";
import { writeFileSync } from "node:fs";
import path from "node:path";

const TYPE = { A: 1, AAAA: 28, SRV: 33 } as const;

interface SrvTarget {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export class TestDns {
  private readonly a = new Map<string, string[]>();
  private readonly srv = new Map<string, SrvTarget[]>();
  /** Questions asked, "name TYPE", for assertions. */
  readonly asked: string[] = [];

  private constructor(
    private readonly socket: dgram.Socket,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(host: string, port = 53): Promise<TestDns> {
    const socket = dgram.createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => resolve());
    });
    const dns = new TestDns(socket, host, socket.address().port);
    socket.on("message", (msg, rinfo) => {
      const reply = dns.answer(msg);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    });
    return dns;
  }

  addA(name: string, ip: string): this {
    this.a.set(name.toLowerCase(), [...(this.a.get(name.toLowerCase()) ?? []), ip]);
    return this;
  }

  addSrv(name: string, target: SrvTarget): this {
    this.srv.set(name.toLowerCase(), [...(this.srv.get(name.toLowerCase()) ?? []), target]);
    return this;
  }

  /** A resolv.conf naming this server, written into `dir`. */
  resolvConf(dir: string): string {
    const file = path.join(dir, "resolv.conf");
    writeFileSync(file, `nameserver ${this.host}\noptions timeout:2 attempts:2\n`);
    return file;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }

  private answer(msg: Buffer): Buffer | undefined {
    if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
    let offset = 12;
    const labels: string[] = [];
    while (offset < msg.length && msg[offset]! !== 0) {
      const len = msg[offset]!;
      if (len > 63) return undefined;
      labels.push(msg.subarray(offset + 1, offset + 1 + len).toString("ascii"));
      offset += len + 1;
    }
    offset++;
    if (offset + 4 > msg.length) return undefined;
    const qtype = msg.readUInt16BE(offset);
    const question = msg.subarray(12, offset + 4);
    const name = labels.join(".").toLowerCase();
    this.asked.push(`${name} ${qtype}`);
    const answers: Buffer[] = [];
    if (qtype === TYPE.A) {
      for (const ip of this.a.get(name) ?? [])
        answers.push(record(TYPE.A, Buffer.from(ip.split(".").map(Number))));
    } else if (qtype === TYPE.SRV) {
      for (const t of this.srv.get(name) ?? []) {
        const fixed = Buffer.alloc(6);
        fixed.writeUInt16BE(t.priority, 0);
        fixed.writeUInt16BE(t.weight, 2);
        fixed.writeUInt16BE(t.port, 4);
        answers.push(record(TYPE.SRV, Buffer.concat([fixed, encodeName(t.target)])));
      }
    }
    const known = this.a.has(name) || this.srv.has(name);
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0);
    // QR, the question's RD, RA; NXDOMAIN for names this server does not know.
    header.writeUInt16BE(0x8000 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | (known ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    return Buffer.concat([header, question, ...answers]);
  }
}

function record(type: number, data: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // the question's name
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(60, 6);
  head.writeUInt16BE(data.length, 10);
  return Buffer.concat([head, data]);
}

function encodeName(name: string): Buffer {
  const parts = name.split(".").filter((p) => p !== "");
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, "ascii")])),
    Buffer.from([0]),
  ]);
}
