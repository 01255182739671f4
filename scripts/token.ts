import { parseArgs } from 'node:util';
import { ensureDevKeys, mintDevToken } from '../src/auth/dev-keys.js';

/**
 * npm run token -- --sub u-acme-1 --tenant acme --roles admin --permissions read:orders,write:orders
 *                  [--tenant-access globex:viewer,initech:admin] [--tier pro] [--demo] [--expires 8h]
 * Prints a development token the demo gateway (`npm start`) accepts.
 */
const { values } = parseArgs({
  options: {
    sub: { type: 'string' },
    tenant: { type: 'string' },
    roles: { type: 'string', default: '' },
    permissions: { type: 'string', default: '' },
    'tenant-access': { type: 'string', default: '' },
    tier: { type: 'string', default: 'pro' },
    demo: { type: 'boolean', default: false },
    expires: { type: 'string', default: '8h' },
  },
});
if (!values.sub) {
  console.error('usage: npm run token -- --sub <user id> [--tenant <id>] [--roles a,b] [--permissions x,y] ...');
  process.exit(64);
}
const list = (text: string | undefined) => (text ? text.split(',').map((s) => s.trim()).filter(Boolean) : []);
const roles = list(values.roles);
const extraAccess = list(values['tenant-access']).map((entry) => {
  const [tenant_id = '', role = 'member'] = entry.split(':');
  return { tenant_id, role };
});

await ensureDevKeys();
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
