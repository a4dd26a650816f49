// Finds the Chromium (or Chrome) that the browser tests drive, the way users have one installed.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Commands looked up on PATH, in order, when CHROME_PATH is not set. */
export const chromiumCommands = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** The one command that installs a browser on this machine, for error messages. */
export const installHint = 'apt-get install -y chromium (Debian/Ubuntu, as root or with sudo), or set CHROME_PATH to a Chromium or Chrome executable';

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The browser executable: CHROME_PATH when set (which must exist), else the first of
 * `chromiumCommands` on PATH; null when there is none.
 */
export function findChromium(env = process.env) {
  const configured = env.CHROME_PATH;
  if (configured !== undefined && configured !== '') {
    if (!isExecutable(configured)) throw new Error(`CHROME_PATH is ${configured}, which is not an executable file`);
    return configured;
  }
  const directories = (env.PATH ?? '').split(path.delimiter).filter((directory) => directory !== '');
  for (const command of chromiumCommands) {
    for (const directory of directories) {
      const candidate = path.join(directory, command);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return null;
}

/** True on Debian, Ubuntu and their derivatives (os-release ID or ID_LIKE), where apt has `chromium`. */
export function isDebianLike(osRelease = '/etc/os-release') {
  if (!existsSync(osRelease)) return false;
  const fields = Object.fromEntries(
    readFileSync(osRelease, 'utf8')
      .split('\n')
      .map((line) => line.match(/^([A-Z_]+)=("?)(.*)\2$/))
      .filter((match) => match !== null)
      .map((match) => [match[1], match[3]]),
  );
  return [fields.ID, ...(fields.ID_LIKE ?? '').split(' ')].some((id) => id === 'debian' || id === 'ubuntu');
}
