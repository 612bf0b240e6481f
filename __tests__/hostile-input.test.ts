// Hostile and careless input (issue 13): every case runs the bundled CLI
// (dist/cli.js; `npm run build` first) in a fresh folder with its own TMPDIR,
// with the os driver where a build runs, and checks the exit status, the
// message or the effect, that no stack trace is printed and that no temporary
// folder is left behind.
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, type CliResult } from './helpers/cli.js';

// Made at load time: the cases below name paths in it.
const base = mkdtempSync(path.join(os.tmpdir(), 'djinn-hostile-'));
beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

const OS = 'driver:\n  type: os\n';
const ONE_JOB = `${OS}stages: [a]\njobs:\n  - stage: a\n    commands: [echo ran]\n`;
const MIB = 1024 * 1024;

interface Case {
  name: string;
  /** .djinn.yml in the case's folder. */
  manifest?: string;
  files?: Record<string, string | Buffer>;
  /** Runs in the case's folder before the CLI (FIFOs, symlinks, modes). */
  setup?: (dir: string) => void;
  /** `$DIR` is replaced by the case's folder. */
  args: string[];
  code: number;
  /** Each must appear in stderr. */
  stderr?: (string | RegExp)[];
  stdout?: (string | RegExp)[];
  /** Must appear in neither stdout nor stderr (secrets). */
  absent?: string[];
  effect?: (dir: string, r: CliResult) => void;
}

const R = ['-driver', '/dev/null', '-artifacts', 'arts'];
const mkfifo = (p: string) => execFileSync('mkfifo', [p]);
/** One YAML list item per line, at the depth of a job's commands or artifacts. */
const listed = (items: string[]) => items.map((c) => `      - ${JSON.stringify(c)}\n`).join('');
const job = (commands: string[], extra = '') =>
  `${OS}stages: [a, b]\njobs:\n  - stage: a\n    commands:\n${listed(commands)}${extra}` +
  `  - stage: b\n    commands: [echo stage-b-ran]\n`;
const arts = (list: string[]) => `    artifacts:\n${listed(list)}`;

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const commandLine: Case[] = [
  {
    name: 'a mistyped command (lnit) is a usage error with a suggestion, not a build',
    manifest: ONE_JOB,
    args: ['lnit', '.djinn.yml'],
    code: 2,
    stderr: ['unexpected argument "lnit" before or after the flags; did you mean "lint"?'],
    effect: (_d, r) => expect(r.stdout).not.toContain('ran'),
  },
  { name: 'pln suggests plan', manifest: ONE_JOB, args: ['pln'], code: 2, stderr: ['did you mean "plan"?'] },
  { name: 'imgae suggests image', args: ['imgae', 'ls'], code: 2, stderr: ['did you mean "image"?'] },
  { name: 'workflwo suggests workflow', args: ['workflwo'], code: 2, stderr: ['did you mean "workflow"?'] },
  {
    name: 'an unknown word lists the commands',
    manifest: ONE_JOB,
    args: ['deploy'],
    code: 2,
    stderr: ['the commands are lint, plan, image, cache, workflow'],
  },
  { name: 'a stray argument after the flags', manifest: ONE_JOB, args: [...R, 'extra'], code: 2, stderr: ['unexpected argument "extra"'] },
  { name: '"constructor" is not a command', args: ['constructor'], code: 2, stderr: ['unexpected argument "constructor"'] },
  { name: '"toString" is not a command', args: ['toString'], code: 2, stderr: ['unexpected argument "toString"'] },
  {
    name: 'arguments after -- are not a manifest',
    manifest: ONE_JOB,
    args: [...R, '--', 'lint'],
    code: 2,
    stderr: ['unexpected argument "lint"'],
  },
  {
    name: 'plan FILE plans FILE',
    manifest: ONE_JOB,
    files: { 'other.yml': `${OS}stages: [x]\njobs:\n  - {stage: x, name: other-job, commands: [ls]}\n` },
    args: ['plan', 'other.yml'],
    code: 0,
    stdout: ['job other-job'],
  },
  {
    name: 'plan of two files is a usage error',
    files: { 'a.yml': ONE_JOB, 'b.yml': ONE_JOB },
    args: ['plan', 'a.yml', 'b.yml'],
    code: 2,
    stderr: ['plan takes one manifest, found 2'],
  },
  {
    name: 'lint -manifest BAD GOOD checks both',
    files: { 'bad.yml': `${OS}stages: [a, ""]\n`, 'good.yml': ONE_JOB },
    args: ['lint', '-manifest', 'bad.yml', 'good.yml'],
    code: 2,
    stdout: ['good.yml: ok'],
    stderr: ['bad.yml:3:13: stages[1]: expected a stage name, found an empty one.'],
  },
  { name: 'an unknown flag', args: ['-nope'], code: 2, stderr: ['flag provided but not defined: -nope'] },
  { name: 'a flag without its value', args: ['-timeout'], code: 2, stderr: ['flag needs an argument: -timeout'] },
  { name: 'a boolean flag with a bad value', args: ['-version=maybe'], code: 2, stderr: ['invalid boolean value "maybe" for -version'] },
  {
    name: 'lint with no manifest here',
    args: ['lint'],
    code: 2,
    stderr: ['.djinn.yml: manifest: cannot read the manifest: no such file.'],
  },
];

const flagValues: Case[] = [
  {
    name: '-timeout 600h does not fire at once',
    manifest: ONE_JOB,
    args: [...R, '-timeout', '600h'],
    code: 0,
    stdout: ['ran'],
    absent: ['TimeoutOverflowWarning'],
  },
  {
    name: '-job-timeout 1000h does not fire at once',
    manifest: ONE_JOB,
    args: [...R, '-job-timeout', '1000h'],
    code: 0,
    stdout: ['ran'],
    absent: ['TimeoutOverflowWarning'],
  },
  {
    name: '-timeout 99999999h does not fire at once',
    manifest: ONE_JOB,
    args: [...R, '-timeout', '99999999h'],
    code: 0,
    stdout: ['ran'],
    absent: ['TimeoutOverflowWarning'],
  },
  { name: '-timeout abc', manifest: ONE_JOB, args: [...R, '-timeout', 'abc'], code: 2, stderr: ['-timeout: invalid duration "abc"'] },
  { name: '-timeout -5s', manifest: ONE_JOB, args: [...R, '-timeout', '-5s'], code: 2, stderr: ['-timeout: invalid duration "-5s"'] },
  { name: '-job-timeout 1.2.3s', manifest: ONE_JOB, args: [...R, '-job-timeout', '1.2.3s'], code: 2, stderr: ['invalid duration'] },
  {
    name: '-timeout 1ms times out and leaves no folder behind',
    manifest: ONE_JOB,
    args: [...R, '-timeout', '1ms'],
    code: 1,
    stderr: ['timed out'],
  },
  {
    name: '-cpus abc is a usage error and leaves no folder behind',
    manifest: ONE_JOB,
    args: [...R, '-cpus', 'abc'],
    code: 2,
    stderr: ['-cpus: expected a positive whole number, found "abc".'],
  },
  { name: '-cpus 0', manifest: ONE_JOB, args: [...R, '-cpus', '0'], code: 2, stderr: ['-cpus: expected a positive whole number'] },
  {
    name: '-cpus with 27 digits',
    manifest: ONE_JOB,
    args: [...R, '-cpus', '123456789012345678901234567'],
    code: 2,
    stderr: ['-cpus: 123456789012345678901234567 is too large a number.'],
  },
  {
    name: '-memory 1.5',
    manifest: ONE_JOB,
    args: [...R, '-memory', '1.5'],
    code: 2,
    stderr: ['-memory: expected a positive whole number'],
  },
  {
    name: '-kvm maybe',
    manifest: ONE_JOB,
    args: [...R, '-kvm', 'maybe'],
    code: 2,
    stderr: ['-kvm: expected one of auto, on, off, found "maybe".'],
  },
  {
    name: '-boot-timeout beyond what a timer holds',
    manifest: ONE_JOB,
    args: [...R, '-boot-timeout', '1000h'],
    code: 2,
    stderr: ['-boot-timeout: 1000h is too long'],
  },
  {
    name: '-connect-timeout garbage',
    manifest: ONE_JOB,
    args: [...R, '-connect-timeout', 'soon'],
    code: 2,
    stderr: ['-connect-timeout: invalid duration "soon"'],
  },
  {
    name: '-warm sometimes',
    manifest: ONE_JOB,
    args: [...R, '-warm', 'sometimes'],
    code: 2,
    stderr: ['-warm: expected one of on, off, refresh'],
  },
  {
    name: '-stage that is not a stage',
    manifest: ONE_JOB,
    args: [...R, '-stage', 'nope'],
    code: 2,
    stderr: ['-stage: unknown stage "nope"'],
  },
  {
    name: '-artifacts is a file',
    manifest: ONE_JOB,
    files: { afile: 'x' },
    args: ['-driver', '/dev/null', '-artifacts', 'afile'],
    code: 2,
    stderr: ['-artifacts: cannot create the artifacts folder'],
  },
  { name: '-objects does not exist', manifest: ONE_JOB, args: [...R, '-objects', 'nope'], code: 2, stderr: ['-objects: objects folder'] },
  {
    name: '-manifest is a folder',
    files: { 'm/x': '' },
    args: [...R, '-manifest', 'm'],
    code: 2,
    stderr: ['m: manifest: cannot read the manifest: it is a folder.'],
  },
];

const SECRET = 's3cr3t-value';
const envFiles: Case[] = [
  {
    name: 'an env file with CRLF line ends delivers the value without \\r and masks it',
    manifest: job(['printf "%s|" "$TOKEN" > token.txt', 'echo "token is $TOKEN"'], arts(['token.txt'])),
    files: { 'secrets.env': `TOKEN=${SECRET}\r\nOTHER=1\r\n` },
    args: [...R, '-env-file', 'secrets.env'],
    code: 0,
    stdout: ['token is ***'],
    absent: [SECRET],
    effect: (d) => expect(readFileSync(path.join(d, 'arts', 'token.txt'), 'utf8')).toBe(`${SECRET}|`),
  },
  {
    name: 'a line without "=" names file and line, never the value',
    manifest: ONE_JOB,
    files: { 'e.env': `# c\nTOKEN ${SECRET}\n` },
    args: [...R, '-env-file', 'e.env'],
    code: 2,
    stderr: ['djinn: e.env:2: -env-file: expected KEY=VALUE; the line has no "=".'],
    absent: [SECRET],
  },
  {
    name: 'a bad variable name, never the value',
    manifest: ONE_JOB,
    files: { 'e.env': `MY VAR=${SECRET}\n` },
    args: [...R, '-env-file', 'e.env'],
    code: 2,
    stderr: ['e.env:1: -env-file: expected KEY=VALUE with a variable name'],
    absent: [SECRET],
  },
  {
    name: '"export KEY=value" is not an env line',
    manifest: ONE_JOB,
    files: { 'e.env': `export TOKEN=${SECRET}\n` },
    args: [...R, '-env-file', 'e.env'],
    code: 2,
    stderr: ['e.env:1: -env-file:'],
    absent: [SECRET],
  },
  {
    name: 'a NUL byte in a value',
    manifest: ONE_JOB,
    files: { 'e.env': `TOKEN=a\0b\n` },
    args: [...R, '-env-file', 'e.env'],
    code: 2,
    stderr: ['e.env:1: -env-file: the value of TOKEN contains a NUL byte'],
  },
  {
    name: 'a UTF-8 byte-order mark is not part of the first name',
    manifest: job(['test "$A" = 1']),
    files: { 'e.env': '\uFEFFA=1\n' },
    args: [...R, '-env-file', 'e.env'],
    code: 0,
  },
  {
    name: 'comments, blank lines and "=" in values',
    manifest: job(['test "$A" = "x=y"', 'test -z "$B"']),
    files: { 'e.env': '# comment\n\n  \nA=x=y\nB=\n' },
    args: [...R, '-env-file', 'e.env'],
    code: 0,
  },
  {
    name: '-env-file of a folder',
    manifest: ONE_JOB,
    files: { 'envdir/x': '' },
    args: [...R, '-env-file', 'envdir'],
    code: 2,
    stderr: ['envdir: -env-file: cannot read the env file: it is a folder.'],
  },
  {
    name: '-env-file /dev/zero is refused, not read',
    manifest: ONE_JOB,
    args: [...R, '-env-file', '/dev/zero'],
    code: 2,
    stderr: ['cannot read the env file: it is not a regular file (a device)'],
  },
  {
    name: '-env-file of a FIFO is refused, not waited on',
    manifest: ONE_JOB,
    setup: (d) => mkfifo(path.join(d, 'fifo')),
    args: [...R, '-env-file', 'fifo'],
    code: 2,
    stderr: ['it is not a regular file (a FIFO)'],
  },
  {
    name: '-env-file that does not exist',
    manifest: ONE_JOB,
    args: [...R, '-env-file', 'nope.env'],
    code: 2,
    stderr: ['nope.env: -env-file: cannot read the env file: no such file.'],
  },
  {
    name: '-env-file over 16 MiB',
    manifest: ONE_JOB,
    files: { 'big.env': `A=${'x'.repeat(17 * MIB)}\n` },
    args: [...R, '-env-file', 'big.env'],
    code: 2,
    stderr: ['larger than the limit of 16 MiB'],
  },
  {
    name: "-env 'MY VAR=1' is refused instead of lost",
    manifest: ONE_JOB,
    args: [...R, '-env', 'MY VAR=1'],
    code: 2,
    stderr: ['-env: "MY VAR" is not a valid variable name'],
  },
  {
    name: '-env without "=" does not echo it',
    manifest: ONE_JOB,
    args: [...R, '-env', SECRET],
    code: 2,
    stderr: ['-env: expected KEY=VALUE; the value has no "=".'],
    absent: [SECRET],
  },
  { name: '-env =x', manifest: ONE_JOB, args: [...R, '-env', '=x'], code: 2, stderr: ['-env: "" is not a valid variable name'] },
  {
    name: '-env with a newline in the value arrives whole',
    manifest: job(['test "$A" = "$(printf "one\\ntwo")"']),
    args: [...R, '-env', 'A=one\ntwo'],
    code: 0,
  },
  {
    name: 'a 200 KiB value names the variable and the limit',
    manifest: ONE_JOB,
    files: { 'big.env': `BIG=${'x'.repeat(200 * 1024)}\n` },
    args: [...R, '-env-file', 'big.env'],
    code: 1,
    stderr: ['the variable BIG is 204805 bytes; a single environment variable can hold at most 131072 bytes'],
  },
];

const README_CONF = 'driver qemu { disks "/var/lib/djinn/images" cpus 2 memory 2048 kvm auto boot_timeout 5m }\n';
const conf: Case[] = [
  {
    name: "the README's own driver.conf example is accepted",
    manifest: ONE_JOB,
    files: { 'd.conf': README_CONF },
    args: ['-driver', 'd.conf', '-artifacts', 'arts'],
    code: 0,
    stdout: ['ran'],
  },
  {
    name: '${UNDEFINED} is an error naming it',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver qemu {\n  disks "${DJINN_SURELY_UNSET}/x"\n}\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['d.conf:2:9: ${DJINN_SURELY_UNSET} is not set in the environment'],
  },
  {
    name: 'kvm "maybe"',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver qemu {\n  kvm "maybe"\n}\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['d.conf:2:7: driver qemu kvm: expected one of auto, on, off, found "maybe".'],
  },
  {
    name: 'kvm true means on',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver qemu { kvm true }\n' },
    args: ['-driver', 'd.conf', '-artifacts', 'arts'],
    code: 0,
  },
  {
    name: 'a 27-digit cpus',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver qemu {\n  cpus 123456789012345678901234567\n}\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['d.conf:2:8: driver qemu cpus: 123456789012345678901234567 is too large a number.'],
  },
  {
    name: 'cpus abc is found before anything is created',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver qemu {\n  cpus abc\n}\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['d.conf:2:8: driver qemu cpus: expected a positive whole number, found a string.'],
  },
  {
    name: 'memory 2GB has a hint',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver qemu {\n  memory 2GB\n}\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['memory is in MiB'],
  },
  {
    name: 'boot_timeout "soon"',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver qemu {\n  boot_timeout "soon"\n}\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['d.conf:2:16: driver qemu boot_timeout: expected a duration'],
  },
  {
    name: '-driver /dev/zero is refused, not read',
    manifest: ONE_JOB,
    args: ['-driver', '/dev/zero'],
    code: 2,
    stderr: ['cannot read the driver configuration: it is not a regular file (a device)'],
  },
  {
    name: '-driver of a FIFO is refused',
    manifest: ONE_JOB,
    setup: (d) => mkfifo(path.join(d, 'fifo')),
    args: ['-driver', 'fifo'],
    code: 2,
    stderr: ['it is not a regular file (a FIFO)'],
  },
  {
    name: '-driver of a folder',
    manifest: ONE_JOB,
    files: { 'cdir/x': '' },
    args: ['-driver', 'cdir'],
    code: 2,
    stderr: ['cannot read the driver configuration: it is a folder.'],
  },
  {
    name: '-driver that does not exist',
    manifest: ONE_JOB,
    args: ['-driver', 'nope.conf'],
    code: 2,
    stderr: ['-driver: driver configuration nope.conf does not exist.'],
  },
  {
    name: '-driver over 16 MiB',
    manifest: ONE_JOB,
    files: { 'd.conf': `#${'x'.repeat(17 * MIB)}\n` },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['larger than the limit of 16 MiB'],
  },
  {
    name: 'include of a folder',
    manifest: ONE_JOB,
    files: { 'd.conf': '\ninclude "cdir"\n', 'cdir/x': '' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['d.conf:2:9: include: cannot read the included file', 'it is a folder.'],
  },
  {
    name: 'include of /dev/zero',
    manifest: ONE_JOB,
    files: { 'd.conf': 'include "/dev/zero"\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['not a regular file'],
  },
  {
    name: 'include of itself',
    manifest: ONE_JOB,
    files: { 'd.conf': 'include "d.conf"\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['include nests too deeply.'],
  },
  {
    name: 'an unterminated string names its line',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver qemu {\n  disks "/x\n}\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['d.conf:2:9: unterminated string.'],
  },
  {
    name: 'a block never closed',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver qemu {\n  cpus 2\n' },
    args: ['-driver', 'd.conf'],
    code: 2,
    stderr: ['unexpected end of file'],
  },
  {
    name: 'an unknown key is a warning',
    manifest: ONE_JOB,
    files: { 'd.conf': 'driver os {\n  speed 3\n}\n' },
    args: ['-driver', 'd.conf', '-artifacts', 'arts'],
    code: 0,
    stderr: ['warning: d.conf:2:3: unknown key "speed" in driver os is ignored.'],
  },
];

const manifestFiles: Case[] = [
  {
    name: 'lint /dev/zero is refused, not read',
    args: ['lint', '/dev/zero'],
    code: 2,
    stderr: ['cannot read the manifest: it is not a regular file (a device)'],
  },
  {
    name: 'lint of a FIFO is refused, not waited on',
    setup: (d) => mkfifo(path.join(d, 'fifo')),
    args: ['lint', 'fifo'],
    code: 2,
    stderr: ['it is not a regular file (a FIFO)'],
  },
  { name: '-manifest /dev/zero for a run', args: ['-manifest', '/dev/zero'], code: 2, stderr: ['not a regular file'] },
  { name: 'plan of a FIFO', setup: (d) => mkfifo(path.join(d, 'fifo')), args: ['plan', 'fifo'], code: 2, stderr: ['a FIFO'] },
  {
    name: 'a manifest over 16 MiB',
    files: { 'big.yml': `# ${'x'.repeat(17 * MIB)}\n` },
    args: ['lint', 'big.yml'],
    code: 2,
    stderr: ['larger than the limit of 16 MiB'],
  },
  {
    name: 'UTF-16 text',
    files: { 'u.yml': Buffer.from('\uFEFFdriver:\n  type: os\n', 'utf16le') },
    args: ['lint', 'u.yml'],
    code: 2,
    stderr: ['u.yml:1:1: manifest: the file looks like UTF-16 text; save it as UTF-8.'],
  },
  {
    name: 'UTF-16 without a byte-order mark',
    files: { 'u.yml': Buffer.from('driver:\n  type: os\n', 'utf16le') },
    args: ['lint', 'u.yml'],
    code: 2,
    stderr: ['looks like UTF-16'],
  },
  {
    name: 'a NUL byte',
    files: { 'n.yml': `${OS}\0\n` },
    args: ['lint', 'n.yml'],
    code: 2,
    stderr: ['n.yml:3:1: manifest: the file contains a NUL byte'],
  },
  {
    name: 'Latin-1 bytes',
    files: { 'l.yml': Buffer.concat([Buffer.from(`${OS}stages: [`), Buffer.from([0xe9]), Buffer.from(']\n')]) },
    args: ['lint', 'l.yml'],
    code: 2,
    stderr: ['l.yml:3:10: manifest: the file is not valid UTF-8 here'],
  },
  {
    name: 'a symlink to a manifest is read',
    files: { 'real.yml': ONE_JOB },
    setup: (d) => symlinkSync('real.yml', path.join(d, 'link.yml')),
    args: ['lint', 'link.yml'],
    code: 0,
    stdout: ['link.yml: ok'],
  },
  {
    name: 'a dangling symlink',
    setup: (d) => symlinkSync('gone.yml', path.join(d, 'link.yml')),
    args: ['lint', 'link.yml'],
    code: 2,
    stderr: ['cannot read the manifest: no such file.'],
  },
  {
    name: 'a symlink loop',
    setup: (d) => symlinkSync('loop.yml', path.join(d, 'loop.yml')),
    args: ['lint', 'loop.yml'],
    code: 2,
    stderr: ['too many symbolic links'],
  },
];

const manifests: Case[] = [
  {
    name: 'an undefined alias is an error at its line',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - stage: a\n    commands: *nope\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['m.yml:6:15: manifest: the alias *nope names no anchor'],
  },
  {
    name: 'an alias used before its anchor',
    files: { 'm.yml': `${OS}stages: *s\nx: &s [a]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['names no anchor'],
  },
  {
    name: 'deep nesting is a clear error',
    files: { 'm.yml': `${OS}jobs: ${'['.repeat(20000)}${']'.repeat(20000)}\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['m.yml:3:1: manifest: not valid YAML: the document nests too deeply to read.'],
    absent: ['Maximum call stack'],
  },
  {
    name: 'two documents',
    files: { 'm.yml': `${OS}---\n${OS}` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['a manifest is one YAML document'],
    absent: ['parseAllDocuments'],
  },
  {
    name: 'an unclosed double quote points where it opened',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - stage: a\n    commands:\n      - "echo hi\n      - ls\n\n\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['m.yml:7:9: manifest: not valid YAML: this double-quoted string is never closed.'],
  },
  {
    name: 'an unclosed single quote points where it opened',
    files: { 'm.yml': `${OS}namespace: 'it''s\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['m.yml:3:12: manifest: not valid YAML: this single-quoted string is never closed.'],
  },
  {
    name: 'an alias bomb of merges stops',
    files: { 'm.yml': `${OS}${bomb()}` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['merges (<<: *alias) to follow'],
  },
  {
    name: 'an empty stage name',
    files: { 'm.yml': `${OS}stages: [""]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['stages[0]: expected a stage name, found an empty one.'],
  },
  {
    name: 'a blank stage name',
    files: { 'm.yml': `${OS}stages: ["  "]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['stages[0]: expected a stage name, found only blanks.'],
  },
  {
    name: 'a null stage name (go-yaml: "")',
    files: { 'm.yml': `${OS}stages: [~]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['stages[0]: expected a stage name, found an empty one.'],
  },
  {
    name: "a job's null stage",
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - stage:\n    commands: [ls]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['jobs[0].stage: expected a stage name, found an empty one.'],
  },
  {
    name: 'a blank job name',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - {stage: a, name: "  ", commands: [ls]}\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['jobs[0].name: expected a name, found only blanks.'],
  },
  {
    name: 'a NUL escape in a command',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - stage: a\n    commands: ["echo \\0"]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['jobs[0].commands[0]: contains a NUL byte'],
  },
  {
    name: 'a NUL escape in an env value',
    files: { 'm.yml': `${OS}env: ["A=\\0"]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['env[0]: contains a NUL byte'],
  },
  {
    name: 'a NUL escape in a driver value',
    files: { 'm.yml': 'driver: {type: qemu, image: "x\\0"}\n' },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['driver.image: contains a NUL byte.'],
  },
  {
    name: 'a map where a command belongs',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - stage: a\n    commands:\n      - echo: hi\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['m.yml:7:9: jobs[0].commands[0]: expected a command, found a map.'],
  },
  {
    name: 'a list where a stage belongs',
    files: { 'm.yml': `${OS}stages: [[a]]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['stages[0]: expected a stage name, found a list.'],
  },
  {
    name: 'a map where an env item belongs',
    files: { 'm.yml': `${OS}env:\n  - A: 1\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['env[0]: expected a string KEY=VALUE, found a map.'],
  },
  {
    name: 'a list where a driver value belongs',
    files: { 'm.yml': 'driver: {type: [os]}\n' },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['driver.type: expected a single value, found a list.'],
  },
  {
    name: 'a source URL starting with "-"',
    files: { 'm.yml': `${OS}sources: ["--upload-pack=touch\${IFS}x"]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['sources[0]: the URL "--upload-pack=touch${IFS}x" starts with "-"'],
  },
  {
    name: 'a source ref starting with "-"',
    files: { 'm.yml': `${OS}sources: ["https://example.invalid/r.git --orphan=x"]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['the ref "--orphan=x" starts with "-"'],
  },
  {
    name: 'a source folder outside home',
    files: { 'm.yml': `${OS}sources: ["https://example.invalid/r.git => /etc/r"]\n` },
    args: ['lint', 'm.yml'],
    code: 2,
    stderr: ['the folder "/etc/r" leaves the home folder'],
  },
  {
    name: '- true and - false are the commands true and false',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - stage: a\n    commands:\n      - true\n      - false\n` },
    args: ['plan', 'm.yml'],
    code: 0,
    stdout: ['    $ true\n    $ false\n'],
  },
  {
    name: 'stages: [1, 2] are the stages "1" and "2"',
    files: { 'm.yml': `${OS}stages: [1, 2]\njobs:\n  - {stage: 2, commands: [ls]}\n` },
    args: ['plan', 'm.yml'],
    code: 0,
    stdout: ['stage 1\nstage 2\n  job 2.1\n'],
  },
  {
    name: '- 1.10 stays 1.10',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - {stage: a, commands: [1.10, 010, 0o17, 1_000]}\n` },
    args: ['plan', 'm.yml'],
    code: 0,
    stdout: ['$ 1.10\n    $ 010\n    $ 0o17\n    $ 1_000\n'],
  },
  {
    name: 'a null command is an empty line, as in Djinn',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - stage: a\n    commands:\n      -\n      - ls\n` },
    args: ['plan', 'm.yml'],
    code: 0,
    stdout: ['$ \n    $ ls'],
  },
  {
    name: 'a number as a job name',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - {stage: a, name: 7, commands: [ls]}\n` },
    args: ['plan', 'm.yml'],
    code: 0,
    stdout: ['job 7\n'],
  },
  {
    name: 'name: "" is an unnamed job, as in Djinn',
    files: { 'm.yml': `${OS}stages: [a]\njobs:\n  - {stage: a, name: "", commands: [ls]}\n` },
    args: ['plan', 'm.yml'],
    code: 0,
    stdout: ['job a.1\n'],
  },
  {
    name: 'a shell word in a source URL is quoted in the plan',
    files: { 'm.yml': `${OS}sources: ["https://example.invalid/$(id).git"]\n` },
    args: ['plan', 'm.yml'],
    code: 0,
    stdout: ["git clone 'https://example.invalid/$(id).git' '$(id)'"],
  },
];

/** Merge keys that double at every level: 10^11 maps to visit if followed blindly. */
function bomb(): string {
  let y = 'anchors:\n  a0: &a0 {x: 1}\n';
  for (let i = 1; i < 12; i++) y += `  a${i}: &a${i}\n    <<: [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]\n`;
  return `${y}stages: [a]\njobs:\n  - <<: *a11\n    stage: a\n`;
}

/** Shell that makes `name` next to the os driver's home, without a blank or a "/" (a source splits on both). */
const touchBesideHome = (name: string) => `$(cd;cd\${IFS}..;touch\${IFS}${name})`;
const outside = () => path.join(base, 'outside-secret.txt');
const runs: Case[] = [
  {
    name: 'true, false, never: exit 1, the partial artifact is collected, never.txt is not written, the next stage does not run',
    manifest:
      `${OS}stages: [a, b]\njobs:\n  - stage: a\n    commands:\n      - echo partial > partial.txt\n      - false\n` +
      `      - echo never > never.txt\n    artifacts: [partial.txt, never.txt]\n  - stage: b\n` +
      `    commands: [echo stage-b-ran]\n`,
    args: R,
    code: 1,
    effect: (d, r) => {
      expect(readFileSync(path.join(d, 'arts', 'partial.txt'), 'utf8')).toBe('partial\n');
      expect(existsSync(path.join(d, 'arts', 'never.txt'))).toBe(false);
      expect(r.stdout).not.toContain('stage-b-ran');
      expect(r.stdout).toMatch(/b\s+b\.1\s+skipped/);
    },
  },
  {
    name: 'a false in an allow_failures stage passes with failures',
    manifest: `${OS}stages: [a]\nallow_failures: [a]\njobs:\n  - {stage: a, commands: [false]}\n`,
    args: R,
    code: 0,
    stdout: ['passed_with_failures'],
  },
  {
    name: 'an artifact symlinked to a host file outside the build is not collected',
    manifest: job([`ln -s ${path.join(base, 'hostile-target')} leak.txt`, 'ln -s /etc/shadow shadow'], arts(['leak.txt', 'shadow'])),
    setup: () => writeFileSync(path.join(base, 'hostile-target'), 'host secret'),
    args: R,
    code: 1,
    stderr: [
      /artifact error: leak\.txt => leak\.txt: leak\.txt is a symbolic link to .*hostile-target, outside the build's working folder; not collected/,
      "shadow is a symbolic link to /etc/shadow, outside the build's working folder",
    ],
    effect: (d, r) => {
      expect(existsSync(path.join(d, 'arts', 'leak.txt'))).toBe(false);
      expect(existsSync(path.join(d, 'arts', 'shadow'))).toBe(false);
      expect(r.stdout).toContain('stage-b-ran');
    },
  },
  {
    name: 'a folder symlinked out of the build is not followed',
    manifest: job(['ln -s /etc etc'], arts(['etc/hostname'])),
    args: R,
    code: 1,
    stderr: ["etc/hostname is a symbolic link to /etc/hostname, outside the build's working folder"],
    effect: (d) => expect(existsSync(path.join(d, 'arts', 'hostname'))).toBe(false),
  },
  {
    name: 'a symlink inside the build is collected',
    manifest: job(['echo inside > real.txt', 'ln -s real.txt link.txt'], arts(['link.txt'])),
    args: R,
    code: 0,
    effect: (d) => expect(readFileSync(path.join(d, 'arts', 'link.txt'), 'utf8')).toBe('inside\n'),
  },
  {
    name: 'a process detached with setsid is ended with the build',
    manifest: job(
      ["setsid sh -c 'echo $$ > pid.txt; exec sleep 300' > /dev/null 2>&1 < /dev/null &", 'while [ ! -s pid.txt ]; do sleep 0.05; done'],
      arts(['pid.txt']),
    ),
    args: R,
    code: 0,
    effect: (d) => {
      const pid = Number(readFileSync(path.join(d, 'arts', 'pid.txt'), 'utf8'));
      expect(pid).toBeGreaterThan(0);
      expect(alive(pid)).toBe(false);
    },
  },
  {
    name: 'a double-forked nohup process is ended with the build',
    manifest: job(
      ["( nohup sh -c 'echo $$ > pid.txt; exec sleep 300' > /dev/null 2>&1 & )", 'while [ ! -s pid.txt ]; do sleep 0.05; done'],
      arts(['pid.txt']),
    ),
    args: R,
    code: 0,
    effect: (d) => expect(alive(Number(readFileSync(path.join(d, 'arts', 'pid.txt'), 'utf8')))).toBe(false),
  },
  {
    name: 'a read-only subfolder left by a job is removed',
    manifest: job(['mkdir -p ro/inner', 'touch ro/inner/f', 'chmod 500 ro ro/inner']),
    args: R,
    code: 0,
  },
  {
    name: '*/report.txt => reports/* with two matches of one name: an error, nothing overwritten',
    manifest: job(['mkdir a b', 'echo A > a/report.txt', 'echo B > b/report.txt'], arts(['*/report.txt => reports/*'])),
    args: R,
    code: 1,
    stderr: [
      'artifact error: b/report.txt => reports/report.txt: reports/report.txt already holds a/report.txt, collected ' +
        'earlier in this build; nothing is overwritten.',
    ],
    effect: (d) => expect(readFileSync(path.join(d, 'arts', 'reports', 'report.txt'), 'utf8')).toBe('A\n'),
  },
  {
    name: 'two entries with one destination: an error, nothing overwritten',
    manifest: job(['echo one > one.txt', 'echo two > two.txt'], arts(['one.txt => out.txt', 'two.txt => out.txt'])),
    args: R,
    code: 1,
    stderr: ['out.txt already holds one.txt'],
    effect: (d) => expect(readFileSync(path.join(d, 'arts', 'out.txt'), 'utf8')).toBe('one\n'),
  },
  {
    name: 'an artifact that cannot be written fails the build',
    manifest: job(['echo x > x.txt'], arts(['x.txt => blocked/x.txt'])),
    files: { 'arts/blocked': 'a file where a folder is needed' },
    args: R,
    code: 1,
    stderr: ['artifact error: x.txt => blocked/x.txt:', 'error: 1 artifact could not be collected'],
  },
  {
    name: 'a missing object fails the build before the first job',
    manifest: `${OS}objects: [does-not-exist.txt]\nstages: [a]\njobs:\n  - {stage: a, commands: [echo job-ran]}\n`,
    args: R,
    code: 1,
    stderr: ['object "does-not-exist.txt" not found', 'djinn: 1 object could not be placed (see above); no job ran'],
    effect: (_d, r) => expect(r.stdout).not.toContain('job-ran'),
  },
  {
    name: 'an object that is a folder fails the build before the first job',
    manifest: `${OS}objects: [adir]\nstages: [a]\njobs:\n  - {stage: a, commands: [echo job-ran]}\n`,
    files: { 'adir/x': 'x' },
    args: R,
    code: 1,
    stderr: ['object "adir" is a folder; objects are files.'],
    effect: (_d, r) => expect(r.stdout).not.toContain('job-ran'),
  },
  {
    name: 'an object destination with .. is not written on the host',
    manifest: `${OS}objects: ["o.txt => ../../../hostile-escape.txt"]\nstages: [a]\njobs:\n  - {stage: a, commands: [echo job-ran]}\n`,
    files: { 'o.txt': 'x' },
    args: R,
    code: 1,
    stderr: ['destination "../../../hostile-escape.txt" is outside the build\'s working folder'],
    effect: () => expect(existsSync(path.resolve(os.tmpdir(), '..', '..', 'hostile-escape.txt'))).toBe(false),
  },
  {
    name: 'an absolute object destination is not written on the host',
    manifest: `${OS}objects: ["o.txt => ${outside()}"]\nstages: [a]\njobs:\n  - {stage: a, commands: [echo job-ran]}\n`,
    files: { 'o.txt': 'x' },
    args: R,
    code: 1,
    stderr: ["is outside the build's working folder; the os driver only writes inside it"],
    effect: () => expect(existsSync(outside())).toBe(false),
  },
  // Each substitution would make a file in the case's TMPDIR (the os driver's home is a folder in it), were it run.
  {
    name: 'a command substitution in a source URL is not run',
    manifest: `${OS}sources: ["https://example.invalid/${touchBesideHome('pwned-url')}/r.git"]\n`,
    args: R,
    code: 1,
    effect: (d) => expect(existsSync(path.join(d, '.tmp', 'pwned-url'))).toBe(false),
  },
  {
    name: 'a command substitution in a source ref is not run',
    // A clone that works, so that the checkout of the ref runs.
    manifest: `${OS}sources: ["${path.join(base, 'repo')} ${touchBesideHome('pwned-ref')}"]\n`,
    setup: () => {
      if (existsSync(path.join(base, 'repo'))) return;
      execFileSync('git', ['init', '-q', path.join(base, 'repo')]);
      execFileSync('git', [
        '-C',
        path.join(base, 'repo'),
        '-c',
        'user.email=t@example.invalid',
        '-c',
        'user.name=t',
        'commit',
        '-q',
        '--allow-empty',
        '-m',
        'x',
      ]);
    },
    args: R,
    stdout: ['+ git checkout -q'],
    code: 1,
    effect: (d) => expect(existsSync(path.join(d, '.tmp', 'pwned-ref'))).toBe(false),
  },
  {
    name: 'a command substitution in a source folder is not run',
    manifest: `${OS}sources: ["https://example.invalid/r.git => ${touchBesideHome('pwned-dir')}"]\n`,
    args: R,
    code: 1,
    effect: (d) => expect(existsSync(path.join(d, '.tmp', 'pwned-dir'))).toBe(false),
  },
  {
    name: 'a 200 KiB manifest env value names the variable',
    manifest: `${OS}env: ["HUGE=${'y'.repeat(200 * 1024)}"]\nstages: [a]\njobs:\n  - {stage: a, commands: [echo]}\n`,
    args: R,
    code: 1,
    stderr: ['the variable HUGE is'],
  },
];

/** Runs one case; TMPDIR is the case's own, so that anything left behind shows. */
async function runCase(c: Case, index: number): Promise<{ dir: string; r: CliResult }> {
  const dir = path.join(base, `c${index}`);
  const tmp = path.join(dir, '.tmp');
  mkdirSync(tmp, { recursive: true });
  if (c.manifest !== undefined) writeFileSync(path.join(dir, '.djinn.yml'), c.manifest);
  for (const [f, content] of Object.entries(c.files ?? {})) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), content);
  }
  c.setup?.(dir);
  const r = await runCli(
    c.args.map((a) => a.replaceAll('$DIR', dir)),
    { cwd: dir, env: { TMPDIR: tmp, XDG_CONFIG_HOME: path.join(dir, '.config'), XDG_CACHE_HOME: path.join(dir, '.cache') } },
  );
  return { dir, r };
}

const families: [string, Case[]][] = [
  ['command line', commandLine],
  ['flag values', flagValues],
  ['env files and -env', envFiles],
  ['driver.conf', conf],
  ['manifest files', manifestFiles],
  ['manifest contents', manifests],
  ['builds on the os driver', runs],
];

let counter = 0;
describe.each(families)('%s', (_family, cases) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const { dir, r } = await runCase(c, ++counter);
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.code, out).toBe(c.code);
    for (const s of c.stderr ?? []) {
      if (typeof s === 'string') expect(r.stderr).toContain(s);
      else expect(r.stderr).toMatch(s);
    }
    for (const s of c.stdout ?? []) {
      if (typeof s === 'string') expect(r.stdout).toContain(s);
      else expect(r.stdout).toMatch(s);
    }
    for (const s of c.absent ?? []) expect(out).not.toContain(s);
    expect(r.stderr).not.toMatch(/\n\s+at |internal error|Unhandled/);
    c.effect?.(dir, r);
    // Nothing left in the case's TMPDIR: build folders, os-driver folders, scripts.
    expect(readdirSync(path.join(dir, '.tmp'))).toEqual([]);
  });
});

it('the corpus holds at least 100 hostile cases', () => {
  expect(families.reduce((n, [, cases]) => n + cases.length, 0)).toBeGreaterThanOrEqual(100);
});

describe('a closed stdout (djinn ... | head -1)', () => {
  it('does not stop the build: it keeps running and collecting and exits with the build status', async () => {
    const dir = path.join(base, 'epipe');
    const tmp = path.join(dir, '.tmp');
    mkdirSync(tmp, { recursive: true });
    writeFileSync(
      path.join(dir, '.djinn.yml'),
      job(['for i in $(seq 1 20000); do echo line $i; done', 'echo done > done.txt'], arts(['done.txt'])).replace(
        'echo stage-b-ran',
        'echo b > b.txt',
      ),
    );
    const child = spawn(process.execPath, [CLI, ...R], {
      cwd: dir,
      env: { ...process.env, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // Like `head -1`: read the first chunk, then close the pipe.
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).not.toMatch(/Unhandled|EPIPE|\n\s+at /);
    expect(code).toBe(0);
    expect(readFileSync(path.join(dir, 'arts', 'done.txt'), 'utf8')).toBe('done\n');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('plan into a closed pipe exits 0 without a stack trace', async () => {
    const dir = path.join(base, 'epipe-plan');
    mkdirSync(dir, { recursive: true });
    const commands = Array.from({ length: 20000 }, (_, i) => `echo ${i}`);
    writeFileSync(path.join(dir, '.djinn.yml'), job(commands));
    const child = spawn(process.execPath, [CLI, 'plan'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});

// Root reads files whatever their mode, so an unreadable file can only be tried as another user.
it.skipIf(process.getuid?.() === 0)('an unreadable env file is a clear error, exit 2', async () => {
  const dir = path.join(base, 'unreadable');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, '.djinn.yml'), ONE_JOB);
  writeFileSync(path.join(dir, 'e.env'), 'A=1\n');
  chmodSync(path.join(dir, 'e.env'), 0);
  const r = await runCli([...R, '-env-file', 'e.env'], { cwd: dir });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('cannot read the env file: permission denied.');
});
