// What a restored machine must do before its first job. It wakes with the wall
// clock of the moment it was saved, and with the same random-number state as
// every other clone of that state. One small POSIX sh script fixes both, with
// fall-backs for images we did not build (no perl, no root, busybox only).
import { randomBytes } from 'node:crypto';

export interface FixupResult {
  /** How the clock was set: date, busybox-date, hwclock, or none. */
  clock: string;
  /** How randomness was refreshed: reseeded (perl/python ioctl), mixed (written to /dev/urandom, no forced reseed), or none. */
  rng: string;
  /** One line each for what could not be done, fit for the build log. */
  warnings: string[];
}

/** Runs a command in the guest (as the login user) and returns its exit status and stdout. */
export type GuestRunner = (command: string) => Promise<{ code: number | null; stdout: string }>;

const MARK = 'djinn-warm-fixup';

// RNDADDENTROPY = _IOW('R', 0x03, int[2]) = 0x40085203: adds bytes and credits them.
// RNDRESEEDCRNG = _IO('R', 0x07) = 0x5207: reseeds the CRNG from the pool now (Linux ≥ 4.17).
const PERL_RESEED =
  `open(F,">/dev/urandom") or exit 1; $b=pack("H*",$ARGV[0]); ` +
  `ioctl(F,0x40085203,pack("ii",length($b)*8,length($b)).$b) or exit 1; ioctl(F,0x5207,0) or exit 3`;
const PYTHON_RESEED =
  `import fcntl,struct,sys\nb=bytes.fromhex(sys.argv[1]);f=open("/dev/urandom","wb",0)\n` +
  `fcntl.ioctl(f,0x40085203,struct.pack("ii",len(b)*8,len(b))+b)\n` +
  `try:\n fcntl.ioctl(f,0x5207,0)\nexcept OSError:\n sys.exit(3)`;

function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The guest script: sets the clock to `nowMs` (the host's time when sent) and
 * mixes `entropy` into the kernel pool, forcing a reseed where it can. Prints
 * one line `djinn-warm-fixup clock=... rng=...`. Never fails the build by itself.
 */
export function fixupScript(nowMs: number, entropy: Buffer = randomBytes(64)): string {
  const epoch = Math.round(nowMs / 1000);
  const hex = entropy.toString('hex');
  const octal = [...entropy].map((b) => '\\' + b.toString(8).padStart(3, '0')).join('');
  return [
    `asroot() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi; }`,
    `clock=none`,
    `if asroot date -u -s @${epoch} >/dev/null 2>&1; then clock=date`,
    `elif asroot busybox date -u -s @${epoch} >/dev/null 2>&1; then clock=busybox-date`,
    // The emulated RTC follows the host clock after a restore: a second source when `date` cannot take @epoch.
    `elif asroot hwclock -s -u >/dev/null 2>&1; then clock=hwclock`,
    `elif asroot busybox hwclock -s -u >/dev/null 2>&1; then clock=hwclock; fi`,
    `rng=none`,
    `if command -v perl >/dev/null 2>&1; then asroot perl -e ${sq(PERL_RESEED)} ${hex} 2>/dev/null; r=$?`,
    `  if [ $r = 0 ]; then rng=reseeded-perl; elif [ $r = 3 ]; then rng=credited-perl; fi; fi`,
    `if [ $rng = none ] && command -v python3 >/dev/null 2>&1; then asroot python3 -c ${sq(PYTHON_RESEED)} ${hex} 2>/dev/null; r=$?`,
    `  if [ $r = 0 ]; then rng=reseeded-python; elif [ $r = 3 ]; then rng=credited-python; fi; fi`,
    // Anyone may write /dev/urandom: it mixes the bytes in, though without crediting or reseeding.
    `if [ $rng = none ] && printf '${octal}' > /dev/urandom 2>/dev/null; then rng=mixed; fi`,
    `echo "${MARK} clock=$clock rng=$rng"`,
    `exit 0`,
  ].join('\n');
}

/** Reads the script's report line. */
export function parseFixupOutput(stdout: string): FixupResult {
  const m = new RegExp(`${MARK} clock=(\\S+) rng=(\\S+)`).exec(stdout);
  const clock = m?.[1] ?? 'none';
  const rng = m?.[2] ?? 'none';
  const warnings: string[] = [];
  if (!m)
    warnings.push('warm start: the guest fix-up script did not report (is there a POSIX sh?); clock and randomness were left as saved');
  else {
    if (clock === 'none')
      warnings.push('warm start: could not set the guest clock (needs root or sudo, and date or hwclock); it shows the time of the save');
    if (rng === 'none')
      warnings.push('warm start: could not refresh the guest random pool; clones may draw the same random bytes at first');
    else if (rng === 'mixed' || rng.startsWith('credited')) {
      warnings.push(
        'warm start: fresh randomness was mixed into the guest pool but no reseed could be forced (needs root and perl or python3, Linux ≥ 4.17)',
      );
    }
  }
  return { clock, rng, warnings };
}

/** Runs the fix-ups right after connecting to a restored machine, before any job. */
export async function runFixups(run: GuestRunner, now: () => number = Date.now): Promise<FixupResult> {
  try {
    const r = await run(fixupScript(now()));
    return parseFixupOutput(r.stdout);
  } catch (err) {
    return { clock: 'none', rng: 'none', warnings: [`warm start: guest fix-ups failed: ${(err as Error).message}`] };
  }
}
