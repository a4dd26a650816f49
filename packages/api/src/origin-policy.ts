/**
 * Which browser origins may call the server. Any web page can send requests to localhost, so an
 * `Origin` is allowed only when it is listed exactly (the extension ids `install-native-host`
 * recorded, `--allowed-origin`), or when it is the server's own origin (its Swagger UI). A
 * localhost web app is not trusted by default: a dev server, Jupyter or a page opened from
 * `~/Downloads` would otherwise read the user's memory. It is opted in by its exact origin.
 */
export class OriginPolicy {
  private readonly allowed: ReadonlySet<string>;

  constructor(allowedOrigins: readonly string[]) {
    this.allowed = new Set(allowedOrigins.map(normalizeOrigin));
  }

  /** True for a listed origin, or for this server's own origin (`http://<Host>`, Host already checked). */
  allows(origin: string, hostHeader: string | undefined): boolean {
    const normalized = normalizeOrigin(origin);
    if (this.allowed.has(normalized)) return true;
    return hostHeader !== undefined && (normalized === `http://${hostHeader.toLowerCase()}` || normalized === `https://${hostHeader.toLowerCase()}`);
  }
}

/** Lower-cased scheme and host, no trailing slash (Chrome sends `chrome-extension://<id>` without one). */
export function normalizeOrigin(origin: string): string {
  return origin.trim().replace(/\/+$/u, '').toLowerCase();
}
