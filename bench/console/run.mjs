// The console's first-load budget, against a floor: nginx serving a static
// HTML page of the same data. Both on 127.0.0.1, measured in the same run
// with Debian's chromium (playwright-core from console/node_modules):
//   - bytes on the wire (gzip) of the console's HTML, JavaScript and CSS, and
//     of the API answers it needs; and of nginx's page;
//   - time to the first useful paint: from navigation start to the first
//     animation frame in which the gallery's 20 image definitions are in the
//     table (median of RUNS cold loads, each in a fresh browser context);
//   - first contentful paint (the browser's own "paint" entry).
// Writes bench/console/README.md's results table to RESULTS (default:
// bench/console/results.md).
//
// Usage: bench/console/run.sh, or node bench/console/run.mjs [BUILD_DIR]
// (needs nginx, chromium). RUNS: cold loads per page (default 7).
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '../..');
const require = createRequire(join(repo, 'console/package.json'));
const { chromium } = require('playwright-core');
const build = process.argv[2] || join(repo, 'build');
const BIN = join(build, 'imagesmith');
const RUNS = Number(process.env.RUNS || 7);
const RESULTS = process.env.RESULTS || join(here, 'results.md');
const DEFS = 20;

const work = mkdtempSync('/var/tmp/imagesmith-console-bench.');
chmodSync(work, 0o711);
const env = { ...process.env, IMAGESMITH_HOME: join(work, 'home') };
mkdirSync(env.IMAGESMITH_HOME);
const cli = (...a) => execFileSync(BIN, a, { env, encoding: 'utf8' });
const freePort = () =>
  new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });

const procs = [];
process.on('exit', () => {
  for (const p of procs) p.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
});

// 1. Data: a gallery with DEFS image definitions.
const sub = JSON.parse(cli('account', 'show')).id;
const token = JSON.parse(cli('account', 'get-access-token')).accessToken;
cli('group', 'create', '-n', 'imgs', '-l', 'eastus');
cli('sig', 'create', '-g', 'imgs', '-r', 'gal');
for (let i = 0; i < DEFS; i++) {
  const n = `def${String(i).padStart(2, '0')}`;
  cli('sig', 'image-definition', 'create', '-g', 'imgs', '-r', 'gal', '-i', n, '--publisher', 'me', '--offer', n,
    '--sku', '12', '--os-type', 'Linux', '--hyper-v-generation', 'V2');
}

// 2. imagesmith serve.
const serve = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--access-log', 'off'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
procs.push(serve);
const api = await new Promise((res) => serve.stdout.once('data', (d) => res(JSON.parse(String(d).split('\n')[0]).url)));

// 3. nginx: the same definitions as a static HTML page (with the console's
// own stylesheet, so the floor draws the same table).
const defs = JSON.parse(
  execFileSync('curl', ['-sf', '-H', `Authorization: Bearer ${token}`,
    `${api}/subscriptions/${sub}/resourceGroups/imgs/providers/Microsoft.Compute/galleries/gal/images?api-version=2024-03-03`]),
).value;
const css = execFileSync('curl', ['-sf', `${api}/console/app.css`]);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
const www = join(work, 'www');
mkdirSync(www);
chmodSync(www, 0o755);
writeFileSync(join(www, 'app.css'), css);
writeFileSync(
  join(www, 'index.html'),
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>gal</title><link rel="stylesheet" href="app.css"></head><body><main><h1>gal</h1><table><caption>Image definitions</caption>` +
    `<thead><tr><th>Name</th><th>Publisher / offer / SKU</th><th>OS</th><th>Generation</th><th>End of life</th></tr></thead><tbody>` +
    defs
      .map((d) => {
        const p = d.properties;
        return `<tr><td><a href="#">${esc(d.name)}</a></td><td>${esc(`${p.identifier.publisher} / ${p.identifier.offer} / ${p.identifier.sku}`)}</td>` +
          `<td>${esc(p.osType)}</td><td>${esc(p.hyperVGeneration)}</td><td>${esc(p.endOfLifeDate || '')}</td></tr>`;
      })
      .join('') +
    `</tbody></table></main></body></html>`,
);
for (const f of ['index.html', 'app.css']) chmodSync(join(www, f), 0o644);
const nginxPort = await freePort();
const ngdir = join(work, 'nginx');
mkdirSync(join(ngdir, 'logs'), { recursive: true });
writeFileSync(
  join(ngdir, 'nginx.conf'),
  `daemon off; worker_processes 1; pid ${ngdir}/nginx.pid; error_log ${ngdir}/logs/error.log warn;
events { worker_connections 256; }
http { access_log off; include /etc/nginx/mime.types;
  client_body_temp_path ${ngdir}/body; proxy_temp_path ${ngdir}/proxy; fastcgi_temp_path ${ngdir}/fastcgi;
  uwsgi_temp_path ${ngdir}/uwsgi; scgi_temp_path ${ngdir}/scgi;
  gzip on; gzip_comp_level 9; gzip_min_length 0; gzip_types text/css application/javascript text/javascript;
  server { listen 127.0.0.1:${nginxPort}; root ${www}; } }\n`,
);
const nginx = spawn('nginx', ['-p', ngdir, '-c', join(ngdir, 'nginx.conf')], { stdio: 'ignore' });
procs.push(nginx);
for (let i = 0; i < 50; i++) {
  try {
    execFileSync('curl', ['-sf', '-o', '/dev/null', `http://127.0.0.1:${nginxPort}/`]);
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}

// 4. Loads.
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
async function load(url, isConsole) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (isConsole) await context.addInitScript((t) => sessionStorage.setItem('imagesmith.token', t), token);
  const page = await context.newPage();
  const bytes = { html: 0, js: 0, css: 0, api: 0 };
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const types = new Map();
  cdp.on('Network.responseReceived', (e) => types.set(e.requestId, e.response.url));
  cdp.on('Network.loadingFinished', (e) => {
    const u = types.get(e.requestId) || '';
    const k = u.endsWith('.js') ? 'js' : u.endsWith('.css') ? 'css' : /\/subscriptions/.test(u) ? 'api' : 'html';
    bytes[k] += e.encodedDataLength; // on the wire: headers and the (compressed) body
  });
  await page.goto(url);
  const useful = await page.waitForFunction(
    (n) => (document.querySelectorAll('tbody tr').length >= n ? performance.now() : 0),
    DEFS,
    { polling: 'raf', timeout: 30000 },
  );
  const t = await useful.jsonValue();
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? 0);
  await page.waitForLoadState('networkidle');
  await context.close();
  return { t, fcp, bytes };
}
const consoleUrl = `${api}/#/galleries/imgs/gal`;
const floorUrl = `http://127.0.0.1:${nginxPort}/`;
await load(consoleUrl, true); // warm the server's page cache and chromium
await load(floorUrl, false);
const results = { console: [], nginx: [] };
for (let i = 0; i < RUNS; i++) {
  results.console.push(await load(consoleUrl, true));
  results.nginx.push(await load(floorUrl, false));
}
await browser.close();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const row = (name, rs) => {
  const b = rs[0].bytes;
  return `| ${name} | ${b.html} | ${b.js} | ${b.css} | ${b.api} | ${b.html + b.js + b.css + b.api} | ${median(rs.map((r) => r.fcp)).toFixed(0)} | ${median(rs.map((r) => r.t)).toFixed(0)} |`;
};
const gz = (f) => readFileSync(join(build, 'src/server/console-dist', f)).length;
const out = [
  `Measured ${new Date().toISOString().slice(0, 16)}Z on this ${execFileSync('nproc', { encoding: 'utf8' }).trim()}-core machine` +
    ` (load average before the run ${loadavg()[0].toFixed(1)}), chromium ${browser.version()}, ${RUNS} cold loads each (median).`,
  `The view: one gallery with ${DEFS} image definitions (the console's #/galleries/imgs/gal; nginx: the same table as static HTML with the console's CSS).`,
  `Bytes are on the wire (headers + gzip body) per load; first useful paint is the first animation frame with all ${DEFS} rows in the table.`,
  '',
  '| page | HTML bytes | JS bytes | CSS bytes | API bytes | total bytes | first contentful paint ms | first useful paint ms |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  row('console (imagesmith serve)', results.console),
  row('floor: static page (nginx)', results.nginx),
  '',
  `The console's assets as built (gzip -9 bodies): index.html ${gz('index.html.gz')} B, app.js ${gz('app.js.gz')} B, app.css ${gz('app.css.gz')} B` +
    ` (uncompressed: ${gz('index.html')} / ${gz('app.js')} / ${gz('app.css')} B).`,
  '',
].join('\n');
writeFileSync(RESULTS, out);
process.stdout.write(out);
process.exit(0);
