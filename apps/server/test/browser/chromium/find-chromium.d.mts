/** Commands looked up on PATH, in order, when CHROME_PATH is not set. */
export declare const chromiumCommands: readonly string[];
/** The one command that installs a browser on this machine, for error messages. */
export declare const installHint: string;
/** The browser executable (CHROME_PATH, else the first of `chromiumCommands` on PATH), or null. */
export declare function findChromium(env?: NodeJS.ProcessEnv): string | null;
/** True on Debian, Ubuntu and their derivatives. */
export declare function isDebianLike(osRelease?: string): boolean;
