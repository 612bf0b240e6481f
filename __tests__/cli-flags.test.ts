// Go `flag`-style parsing, as Djinn's offline runner takes its flags.
import { describe, expect, it } from 'vitest';
import { parseFlags } from '../src/cli/flags.js';
import { RUN_FLAGS } from '../src/cli/flag-specs.js';
import { UsageError } from '../src/core/errors.js';
import { formatDuration, parseDuration } from '../src/util/duration.js';

describe('parseFlags', () => {
  it('takes -f v, -f=v, --f v and --f=v', () => {
    const { flags } = parseFlags(['-manifest', 'a.yml', '-stage=make', '--artifacts', 'out', '--objects=objs'], RUN_FLAGS);
    expect(flags).toEqual({ manifest: 'a.yml', stage: 'make', artifacts: 'out', objects: 'objs' });
  });

  it('booleans take no value, or =true/=false', () => {
    expect(parseFlags(['-version'], RUN_FLAGS).flags.version).toBe(true);
    expect(parseFlags(['-version=false'], RUN_FLAGS).flags.version).toBe(false);
    expect(() => parseFlags(['-version=maybe'], RUN_FLAGS)).toThrow('invalid boolean value "maybe" for -version.');
  });

  it('an equals sign inside a value is kept', () => {
    expect(parseFlags(['-env=A=b=c'], RUN_FLAGS).flags.env).toBe('A=b=c');
  });

  it('keeps other arguments and everything after --', () => {
    expect(parseFlags(['x', '-stage', 's', '--', '-manifest'], RUN_FLAGS)).toEqual({ flags: { stage: 's' }, args: ['x', '-manifest'] });
  });

  it('unknown flags and missing values are usage errors', () => {
    expect(() => parseFlags(['-bogus'], RUN_FLAGS)).toThrow(UsageError);
    expect(() => parseFlags(['-manifest'], RUN_FLAGS)).toThrow('flag needs an argument: -manifest.');
  });
});

describe('durations', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['45', 45_000],
  ])('%s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it.each(['', 'soon', '5 m', '-1s', '1d', 'm5'])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
  it('formats for people', () => {
    expect([formatDuration(250), formatDuration(2500), formatDuration(125_000), formatDuration(3_720_000)]).toEqual([
      '250ms',
      '2.5s',
      '2m05s',
      '1h02m',
    ]);
  });
});
