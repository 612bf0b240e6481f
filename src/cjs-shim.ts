// ssh2's bundled wasm loader reads the CommonJS `__dirname` while it loads;
// in an ESM bundle that free variable does not exist. Import this first.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const g = globalThis as unknown as { __filename?: string; __dirname?: string };
g.__filename ??= fileURLToPath(import.meta.url);
g.__dirname ??= path.dirname(g.__filename);
