// Builds the page into dist/: index.html, app.js, app.css, a .gz of each (served as is
// when the browser accepts gzip), and LICENSES.txt with the bundled packages' licences.
// The output is deterministic (same lockfile, same bytes), so CI can rebuild and compare.

import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync, constants } from 'node:zlib';

const DIST = 'dist';
const BUNDLED = ['@xterm/xterm', '@xterm/addon-fit', '@xterm/addon-web-links', '@xterm/addon-unicode11'];

rmSync(DIST, { recursive: true, force: true });
mkdirSync(DIST);

await build({
  entryPoints: ['src/app.js', 'src/app.css'],
  outdir: DIST,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  legalComments: 'none', // the licences travel in LICENSES.txt instead
  charset: 'utf8',
  logLevel: 'warning',
});
copyFileSync('src/index.html', `${DIST}/index.html`);

const licences = BUNDLED.map((name) => {
  const pkg = JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8'));
  const text = readFileSync(`node_modules/${name}/LICENSE`, 'utf8').trim();
  return `${name} ${pkg.version} (${pkg.license})\n\n${text}\n`;
});
writeFileSync(`${DIST}/LICENSES.txt`, `Third-party code in app.js and app.css:\n\n${licences.join('\n---\n\n')}`);

for (const file of ['index.html', 'app.js', 'app.css']) {
  // gzip headers carry no name or time here: the bytes depend on the input only.
  const gz = gzipSync(readFileSync(`${DIST}/${file}`), { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(`${DIST}/${file}.gz`, gz);
}
