/**
 * Where a remote domain's server is reached (RFC 6120 §3.2, XEP-0368): the static host map
 * first, then DNS SRV records `_xmpps-server._tcp` (direct TLS) and `_xmpp-server._tcp`
 * (STARTTLS) merged by priority (direct TLS first at equal priority) and weight, then the
 * domain itself on port 5269 (its A/AAAA records) when it has no SRV records. A single "."
 * target means the domain offers no such service.
 */
import { promises as dns, type SrvRecord } from "node:dns";
import { isIP } from "node:net";

export interface Target {
  host: string;
  port: number;
  directTls: boolean;
}

export class TargetResolver {
  private readonly resolver: dns.Resolver;

  constructor(
    private readonly routes: Readonly<Record<string, string>>,
    dnsServers: readonly string[],
    timeoutMs: number,
  ) {
    this.resolver = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
    if (dnsServers.length > 0) this.resolver.setServers([...dnsServers]);
  }

  async resolve(domain: string): Promise<Target[]> {
    const route = this.routes[domain];
    if (route !== undefined) {
      const colon = route.lastIndexOf(":");
      return [
        {
          host: route.slice(0, colon).replace(/^\[|\]$/g, ""),
          port: Number(route.slice(colon + 1)),
          directTls: false,
        },
      ];
    }
    const [tlsRecords, plainRecords] = await Promise.all([
      this.srv(`_xmpps-server._tcp.${domain}`),
      this.srv(`_xmpp-server._tcp.${domain}`),
    ]);
    if (tlsRecords === undefined && plainRecords === undefined) {
      return this.addresses({ host: domain, port: 5269, directTls: false });
    }
    const records = [
      ...(tlsRecords ?? []).map((r) => ({ ...r, directTls: true })),
      ...(plainRecords ?? []).map((r) => ({ ...r, directTls: false })),
    ].filter((r) => r.name !== "" && r.name !== ".");
    records.sort(
      (a, b) => a.priority - b.priority || Number(b.directTls) - Number(a.directTls) || b.weight - a.weight,
    );
    const targets = await Promise.all(
      records.map((r) => this.addresses({ host: r.name, port: r.port, directTls: r.directTls })),
    );
    return targets.flat();
  }

  /**
   * The target's addresses from the same resolver (IPv6 first, as RFC 6724 prefers), so a
   * configured DNS server answers for them too; the name itself when it has none there (the
   * system's resolver, /etc/hosts included, then has its turn at connection time).
   */
  private async addresses(target: Target): Promise<Target[]> {
    if (isIP(target.host) !== 0) return [target];
    const [v6, v4] = await Promise.all([
      this.resolver.resolve6(target.host).catch(() => [] as string[]),
      this.resolver.resolve4(target.host).catch(() => [] as string[]),
    ]);
    const ips = [...v6, ...v4];
    return ips.length === 0 ? [target] : ips.map((host) => ({ ...target, host }));
  }

  /** SRV records of a name; undefined when it has none (or the lookup failed). */
  private async srv(name: string): Promise<SrvRecord[] | undefined> {
    try {
      const records = await this.resolver.resolveSrv(name);
      return records.length > 0 ? records : undefined;
    } catch {
      return undefined;
    }
  }
}
