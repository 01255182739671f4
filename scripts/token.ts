import { parseArgs } from 'node:util';
import { ensureDevKeys, mintDevToken } from '../src/auth/dev-keys.js';

/**
 * `npm run token -- --sub <user id> [options]`: prints a development token the demo gateway
 * (`npm start`) accepts. `--help` lists the options.
 */
const USAGE = `Mints a development token that the demo gateway (npm start) accepts.

Usage: npm run token -- --sub <user id> [options]

Options:
  --sub <id>                 user id, the token's subject (required)
  --tenant <id>              the user's tenant
  --roles <a,b>              roles, comma-separated; the first is the role in --tenant
  --permissions <x,y>        permissions, comma-separated
  --tenant-access <t:r,...>  other tenants the user may act for, as tenant:role
  --tier <name>              subscription tier (default: pro)
  --demo                     mark the user as a demo user
  --expires <period>         lifetime, e.g. 30m, 8h, 2d (default: 8h)
  -h, --help                 show this help

Keys live in .dev/ (git-ignored), created by the first npm start or npm run token.
Example: npm run token -- --sub u-globex-1 --tenant globex --roles viewer
`;

/** sysexits(3) EX_USAGE: the command line was wrong. */
const EXIT_USAGE = 64;
const HINT = 'Run `npm run token -- --help` for usage.';

const OPTIONS = {
  help: { type: 'boolean', short: 'h', default: false },
  sub: { type: 'string' },
  tenant: { type: 'string' },
  roles: { type: 'string', default: '' },
  permissions: { type: 'string', default: '' },
  'tenant-access': { type: 'string', default: '' },
  tier: { type: 'string', default: 'pro' },
  demo: { type: 'boolean', default: false },
  expires: { type: 'string', default: '8h' },
} as const;

/** One line on stderr and a non-zero exit: a newcomer's typo deserves no stack trace. */
function fail(message: string, exitCode = EXIT_USAGE): never {
  process.stderr.write(`npm run token: ${message}${exitCode === EXIT_USAGE ? ` ${HINT}` : ''}\n`);
  process.exit(exitCode);
}

function parseCommandLine(args: string[]) {
  try {
    return parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw error;
    // Node's messages go on to explain `--` positionals; the first sentence is the useful part.
    fail(`${String(message).split('. ')[0]}.`);
  }
}

const list = (text: string | undefined) => (text ? text.split(',').map((s) => s.trim()).filter(Boolean) : []);

const values = parseCommandLine(process.argv.slice(2));
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (!values.sub) fail('--sub <user id> is required.');

const roles = list(values.roles);
const extraAccess = list(values['tenant-access']).map((entry) => {
  const [tenant_id = '', role = 'member'] = entry.split(':');
  return { tenant_id, role };
});

await ensureDevKeys();
try {
  const token = await mintDevToken({
    sub: values.sub,
    tenant: values.tenant,
    roles,
    permissions: list(values.permissions),
    tenantAccess: [...(values.tenant ? [{ tenant_id: values.tenant, role: roles[0] ?? 'member' }] : []), ...extraAccess],
    tier: values.tier,
    demo: values.demo,
    expiresIn: values.expires,
  });
  console.log(token);
} catch (error) {
  // jose rejects a bad --expires ("Invalid time period format") here.
  fail(`cannot mint the token: ${(error as Error).message}`, 1);
}
