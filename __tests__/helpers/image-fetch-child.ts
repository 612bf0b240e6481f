// Run as its own process (node --import tsx) to fetch one image through the
// cache, so tests can race two real processes. Prints the result as JSON.
import { cachedOrDownloaded } from '../../src/images/fetch/index.js';
import { emptyConf } from '../../src/drivers/settings.js';
import { silentReporter } from '../../src/runner/reporter.js';

const [server, name, cacheDir, tempDir] = process.argv.slice(2);
const lines: string[] = [];
cachedOrDownloaded({
  name,
  settings: { conf: emptyConf(), tempDir, imageServer: server, cacheDir },
  reporter: { ...silentReporter, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`warning: ${m}`) },
  http: { backoffMs: 50 },
}).then(
  (r) => process.stdout.write(`${JSON.stringify({ ok: true, result: r, lines })}\n`),
  (err: Error) => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: err.message, lines })}\n`);
    process.exitCode = 1;
  },
);
