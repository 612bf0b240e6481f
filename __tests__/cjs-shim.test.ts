// The bundle's global `require`: it hands ssh2 the native binding a user has
// built (DJINN_SSH2_BINDING) and refuses every other request, as an ESM
// bundle without it does. A CommonJS file stands in for the binding (a real
// one needs a compiler; bench/ssh.ts measures with it).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requireSsh2Binding, SSH2_BINDING_REQUEST } from '../src/cjs-shim.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'djinn-shim-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('cjs-shim', () => {
  it('loads the binding named by DJINN_SSH2_BINDING, through the global require as bundled ssh2 asks for it', () => {
    const file = path.join(tmp, 'sshcrypto.cjs');
    writeFileSync(file, 'module.exports = { AESGCMCipher: "stand-in" };\n');
    expect(requireSsh2Binding({ DJINN_SSH2_BINDING: file })).toEqual({ AESGCMCipher: 'stand-in' });
    const saved = process.env.DJINN_SSH2_BINDING;
    process.env.DJINN_SSH2_BINDING = file;
    try {
      const req = (globalThis as unknown as { require: (id: string) => unknown }).require;
      expect(req(SSH2_BINDING_REQUEST)).toEqual({ AESGCMCipher: 'stand-in' });
    } finally {
      if (saved === undefined) delete process.env.DJINN_SSH2_BINDING;
      else process.env.DJINN_SSH2_BINDING = saved;
    }
  });

  it('fails as a missing module without a binding, and for anything else', () => {
    // This tree was installed with --ignore-scripts: ssh2 has no build of its own.
    expect(() => requireSsh2Binding({})).toThrow(/Cannot find module/);
    expect(() => requireSsh2Binding({ DJINN_SSH2_BINDING: path.join(tmp, 'none.node') })).toThrow(/Cannot find module/);
    const req = (globalThis as unknown as { require: (id: string) => unknown }).require;
    expect(() => req('../build/Release/cpufeatures.node')).toThrow(expect.objectContaining({ code: 'MODULE_NOT_FOUND' }));
  });
});
