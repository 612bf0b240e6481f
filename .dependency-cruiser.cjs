// The layers of src/ (docs/architecture.md): each folder imports only the folders listed for it,
// so the folders form no cycle. Checked in CI (.ci/run: "Layering").
const allowed = {
  core: [],
  util: ['core'],
  manifest: ['core', 'util'],
  host: ['core', 'util'],
  transport: ['core', 'util'],
  config: ['core', 'util', 'manifest'],
  images: ['core', 'util', 'manifest', 'host', 'config'],
  drivers: ['core', 'util', 'manifest', 'host', 'config', 'transport', 'images'],
  runner: ['core', 'util', 'manifest', 'config', 'drivers'],
  'vm-command': ['core', 'util', 'transport', 'runner'],
  // The two front ends: anything of the engine, never each other.
  action: ['core', 'util', 'manifest', 'host', 'config', 'transport', 'images', 'drivers', 'runner', 'vm-command'],
  cli: ['core', 'util', 'manifest', 'host', 'config', 'transport', 'images', 'drivers', 'runner', 'vm-command'],
};
const folders = Object.keys(allowed);
const engine = ['core', 'util', 'manifest', 'host', 'transport', 'config', 'images', 'drivers', 'runner', 'vm-command'];

module.exports = {
  forbidden: [
    ...folders.map((folder) => ({
      name: `layer-${folder}`,
      comment: `src/${folder} may import only ${allowed[folder].length ? allowed[folder].map((f) => `src/${f}`).join(', ') : 'node: and npm modules'} (docs/architecture.md)`,
      severity: 'error',
      from: { path: `^src/${folder}/` },
      to: { path: '^src/', pathNot: [`^src/${folder}/`, ...allowed[folder].map((f) => `^src/${f}/`)] },
    })),
    {
      name: 'engine-without-actions-toolkit',
      comment: 'the engine never imports @actions/*: only src/action (the GitHub front end) does',
      severity: 'error',
      from: { path: `^src/(${engine.join('|')})/` },
      to: { path: '@actions/' },
    },
    {
      name: 'no-file-cycle',
      comment:
        'files import each other in one direction: a type or function two files share goes to the lower one (or a small file of its own)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-folder-outside-the-layers',
      comment: 'a new folder under src/ needs its place in .dependency-cruiser.cjs and docs/architecture.md',
      severity: 'error',
      from: { path: '^src/[^/]+/', pathNot: `^src/(${folders.join('|')})/` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: they couple the layers as much as value imports.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
