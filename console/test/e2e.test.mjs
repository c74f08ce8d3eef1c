// The web console in a real browser: Debian's chromium driven by
// playwright-core, against a real `imagesmith serve` on a fresh data
// directory (a real build, on the suite's shared Debian base). ctest runs it
// as e2e_console (tests/CMakeLists.txt):
//   node console/test/e2e.test.mjs IMAGESMITH_BINARY SCREENSHOT_DIR
// Checks: a template from JSON with a deliberate error (shown at its line),
// fixed and saved; a run whose log lines arrive while it runs, its run
// history and its disk downloaded by range; the version in the gallery view
// with its region; the server's operation list; a Batch pool created from
// the image picker whose sim nodes reach idle; Service Fabric node types
// with a rollout's batches and history; a CycleCloud cluster; a Reader's
// disabled run and create buttons and the 403 a forced request gets;
// axe-core on every view (no serious or critical violations); keyboard use
// and a narrow window. Saves a screenshot of each view in SCREENSHOT_DIR.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BIN = process.argv[2] || process.env.IMAGESMITH_BIN;
const SHOTS = process.argv[3] || process.env.CONSOLE_SCREENSHOTS || join(tmpdir(), 'console-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
assert.ok(BIN, 'usage: e2e.test.mjs IMAGESMITH_BINARY [SCREENSHOT_DIR]');
mkdirSync(SHOTS, { recursive: true });

const home = mkdtempSync(join(tmpdir(), 'console-e2e-'));
// The Debian base is built once per test run and shared (tests/e2e_util.cc).
const cache = process.env.IMAGESMITH_TEST_CACHE || mkdtempSync(join(tmpdir(), 'console-cache-'));
symlinkSync(cache, join(home, 'catalog'));
const env = { ...process.env, IMAGESMITH_HOME: home };
const cli = (...args) => execFileSync(BIN, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let serve;
let base;
let browser;
let SUB;
let ownerToken;
let readerToken;
const violations = [];

before(async () => {
  SUB = JSON.parse(cli('account', 'show')).id;
  cli('group', 'create', '-n', 'imgs', '-l', 'eastus');
  cli('sig', 'create', '-g', 'imgs', '-r', 'gal');
  cli('sig', 'image-definition', 'create', '-g', 'imgs', '-r', 'gal', '-i', 'deb', '--publisher', 'me',
    '--offer', 'debian', '--sku', '12', '--os-type', 'Linux', '--hyper-v-generation', 'V2');
  // The fleet's fixture, on a small imported disk (the sim driver boots
  // nothing): a managed image, a definition with 1.0.0, a Service Fabric
  // node type floating on it moved to 1.0.1 by a rollout, a CycleCloud
  // cluster. (The Batch pool is created in the browser.)
  const disk = Buffer.alloc(4 << 20);
  for (let i = 0; i < disk.length; i += 4096) disk[i] = 0x78;
  writeFileSync(join(home, 'fleet-disk.raw'), disk);
  cli('group', 'create', '-n', 'fleet', '-l', 'eastus');
  cli('image', 'create', '-g', 'fleet', '-n', 'img', '--source', join(home, 'fleet-disk.raw'), '--os-type', 'Linux');
  cli('sig', 'create', '-g', 'fleet', '-r', 'fgal');
  cli('sig', 'image-definition', 'create', '-g', 'fleet', '-r', 'fgal', '-i', 'fdeb', '--publisher', 'P',
    '--offer', 'O', '--sku', 'S', '--os-type', 'Linux');
  cli('sig', 'image-version', 'create', '-g', 'fleet', '-r', 'fgal', '-i', 'fdeb', '-e', '1.0.0', '--managed-image', 'img');
  const def = JSON.parse(cli('sig', 'image-definition', 'show', '-g', 'fleet', '-r', 'fgal', '-i', 'fdeb')).id;
  cli('sf', 'managed-cluster', 'create', '-g', 'fleet', '-c', 'sfclus', '--sku', 'Basic');
  cli('role', 'assignment', 'create', '--assignee', 'fbc587f2-66f5-4459-a027-bcd908b9d278', '--role', 'Reader', '--scope', def);
  cli('sf', 'managed-node-type', 'create', '-g', 'fleet', '-c', 'sfclus', '-n', 'nt', '--primary', '--instance-count', '3',
    '--vm-image-resource-id', def, '--node-driver', 'sim');
  cli('sig', 'image-version', 'create', '-g', 'fleet', '-r', 'fgal', '-i', 'fdeb', '-e', '1.0.1', '--managed-image', 'img');
  cli('sf', 'managed-node-type', 'rollout', 'start', '-g', 'fleet', '-c', 'sfclus', '-n', 'nt');
  writeFileSync(join(home, 'cluster.txt'), '[cluster Big]\n    [[node head]]\n    MachineType = Standard_D2s_v3\n' +
    '    ImageName = cycle.image.debian12\n\n    [[nodearray workers]]\n    MachineType = Standard_D2s_v3\n' +
    '    ImageName = cycle.image.debian12\n    MaxCount = 8\n');
  cli('cyclecloud', 'import_cluster', 'big', '-f', join(home, 'cluster.txt'), '-g', 'fleet');
  ownerToken = JSON.parse(cli('account', 'get-access-token')).accessToken;
  const sp = JSON.parse(cli('ad', 'sp', 'create-for-rbac', '--name', 'reader', '--role', 'Reader',
    '--scopes', `/subscriptions/${SUB}`));
  readerToken = JSON.parse(cli('account', 'get-access-token', '--service-principal', '-u', sp.appId,
    '-p', sp.password)).accessToken;
  serve = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--access-log', 'off'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  base = await new Promise((resolve, reject) => {
    let out = '';
    serve.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)).url);
    });
    serve.on('exit', (code) => reject(new Error(`imagesmith serve exited with ${code}`)));
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  serve?.kill('SIGTERM');
  if (!process.env.KEEP_CONSOLE_E2E) rmSync(home, { recursive: true, force: true });
});

async function signIn(page, tok) {
  await page.goto(`${base}/#/signin`);
  await page.fill('#token', tok);
  await page.click('button[type=submit]');
  await page.waitForSelector('h1:text("Image templates")');
}

// axe-core on the page as it is; collects serious and critical violations.
async function axe(page, view) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') {
      violations.push(`${view}: ${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    }
  }
}

async function view(page, hash, name, waitFor, fullPage = false) {
  await page.goto(`${base}/#${hash}`);
  await page.waitForSelector(waitFor);
  await page.waitForFunction(() => !document.querySelector('main[aria-busy]'));
  await axe(page, name);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

// PUT of a template through the page's own token; the HTTP status.
function putTemplate(page, name, body) {
  return page.evaluate(
    async ([id, text]) => {
      const r = await fetch(`${id}?api-version=2024-02-01`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${sessionStorage.getItem('imagesmith.token')}`, 'Content-Type': 'application/json' },
        body: text,
      });
      return r.status;
    },
    [`/subscriptions/${SUB}/resourceGroups/imgs/providers/Microsoft.VirtualMachineImages/imageTemplates/${name}`, JSON.stringify(body)],
  );
}

const TEMPLATE_BAD = `{
  "apiVersion": "2022-07-01",
  "location": "eastus",
  "properties": {
    "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
               "sku": "12-gen2", "version": "latest"},
    "customize": [
      {"type": "Shell", "name": "hello",
       "inlin": ["for i in 1 2 3; do echo console-line-$i; sleep 2; done"]}
    ],
    "distribute": [{"type": "SharedImage", "runOutputName": "gal",
      "galleryImageId": "/subscriptions/SUB/resourceGroups/imgs/providers/Microsoft.Compute/galleries/gal/images/deb",
      "targetRegions": [{"name": "eastus"}, {"name": "westus2"}]}]
  }
}
`;

test('a template from JSON with a deliberate error, run, log, gallery version', { timeout: 30 * 60 * 1000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, ownerToken);
  await page.waitForFunction(() => !document.querySelector('main[aria-busy]'));
  await axe(page, 'templates-empty');

  await page.goto(`${base}/#/templates/new`);
  await page.waitForSelector('#tpl-json');
  await page.selectOption('#tpl-group', 'imgs');
  await page.fill('#tpl-name', 'web');
  // An uploaded file lands in the editor.
  const bad = TEMPLATE_BAD.replaceAll('SUB', SUB);
  await page.setInputFiles('#tpl-file', { name: 'web.json', mimeType: 'application/json', buffer: Buffer.from(bad) });
  await page.waitForFunction((text) => document.getElementById('tpl-json').value === text, bad);
  // A syntax error first: a missing comma at the end of line 2.
  await page.fill('#tpl-json', bad.replace('"2022-07-01",', '"2022-07-01"'));
  // (Each edit is checked 300 ms after it; wait for this one's answer.)
  await page.waitForSelector('#tpl-problems li:has-text("expected \',\' or")');
  let problems = await page.textContent('#tpl-problems');
  assert.match(problems, /Line 3, column 3: error: expected ',' or '}'/);
  assert.equal(await page.getAttribute('#tpl-json', 'aria-invalid'), 'true');
  // Then the validator's error: a misspelt member on line 9.
  await page.fill('#tpl-json', bad);
  await page.waitForSelector('#tpl-problems li:has-text("inlin")');
  problems = await page.textContent('#tpl-problems');
  assert.match(problems, /Line 9, column 8: error: properties\.customize\[0\]\.inlin: unknown property "inlin"/, problems);
  assert.deepEqual(await page.$$eval('.gutter .bad', (l) => l.map((e) => e.textContent)), ['8', '9']);
  await axe(page, 'template-new');
  await page.screenshot({ path: join(SHOTS, 'template-new-error.png') });
  // Jump to it from the list, fix it, save.
  await page.click('#tpl-problems li button');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tpl-json');
  const fixed = bad.replace('"inlin":', '"inline":');
  await page.fill('#tpl-json', fixed);
  await page.waitForSelector('#tpl-problems .ok');
  await page.click('button:text("Save")');
  await page.waitForSelector('h1:text("web")');
  assert.ok(page.url().endsWith('#/templates/imgs/web'));

  // Run it; log lines arrive while the run is Running.
  await page.click('#run');
  const seenWhileRunning = await page.waitForFunction(
    () => {
      const log = document.getElementById('run-log').textContent;
      const state = document.querySelector('section .badge')?.textContent;
      return state === 'Running' && /console-line-1/.test(log) && !/==== run /.test(log) ? log.length : 0;
    },
    null,
    { timeout: 20 * 60 * 1000, polling: 250 },
  );
  assert.ok((await seenWhileRunning.jsonValue()) > 0);
  await page.waitForFunction(() => document.querySelector('section .badge')?.textContent === 'Succeeded', null, {
    timeout: 20 * 60 * 1000,
    polling: 1000,
  });
  const log = await page.textContent('#run-log');
  assert.match(log, /console-line-3/);
  // Steps with timings and the cache miss (the first run) and its reason.
  await page.waitForSelector('table:has(caption:text-matches("Steps of run")) .badge:text("Miss")');
  await page.waitForSelector('table:has(caption:text("Run outputs")) td:text("gal")');
  // The last run's facts: the disk, and the cache counts.
  assert.match(await page.textContent('section:has(#h-last)'), /0 hits, 1 misses[\s\S]*disk\.raw/);
  // The run history: this run, Succeeded, its cache counts; its steps with
  // their timings and cache results when opened.
  await page.waitForSelector('table:has(caption:text("Runs, newest first")) td .badge:text("Succeeded")');
  assert.match(await page.textContent('section:has(#h-history)'), /Succeeded[\s\S]*0 hits, 1 misses[\s\S]*disk\.raw/);
  await page.click('section:has(#h-history) details summary');
  await page.waitForSelector('section:has(#h-history) details table td:text("hello")');
  assert.match(await page.textContent('section:has(#h-history) details table'), /hello[\s\S]*?\d\d:\d\d:\d\d\s*\d+\.\d s\s*Miss/);
  // The disk's download link, read through HTTP by range: its first sector
  // ends in the MBR signature (a GPT disk's protective MBR).
  const href = await page.getAttribute('#download-disk', 'href');
  const got = await page.evaluate(async (url) => {
    const r = await fetch(url, { headers: { Range: 'bytes=0-511' } });
    const b = new Uint8Array(await r.arrayBuffer());
    return { status: r.status, range: r.headers.get('Content-Range'), length: b.length, sig: [b[510], b[511]] };
  }, href);
  assert.equal(got.status, 206);
  assert.match(got.range, /^bytes 0-511\/\d+$/);
  assert.equal(got.length, 512);
  assert.deepEqual(got.sig, [0x55, 0xaa]);
  const whole = await page.evaluate(async (url) => {
    const r = await fetch(url, { method: 'HEAD' });
    return { status: r.status, length: r.headers.get('Content-Length'), disposition: r.headers.get('Content-Disposition') };
  }, href);
  assert.equal(whole.status, 200);
  assert.equal(Number(whole.length), Number(got.range.split('/')[1]));
  assert.match(whole.disposition, /^attachment; filename="web-.*-disk\.raw"$/);
  // A runId that tries to leave the run directories is refused.
  const traversal = await page.evaluate(async (url) => {
    const u = new URL(url, location.href);
    u.searchParams.set('runId', '../../../../etc');
    const r = await fetch(u);
    return [r.status, (await r.json()).error.code];
  }, href);
  assert.deepEqual(traversal, [400, 'InvalidParameter']);
  await axe(page, 'template');
  await page.screenshot({ path: join(SHOTS, 'template.png') });

  // The version in the gallery view, with its regions.
  await page.click('table:has(caption:text("Run outputs")) a');
  await page.waitForSelector('h1:text-matches("Version ")');
  const regions = await page.textContent('table:has(caption:text("Target regions"))');
  assert.match(regions, /East US\s*1\s*Standard_LRS\s*Completed/);
  assert.match(regions, /West US 2\s*1\s*Standard_LRS\s*Completed/);
  await axe(page, 'version');
  await page.screenshot({ path: join(SHOTS, 'version.png') });
  await view(page, '/galleries/imgs/gal/deb', 'definition', 'table:has(caption:text("Latest version per region")) td:text("West US 2")');
  const latest = await page.textContent('table:has(caption:text("Latest version per region"))');
  assert.match(latest, /eastus\s*1\.0\.0/);
  assert.match(latest, /West US 2\s*1\.0\.0/);

  // Cancel: a run whose step would sleep for minutes, canceled once its
  // first line is in the log.
  const slow = JSON.parse(fixed);
  slow.properties.customize = [{ type: 'Shell', name: 'slow', inline: ['echo started-slow', 'sleep 300'] }];
  slow.properties.distribute = [];
  assert.equal(await putTemplate(page, 'slow', slow), 201);
  await page.goto(`${base}/#/templates/imgs/slow`);
  await page.waitForSelector('#run:not([disabled])');
  assert.equal(await page.isDisabled('#cancel'), true);
  await page.click('#run');
  await page.waitForFunction(() => /started-slow/.test(document.getElementById('run-log').textContent), null, {
    timeout: 10 * 60 * 1000,
  });
  await page.click('#cancel:not([disabled])');
  await page.waitForFunction(() => document.querySelector('section .badge')?.textContent === 'Canceled', null, {
    timeout: 5 * 60 * 1000,
  });
  assert.match(await (await page.waitForSelector('.op [role=alert]')).textContent(), /^OperationCanceled: /);

  // A run that fails: its operation ends in the ARM error's code and message.
  const broken = JSON.parse(fixed);
  broken.properties.customize = [{ type: 'Shell', name: 'fails', inline: ['echo about to fail', 'exit 3'] }];
  broken.properties.distribute = [];
  assert.equal(await putTemplate(page, 'broken', broken), 201);
  await page.goto(`${base}/#/templates/imgs/broken`);
  await page.waitForSelector('#run:not([disabled])');
  await page.click('#run');
  const failed = await page.waitForSelector('.op [role=alert]', { timeout: 10 * 60 * 1000 });
  assert.match(await failed.textContent(), /^BuildFailed: the run Failed: .*exit/);
  assert.match(await page.textContent('#run-log'), /about to fail/);
  await axe(page, 'template-failed');

  // Every other view.
  await view(page, '/templates', 'templates', 'td a:text("web")');
  await view(page, '/galleries', 'galleries', 'td a:text("gal")');
  await view(page, '/galleries/imgs/gal', 'gallery', 'td a:text("deb")');
  await view(page, '/images', 'images', 'caption:text("Managed images")');
  await view(page, '/roles', 'roles', 'td:text("Reader")');
  await view(page, '/operations', 'operations', '.op .badge:text("Failed")');
  assert.match(await page.textContent('main'), /run web\s*Succeeded[\s\S]*run broken\s*Failed[\s\S]*BuildFailed:|run broken\s*Failed[\s\S]*BuildFailed:[\s\S]*run web\s*Succeeded/);
  await view(page, '/picker', 'picker', '#pick-gallery:not([disabled])');
  await page.selectOption('#pick-gallery', { label: 'gal' });
  await page.selectOption('#pick-definition', { label: 'deb' });
  await page.waitForSelector('#pick-version option:nth-child(2)', { state: 'attached' });
  await page.selectOption('#pick-version', { label: '1.0.0' });
  await page.click('button:text("Use this version")');
  assert.match(await page.textContent('main'), /Chosen: \/subscriptions\/.*\/galleries\/gal\/images\/deb\/versions\/1\.0\.0/);
  await page.screenshot({ path: join(SHOTS, 'picker.png') });
  await page.goto(`${base}/#/signin`);
  await page.waitForSelector('#token');
  await axe(page, 'signin');
  await page.screenshot({ path: join(SHOTS, 'signin.png') });

  // A narrow window: nothing wider than the window.
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto(`${base}/#/templates/imgs/web`);
  await page.waitForSelector('h1:text("web")');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 390px window`);
  await axe(page, 'template-narrow');
  await page.screenshot({ path: join(SHOTS, 'template-narrow.png') });
  await page.close();
  assert.deepEqual(violations, []);
});

test('the fleet: a pool from the picker whose sim nodes reach idle; node types; clusters', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, ownerToken);
  await view(page, '/fleet', 'fleet-before', 'td a:text("nt")');
  await page.click('a:text("Create a pool")');
  await page.waitForSelector('#pool-name');
  await page.selectOption('#pool-group', 'fleet');
  await page.fill('#pool-account', 'acct');
  await page.fill('#pool-name', 'simpool');
  await page.fill('#pool-nodes', '3');
  await page.selectOption('#pool-driver', 'sim');
  // The image from the picker: gallery -> definition -> version.
  await page.waitForSelector('#pick-gallery:not([disabled])');
  await page.selectOption('#pick-gallery', { label: 'fgal' });
  await page.waitForSelector('#pick-definition option:nth-child(2)', { state: 'attached' });
  await page.selectOption('#pick-definition', { label: 'fdeb' });
  await page.waitForSelector('#pick-version option:nth-child(3)', { state: 'attached' });
  await page.selectOption('#pick-version', { label: '1.0.1' });
  await page.click('button:text("Use this version")');
  assert.match(await page.inputValue('#pool-image'), /\/galleries\/fgal\/images\/fdeb\/versions\/1\.0\.1$/);
  await axe(page, 'pool-new');
  await page.screenshot({ path: join(SHOTS, 'pool-new.png') });
  await page.click('button:text("Create pool")');
  await page.waitForSelector('h1:text("Pool simpool")');
  assert.ok(page.url().endsWith('#/fleet/batch/fleet/acct/simpool'));
  // The view polls until the nodes settle: all three idle.
  await page.waitForFunction(() => /idle\s*3/.test(document.getElementById('node-counts')?.textContent || ''), null, {
    timeout: 3 * 60 * 1000,
    polling: 500,
  });
  const states = await page.$$eval('table:has(caption:text-is("Nodes")) tbody tr td:nth-child(2)', (l) => l.map((e) => e.textContent));
  assert.deepEqual(states, ['idle', 'idle', 'idle']);
  assert.match(await page.textContent('section:has(#h-pool)'), /steady[\s\S]*fgal\/fdeb\/1\.0\.1[\s\S]*sim[\s\S]*3 of 3/);
  await page.waitForFunction(() => !document.querySelector('main[aria-busy]'));
  await axe(page, 'pool');
  await page.screenshot({ path: join(SHOTS, 'pool.png'), fullPage: true });

  await view(page, '/fleet', 'fleet', 'td a:text("simpool")');
  assert.match(await page.textContent('table:has(caption:text("Batch pools"))'), /simpool[\s\S]*steady[\s\S]*3 \/ 3\s*idle\s*3/);
  assert.match(await page.textContent('table:has(caption:text("CycleCloud clusters"))'), /big\s*fleet\s*Off\s*Off\s*1/);
  await view(page, '/fleet/sf/fleet/sfclus', 'sf-cluster', 'td a:text("nt")');
  // The node type: its nodes on 1.0.1, the rollout that moved them in three
  // batches (one upgrade domain each) with its gates, and the history.
  await view(page, '/fleet/sf/fleet/sfclus/nt', 'node-type', 'table:has(caption:text("Batches"))', true);
  const nt = await page.textContent('main');
  assert.match(nt, /Nodes: OnCurrentImage 3/);
  const batches = await page.$$eval('table:has(caption:text("Batches")) tbody tr', (l) => l.map((e) => e.textContent));
  assert.equal(batches.length, 3);
  batches.forEach((b) => assert.match(b, /Healthy/));
  assert.match(await page.textContent('section:has(#h-rollout)'), /Completed[\s\S]*fgal\/fdeb\/1\.0\.1[\s\S]*by User[\s\S]*3 succeeded, 0 failed/);
  assert.match(await page.textContent('table:has(caption:text("Gates"))'), /Unhealthy instances \(all\)\s*20%\s*0%/);
  assert.match(await page.textContent('table:has(caption:text("Upgrade history"))'), /Completed\s*fgal\/fdeb\/1\.0\.1\s*User/);
  await view(page, '/fleet/cyclecloud/fleet/big', 'cyclecloud', 'td:text("head")');
  assert.match(await page.textContent('table:has(caption:text-is("Nodes"))'), /head\s*Off/);
  await page.close();
  assert.deepEqual(violations, []);
});

test('a bookmarked view opened without a token goes through sign-in and back', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${base}/#/galleries/imgs/gal`);
  await page.fill('#token', ownerToken);
  await page.click('button[type=submit]');
  await page.waitForSelector('h1:text("gal")');
  assert.ok(page.url().endsWith('#/galleries/imgs/gal'));
  await page.close();
});

test('keyboard: skip link, then the navigation by Tab and Enter', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, ownerToken);
  await page.reload();
  await page.waitForSelector('h1:text("Image templates")');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  for (let k = 0; k < 10; k++) {
    await page.keyboard.press('Tab');
    if ((await page.evaluate(() => document.activeElement.textContent)) === 'Galleries') break;
  }
  await page.keyboard.press('Enter');
  await page.waitForSelector('h1:text("Galleries")');
  assert.ok(page.url().endsWith('#/galleries'));
  await page.close();
});

test('a Reader sees the run button disabled, and a forced run gets 403 with the message', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, readerToken);
  await page.waitForSelector('button:text("New template")');
  assert.equal(await page.isDisabled('button:text("New template")'), true);
  await page.goto(`${base}/#/templates/imgs/web`);
  await page.waitForSelector('#run');
  assert.equal(await page.isDisabled('#run'), true);
  // Force it: enable the button and press it.
  await page.$eval('#run', (b) => {
    b.disabled = false;
  });
  await page.click('#run');
  const alert = await page.waitForSelector('[role=alert]');
  const text = await alert.textContent();
  assert.match(text, /AuthorizationFailed: .*does not have authorization to perform action 'Microsoft\.VirtualMachineImages\/imageTemplates\/run\/action'/);
  const status = await page.evaluate(async (id) => {
    const r = await fetch(`${id}/run?api-version=2022-07-01`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${sessionStorage.getItem('imagesmith.token')}` },
    });
    return r.status;
  }, `/subscriptions/${SUB}/resourceGroups/imgs/providers/Microsoft.VirtualMachineImages/imageTemplates/web`);
  assert.equal(status, 403);
  await axe(page, 'template-reader');
  await page.screenshot({ path: join(SHOTS, 'template-reader.png') });
  // A Reader may download (read) the disk.
  const href = await page.getAttribute('#download-disk', 'href');
  assert.equal(await page.evaluate(async (url) => (await fetch(url, { method: 'HEAD' })).status, href), 200);
  // The fleet: everything shown, nothing that writes may be pressed.
  await view(page, '/fleet', 'fleet-reader', 'td a:text("simpool")');
  assert.equal(await page.isDisabled('button:text("Create a pool")'), true);
  for (const [hash, sel] of [
    ['/fleet/batch/fleet/acct/simpool', 'td .badge:text("idle")'],
    ['/fleet/sf/fleet/sfclus/nt', 'table:has(caption:text("Batches"))'],
    ['/fleet/cyclecloud/fleet/big', 'td:text("head")'],
  ]) {
    await page.goto(`${base}/#${hash}`);
    await page.waitForSelector(sel);
    assert.equal(await page.$$eval('main button:not([disabled]), main input:not([readonly])', (l) => l.length), 0, hash);
  }
  // The Operations view lists what the Reader may read (the server's list).
  await page.goto(`${base}/#/operations`);
  await page.waitForSelector('.op .badge:text("Succeeded")');
  assert.match(await page.textContent('main'), /run web\s*Succeeded/);
  await page.close();
  assert.deepEqual(violations, []);
});
