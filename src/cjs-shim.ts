// Globals that bundled CommonJS code reads and an ESM bundle lacks. Import this first.
//
// ssh2's bundled wasm loader reads the CommonJS `__dirname` while it loads.
//
// ssh2 also tries its optional native crypto binding (faster ciphers) with a
// require that ncc leaves as `eval("require")(...)`: in an ESM bundle that
// finds no `require` and ssh2 falls back to pure JS. The binding is never
// bundled (dist/ must run anywhere), but a user may have built one: the file
// named by DJINN_SSH2_BINDING, or ssh2 installed with its install script next
// to this bundle (npm install without --ignore-scripts). This global `require`
// answers that one request and refuses every other, as before.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const g = globalThis as unknown as { __filename?: string; __dirname?: string; require?: (id: string) => unknown };
g.__filename ??= fileURLToPath(import.meta.url);
g.__dirname ??= path.dirname(g.__filename);

/** What ssh2's lib/protocol/crypto.js asks for. */
export const SSH2_BINDING_REQUEST = './crypto/build/Release/sshcrypto.node';

/** ssh2's native binding as the user has it: DJINN_SSH2_BINDING, else ssh2's own build beside this file; throws when there is none. */
export function requireSsh2Binding(env: NodeJS.ProcessEnv = process.env): unknown {
  const nodeRequire = createRequire(import.meta.url);
  const file = env.DJINN_SSH2_BINDING || nodeRequire.resolve(`ssh2/lib/protocol/${SSH2_BINDING_REQUEST.slice(2)}`);
  return nodeRequire(file);
}

g.require ??= (id: string) => {
  if (id === SSH2_BINDING_REQUEST) return requireSsh2Binding();
  throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
};
