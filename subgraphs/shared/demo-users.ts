/** The demo's people, one list for every demo service (accounts, orders' buyer names, legacy REST). */
export const DEMO_USERS: Readonly<Record<string, readonly { id: string; name: string; email: string }[]>> = {
  acme: [
    { id: 'u-acme-1', name: 'Alice Adams', email: 'alice@acme.test' },
    { id: 'u-acme-2', name: 'Bob Brown', email: 'bob@acme.test' },
  ],
  globex: [
    { id: 'u-globex-1', name: 'Grace Green', email: 'grace@globex.test' },
    { id: 'u-globex-2', name: 'Hank Hill', email: 'hank@globex.test' },
  ],
};
