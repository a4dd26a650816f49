/** What the browser told the host on its command line. */
export interface NativeHostArguments {
  /**
   * The caller: `chrome-extension://<id>/` from Chromium browsers; for Firefox, which passes the
   * add-on id rather than an origin, `moz-extension://<add-on id>`.
   */
  callerOrigin?: string;
  /** The extension id alone (Chromium id or Firefox add-on id). */
  extensionId?: string;
  /** Which kind of browser started the host, when it can be told. */
  browser?: 'chromium' | 'firefox';
  /** Firefox's first argument: the path of the host manifest it read. */
  manifestPath?: string;
  /** Windows Chrome's `--parent-window=<handle>`. */
  parentWindow?: number;
  /** Every argument not recognised above, in order. */
  rest: string[];
}

const chromeOriginPattern = /^chrome-extension:\/\/([a-p]{32}|[A-Za-z0-9_-]+)\/?$/;

function looksLikeFirefoxManifest(argument: string): boolean {
  return argument.toLowerCase().endsWith('.json') && /native[-_]?messaging[-_]?hosts/i.test(argument);
}

/**
 * Extracts the caller from the arguments a browser passes to a native host: Chromium passes
 * `chrome-extension://<id>/` (and `--parent-window=<n>` on Windows); Firefox passes the host
 * manifest path and the add-on id. Anything else is returned in `rest`.
 */
export function parseNativeHostArguments(argv: readonly string[]): NativeHostArguments {
  const parsed: NativeHostArguments = { rest: [] };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index] as string;
    const chrome = chromeOriginPattern.exec(argument);
    if (chrome && parsed.callerOrigin === undefined) {
      parsed.extensionId = chrome[1];
      parsed.callerOrigin = `chrome-extension://${parsed.extensionId}/`;
      parsed.browser = 'chromium';
      continue;
    }
    if (argument.startsWith('--parent-window=')) {
      const handle = Number(argument.slice('--parent-window='.length));
      if (Number.isInteger(handle)) parsed.parentWindow = handle;
      continue;
    }
    const next = argv[index + 1];
    if (parsed.callerOrigin === undefined && looksLikeFirefoxManifest(argument) && next !== undefined && !next.startsWith('-')) {
      parsed.manifestPath = argument;
      parsed.extensionId = next;
      parsed.callerOrigin = `moz-extension://${next}`;
      parsed.browser = 'firefox';
      index += 1;
      continue;
    }
    parsed.rest.push(argument);
  }
  return parsed;
}
