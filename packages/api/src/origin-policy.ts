const localhostOriginPattern = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/;

/**
 * Which browser origins may call the server. Any web page can send requests to localhost, so a
 * request carrying an `Origin` that is neither a configured extension nor localhost is refused.
 */
export class OriginPolicy {
  private readonly allowed: ReadonlySet<string>;

  constructor(allowedOrigins: readonly string[]) {
    this.allowed = new Set(allowedOrigins.map((origin) => origin.trim().replace(/\/+$/, '')));
  }

  /** True for a configured extension origin or a localhost origin (any port). */
  allows(origin: string): boolean {
    return this.allowed.has(origin) || localhostOriginPattern.test(origin);
  }
}
