import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * What the suite needs besides npm packages: Debian's `redis-server` (real Redis, Sentinel and
 * Cluster tests; it brings `redis-cli`) and Chromium (the browser tests of /docs and the IDE).
 * Missing ones are installed with apt-get when this user may (root, or sudo without a password);
 * otherwise the run stops at once with one line naming the package to install.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

interface Prerequisite {
  /** Debian package that provides it. */
  debianPackage: string;
  present(): boolean;
}

const PREREQUISITES: Prerequisite[] = [
  { debianPackage: 'redis-server', present: () => onPath('redis-server') && onPath('redis-cli') },
  { debianPackage: 'chromium', present: () => existsSync(CHROMIUM_PATH) },
];

export class MissingPrerequisite extends Error {}

export function ensurePrerequisites(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): void {
  const missing = PREREQUISITES.filter((p) => !p.present()).map((p) => p.debianPackage);
  if (missing.length === 0) return;
  const install = installCommand();
  if (install) {
    log(`test prerequisites: installing ${missing.join(' ')} with apt-get`);
    const run = (args: string[]) => spawnSync(install[0]!, [...install.slice(1), ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    run(['apt-get', 'update', '-qq']);
    run(['apt-get', 'install', '-y', '-qq', ...missing]);
  }
  const still = PREREQUISITES.filter((p) => !p.present()).map((p) => p.debianPackage);
  if (still.length > 0) {
    throw new MissingPrerequisite(
      `The tests need the Debian package${still.length > 1 ? 's' : ''} ${still.join(' and ')}: run \`sudo apt-get install ${still.join(' ')}\`` +
        (still.includes('chromium') ? ' (or set CHROMIUM_PATH to a Chromium binary)' : ''),
    );
  }
}

/** The prefix that runs apt-get non-interactively as root (directly, or by sudo without a password); null if none. */
function installCommand(): string[] | null {
  if (!onPath('apt-get')) return null;
  const asRoot = ['env', 'DEBIAN_FRONTEND=noninteractive'];
  if (process.getuid?.() === 0) return asRoot;
  if (onPath('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) return ['sudo', '-n', ...asRoot];
  return null;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));
}
