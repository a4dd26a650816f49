/**
 * Host names accepted by default: loopback names and any `*.localhost` (RFC 6761 keeps them on
 * this machine), and `host.docker.internal` (what a container, e.g. Open WebUI in Docker, calls
 * the host). None of them can be pointed at this server by a web page's DNS, which is what the
 * check is against. This machine's own name and `<name>.local` are not among them: anyone on the
 * LAN can answer mDNS (or LLMNR) for them, serve a page there, then rebind the name to 127.0.0.1.
 * `--allowed-host` adds them where wanted.
 */
export function defaultAllowedHosts(): string[] {
  return ['localhost', '127.0.0.1', '[::1]', '*.localhost', 'host.docker.internal'];
}

/**
 * Decides whether a `Host` header names this server. Browsers send the attacker's name after a
 * DNS rebinding, so only the default names and the configured ones pass. An entry is an exact
 * name or `*.suffix` (any name ending in `.suffix`).
 */
export class HostPolicy {
  private readonly exact: ReadonlySet<string>;
  private readonly suffixes: readonly string[];

  constructor(extraHosts: readonly string[] = []) {
    const all = [...defaultAllowedHosts(), ...extraHosts].map((host) => host.trim().toLowerCase()).filter((host) => host !== '');
    this.exact = new Set(all.filter((host) => !host.startsWith('*.')));
    this.suffixes = all.filter((host) => host.startsWith('*.')).map((host) => host.slice(1));
  }

  /** True when the Host header (port ignored, case-insensitive) is allowed. */
  allows(hostHeader: string | undefined): boolean {
    if (hostHeader === undefined || hostHeader.length === 0) return false;
    const host = stripPort(hostHeader.toLowerCase());
    return this.exact.has(host) || this.suffixes.some((suffix) => host.endsWith(suffix) && host.length > suffix.length);
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
