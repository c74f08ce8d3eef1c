// Builds the web console into OUTDIR (default: dist/): esbuild bundles and
// minifies src/app.js and src/app.css; index.html is copied; each file also
// gets a gzip twin (.gz) that `imagesmith serve` sends to clients that accept
// gzip. src/server/CMakeLists.txt runs this; embed_console.cmake embeds OUTDIR.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = process.argv[2] || join(here, 'dist');
mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: [join(here, 'src/app.js'), join(here, 'src/app.css')],
  outdir,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(join(here, 'src/index.html'), join(outdir, 'index.html'));
for (const f of ['index.html', 'app.js', 'app.css']) {
  const data = readFileSync(join(outdir, f));
  writeFileSync(join(outdir, f + '.gz'), gzipSync(data, { level: 9 }));
}
