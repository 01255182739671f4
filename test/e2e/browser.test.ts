import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../helpers/stack.js';
import { CHROMIUM_PATH } from '../setup/prerequisites.js';


let stack: Stack;
let browser: Browser;

beforeAll(async () => {
  stack = await startStack({ env: { NODE_ENV: 'development' } });
  browser = await chromium.launch({
    // Debian's Chromium (the global setup installs it or names the package), driven headless by
    // playwright-core: no browser download.
    executablePath: CHROMIUM_PATH,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

/** Every request a page makes, to prove it needs nothing but the gateway. */
async function openPage(path: string, initScript?: string) {
  const page = await browser.newPage();
  const requested: string[] = [];
  page.on('request', (request) => requested.push(request.url()));
  if (initScript) await page.addInitScript({ content: initScript });
  await page.goto(`${stack.url}${path}`);
  return { page, requested };
}

describe('in a real browser', () => {
  it('/docs shows the OpenAPI description, offline', async () => {
    const { page, requested } = await openPage('/docs');
    await page.waitForSelector('.swagger-ui .info .title', { timeout: 20_000 });
    expect(await page.textContent('.swagger-ui .info .title')).toContain('federated-gateway');
    await page.getByText('/health/ready', { exact: true }).first().waitFor();
    expect(requested.filter((url) => !url.startsWith(stack.url))).toEqual([]);
    await page.close();
  });

  it('/graphql serves an offline IDE that runs a federated query with a dev token', async () => {
    const authorization = (await stack.bearer({ sub: 'u-acme-1', tenant_id: 'acme', permissions: ['read:orders'] })).authorization;
    // What a developer does by hand: type the query, paste the token into the Headers tab.
    const { page, requested } = await openPage(
      '/graphql',
      `localStorage.setItem('graphiql:query', ${JSON.stringify('{ me { name orders { id } } }')});
       localStorage.setItem('graphiql:headers', ${JSON.stringify(JSON.stringify({ authorization }))});`,
    );
    await page.waitForSelector('.graphiql-execute-button', { timeout: 20_000 });
    await page.click('.graphiql-execute-button');
    await page.waitForFunction('document.body.innerText.includes("Alice Adams")', undefined, { timeout: 20_000 });
    expect(await page.evaluate('document.body.innerText')).toContain('o-acme-1');
    expect(requested.filter((url) => !url.startsWith(stack.url))).toEqual([]);
    await page.close();
  });
});
