const loopbackHosts = ['localhost', '127.0.0.1', '[::1]'];

/**
 * Decides whether a `Host` header names this server. Browsers send the attacker's name after a
 * DNS rebinding, so only loopback names (and configured extras) pass.
 */
export class HostPolicy {
  private readonly allowed: ReadonlySet<string>;

  constructor(extraHosts: readonly string[] = []) {
    this.allowed = new Set([...loopbackHosts, ...extraHosts.map((host) => host.trim().toLowerCase())]);
  }

  /** True when the Host header (port ignored, case-insensitive) is allowed. */
  allows(hostHeader: string | undefined): boolean {
    if (hostHeader === undefined || hostHeader.length === 0) return false;
    return this.allowed.has(stripPort(hostHeader.toLowerCase()));
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
