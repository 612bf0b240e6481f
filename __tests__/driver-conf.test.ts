// driver.conf in Djinn's configuration syntax: blocks, comments, quoted
// strings with ${ENV}, ints, durations bare and quoted, sizes, include,
// errors with line numbers, unknown keys as warnings.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { confDuration, confInt, confString, parseDriverConf, readDriverConf } from '../src/config/driver-conf.js';
import { UsageError } from '../src/core/errors.js';

const env = { HOME: '/home/me', IMAGES: '/srv/images' };
const parse = (text: string) => parseDriverConf(text, 'driver.conf', env);
function errorOf(text: string | (() => unknown)): string {
  try {
    if (typeof text === 'string') parse(text);
    else text();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as UsageError).format();
  }
  throw new Error('expected an error');
}

describe('driver.conf syntax', () => {
  const conf = parse(`# Djinn's offline runner configuration
driver qemu {
    disks  "\${IMAGES}/djinn"   # where images live
    cpus   2
    memory 2048
    boot_timeout 5m
}

driver ssh {
    user     "root"
    timeout  "60s"
}
driver docker { host "unix:///var/run/docker.sock" version "1.41" }
driver os {}
`);

  it('reads every block and key with its type', () => {
    expect(Object.keys(conf.blocks)).toEqual(['qemu', 'ssh', 'docker', 'os']);
    expect(confString(conf, 'qemu', 'disks')).toBe('/srv/images/djinn');
    expect(confInt(conf, 'qemu', 'cpus')).toBe(2);
    expect(confInt(conf, 'qemu', 'memory')).toBe(2048);
    expect(confDuration(conf, 'qemu', 'boot_timeout')).toBe(300_000);
    expect(confString(conf, 'ssh', 'user')).toBe('root');
    expect(confString(conf, 'docker', 'host')).toBe('unix:///var/run/docker.sock');
    expect(conf.blocks.os).toEqual({});
    expect(conf.warnings).toEqual([]);
  });

  it("accepts durations quoted (as Djinn's sample file writes them) and bare", () => {
    expect(confDuration(conf, 'ssh', 'timeout')).toBe(60_000);
    expect(confDuration(parse('driver ssh { timeout 1h30m }'), 'ssh', 'timeout')).toBe(5_400_000);
    expect(confDuration(parse('driver ssh { timeout 500ms }'), 'ssh', 'timeout')).toBe(500);
  });

  it('missing keys are undefined', () => {
    expect(confString(conf, 'qemu', 'nothing')).toBeUndefined();
    expect(confInt(conf, 'nope', 'cpus')).toBeUndefined();
  });

  it('reads sizes as bytes', () => {
    const c = parse('driver qemu { a 2KB b 3MB c 1GB }');
    expect([c.blocks.qemu.a.value, c.blocks.qemu.b.value, c.blocks.qemu.c.value]).toEqual([2048, 3 * 1024 ** 2, 1024 ** 3]);
  });

  it('expands ${ENV} in quoted strings; an unset variable is an error naming it, not a silent ""', () => {
    const c = parse('driver qemu { disks "${HOME}/x/y" }');
    expect(confString(c, 'qemu', 'disks')).toBe('/home/me/x/y');
    expect(errorOf(() => parse('driver qemu {\n  disks "${HOME}/${UNSET}"\n}'))).toBe(
      'driver.conf:2:9: ${UNSET} is not set in the environment; set it or write the value.',
    );
  });

  it('takes a bare word as a string (the README writes kvm auto), and checks it where it is used', () => {
    const c = parse('driver qemu { disks "/d" cpus 2 memory 2048 kvm auto boot_timeout 5m }');
    expect(confString(c, 'qemu', 'kvm')).toBe('auto');
    expect(errorOf(() => confInt(parse('driver qemu {\n  cpus two\n}'), 'qemu', 'cpus'))).toBe(
      'driver.conf:2:8: driver qemu cpus: expected a positive whole number, found a string.',
    );
  });

  it('keeps # inside quoted strings and handles escapes', () => {
    const c = parse('driver ssh { password "a#b\\"c" }');
    expect(confString(c, 'ssh', 'password')).toBe('a#b"c');
  });

  it('matches keys case-insensitively, as Djinn matches Go fields', () => {
    expect(confInt(parse('driver qemu { CPUs 4 }'), 'qemu', 'cpus')).toBe(4);
  });

  it('warns about unknown keys and unknown drivers with their line, and goes on', () => {
    const c = parse('driver qemu {\n  cpus 2\n  frobnicate 1\n}\ndriver vagrant {\n  box "x"\n}\n');
    expect(c.warnings).toEqual([
      { file: 'driver.conf', line: 3, column: 3, message: 'unknown key "frobnicate" in driver qemu is ignored.' },
      { file: 'driver.conf', line: 5, column: 8, message: 'unknown driver "vagrant" is ignored.' },
    ]);
    expect(confInt(c, 'qemu', 'cpus')).toBe(2);
  });

  it('an empty file is an empty configuration', () => {
    expect(parse('').blocks).toEqual({});
    expect(parse('# nothing\n\n').blocks).toEqual({});
  });
});

describe('driver.conf errors name file, line, column and key', () => {
  it.each([
    [
      'driver qemu {\n  cpus 2x\n}',
      'driver.conf:2:8: driver qemu cpus: "2x" is not a value: expected a "quoted string", a number, a duration like 60s or a size like 2GB.',
    ],
    [
      'driver qemu {\n  cpus 123456789012345678901234567\n}',
      'driver.conf:2:8: driver qemu cpus: 123456789012345678901234567 is too large a number.',
    ],
    ['driver qemu {\n  disks "/x\n}', 'driver.conf:2:9: unterminated string.'],
    ['driver qemu {\n  cpus 2\n', 'driver.conf:2:8: unexpected end of file: expected a key or "}".'],
    ['qemu {\n}', 'driver.conf:1:1: expected "driver <name> { ... }", found "qemu".'],
    ['driver qemu\n  cpus 2', 'driver.conf:2:3: expected "{" after "driver qemu", found "cpus".'],
    ['driver qemu {\n  cpus }', 'driver.conf:2:3: driver qemu: "cpus" has no value.'],
  ])('%j', (text, message) => {
    expect(errorOf(text)).toBe(message);
  });

  it('a wrong type is reported when the key is read', () => {
    const c = parse('driver qemu {\n  memory 2GB\n  cpus "2"\n  disks 5\n}\ndriver ssh {\n  timeout "soon"\n}');
    expect(errorOf(() => confInt(c, 'qemu', 'memory'))).toBe(
      'driver.conf:2:10: driver qemu memory: expected a positive whole number, found a size (memory is in MiB: write 2048, not 2GB).',
    );
    expect(errorOf(() => confInt(c, 'qemu', 'cpus'))).toBe(
      'driver.conf:3:8: driver qemu cpus: expected a positive whole number, found a string.',
    );
    expect(errorOf(() => confString(c, 'qemu', 'disks'))).toBe(
      'driver.conf:4:9: driver qemu disks: expected a "quoted string", found a number.',
    );
    expect(errorOf(() => confDuration(c, 'ssh', 'timeout'))).toBe(
      'driver.conf:7:11: driver ssh timeout: expected a duration like 60s or 5m.',
    );
  });
});

describe('include', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'djinn-conf-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('merges included files, relative to the including file, single and list forms', () => {
    writeFileSync(path.join(dir, 'qemu.conf'), 'driver qemu { cpus 4 disks "/d" }\n');
    writeFileSync(path.join(dir, 'ssh.conf'), 'driver ssh { user "ci" }\n');
    writeFileSync(path.join(dir, 'more.conf'), 'driver docker { host "tcp://x" }\n');
    writeFileSync(path.join(dir, 'main.conf'), 'include "qemu.conf"\ninclude ["ssh.conf", "more.conf"]\ndriver qemu { memory 1024 }\n');
    const c = readDriverConf(path.join(dir, 'main.conf'), env);
    expect(confInt(c, 'qemu', 'cpus')).toBe(4);
    expect(confInt(c, 'qemu', 'memory')).toBe(1024);
    expect(confString(c, 'ssh', 'user')).toBe('ci');
    expect(confString(c, 'docker', 'host')).toBe('tcp://x');
  });

  it('a missing include names the including file and line', () => {
    writeFileSync(path.join(dir, 'bad.conf'), '\ninclude "nope.conf"\n');
    expect(errorOf(() => readDriverConf(path.join(dir, 'bad.conf'), env))).toMatch(
      /bad\.conf:2:9: include: cannot read the included file .*nope\.conf: no such file\.$/,
    );
  });

  it('an include loop stops with an error instead of hanging', () => {
    writeFileSync(path.join(dir, 'loop.conf'), 'include "loop.conf"\n');
    expect(() => readDriverConf(path.join(dir, 'loop.conf'), env)).toThrow(UsageError);
  });

  it('a folder instead of a file is a usage error', () => {
    expect(() => readDriverConf(dir, env)).toThrow(/cannot read the driver configuration: it is a folder/);
  });
});
