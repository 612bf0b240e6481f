// Run as its own process (node --import tsx) to fetch one image through the
// cache, so tests can race two real processes. Prints each report line as it
// happens (`line: ...`) and the result as JSON (`result: {...}`).
import { cachedOrDownloaded } from '../../src/images/fetch/index.js';
import { testSettings } from './settings.js';
import { silentReporter } from '../../src/core/reporter.js';

const [server, name, cacheDir, tempDir] = process.argv.slice(2);
const say = (m: string) => process.stdout.write(`line: ${m}\n`);
cachedOrDownloaded({
  name,
  settings: testSettings(tempDir, { cacheDir, image: { server } }),
  reporter: { ...silentReporter, info: say, warn: (m: string) => say(`warning: ${m}`) },
  http: { backoffMs: 50 },
}).then(
  (r) => process.stdout.write(`result: ${JSON.stringify({ ok: true, result: r })}\n`),
  (err: Error) => {
    process.stdout.write(`result: ${JSON.stringify({ ok: false, error: err.message })}\n`);
    process.exitCode = 1;
  },
);
