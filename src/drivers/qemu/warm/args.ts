// Reads and rewrites a QEMU command line for warm starts. The state key is
// derived from the command line itself, so that anything that shapes the
// guest's hardware is in it, and only host-side details (ports, file paths,
// sockets) are left out.
import path from 'node:path';

export interface MachineShape {
  machine: string;
  cpu: string;
  accel: string;
  memoryMiB: number;
  cpus: number;
  devices: string[];
}

/** Options that only concern the host process, never the guest's hardware. */
const HOST_ONLY_WITH_VALUE = new Set([
  '-pidfile',
  '-qmp',
  '-incoming',
  '-name',
  '-D',
  '-d',
  '-trace',
  '-display',
  '-vnc',
  '-monitor',
  '-mon',
  '-L',
]);
const HOST_ONLY_FLAGS = new Set(['-daemonize', '-no-reboot', '-no-shutdown', '-S']);
const FLAGS = new Set([...HOST_ONLY_FLAGS, '-enable-kvm', '-nographic', '-nodefaults', '-snapshot', '-no-hpet', '-no-acpi']);

function opts(value: string): { head: string; kv: Map<string, string> } {
  const parts = value.split(',');
  const kv = new Map<string, string>();
  let head = '';
  parts.forEach((p, i) => {
    const eq = p.indexOf('=');
    if (eq < 0) {
      if (i === 0) head = p;
      else kv.set(p, 'on');
    } else kv.set(p.slice(0, eq), p.slice(eq + 1));
  });
  return { head, kv };
}

function parseMemoryMiB(v: string): number {
  const { head, kv } = opts(v);
  const s = kv.get('size') ?? head;
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)B?$/i.exec(s);
  if (!m) return NaN;
  const n = Number(m[1]);
  const unit = (m[2] || 'M').toUpperCase();
  return Math.round(unit === 'K' ? n / 1024 : unit === 'M' ? n : unit === 'G' ? n * 1024 : n * 1024 * 1024);
}

function parseCpus(v: string): number {
  const { head, kv } = opts(v);
  return Number(kv.get('cpus') ?? head);
}

/** Reads the machine's shape from a QEMU argv (the program name excluded). */
export function machineShape(args: readonly string[]): MachineShape {
  const shape: MachineShape = { machine: 'pc', cpu: 'qemu64', accel: 'tcg', memoryMiB: 128, cpus: 1, devices: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (FLAGS.has(a)) {
      if (a === '-enable-kvm') shape.accel = 'kvm';
      else if (!HOST_ONLY_FLAGS.has(a)) shape.devices.push(a);
      continue;
    }
    const v = args[i + 1] ?? '';
    i++;
    if (HOST_ONLY_WITH_VALUE.has(a)) continue;
    switch (a) {
      case '-m':
        shape.memoryMiB = parseMemoryMiB(v);
        break;
      case '-smp':
        shape.cpus = parseCpus(v);
        break;
      case '-cpu':
        shape.cpu = v;
        break;
      case '-accel':
        shape.accel = v;
        break;
      case '-M':
      case '-machine': {
        const { head, kv } = opts(v);
        shape.machine = kv.get('type') ?? head;
        if (kv.has('accel')) shape.accel = kv.get('accel')!.split(':')[0]!;
        const rest = [...kv].filter(([k]) => k !== 'type' && k !== 'accel').map(([k, x]) => `${k}=${x}`);
        if (rest.length) shape.devices.push(`-machine ${rest.join(',')}`);
        break;
      }
      case '-drive': {
        // The disk's contents are keyed by the image digest; here only how it is attached.
        const { kv } = opts(v);
        const keep = ['if', 'media', 'index', 'bus', 'unit', 'id'].filter((k) => kv.has(k)).map((k) => `${k}=${kv.get(k)}`);
        shape.devices.push(`-drive ${keep.join(',')}`);
        break;
      }
      case '-net':
      case '-nic':
      case '-netdev': {
        const { head, kv } = opts(v);
        // user networking: hostfwd ports differ per run and live outside the guest.
        if (head === 'user') shape.devices.push(`${a} user${kv.has('id') ? `,id=${kv.get('id')}` : ''}`);
        else shape.devices.push(`${a} ${v}`);
        break;
      }
      case '-serial':
      case '-parallel':
        shape.devices.push(`${a} ${v === 'none' ? 'none' : 'present'}`);
        break;
      case '-chardev':
        shape.devices.push(`-chardev ${opts(v).head}${opts(v).kv.has('id') ? `,id=${opts(v).kv.get('id')}` : ''}`);
        break;
      default:
        shape.devices.push(`${a} ${v}`);
    }
  }
  return shape;
}

/** Replaces the moving machine alias (`pc`) with the versioned type, adding `-machine` when missing. */
export function pinMachine(args: readonly string[], pinned: string, alias = 'pc'): string[] {
  const out = [...args];
  for (let i = 0; i < out.length - 1; i++) {
    if (out[i] === '-machine' || out[i] === '-M') {
      const { head, kv } = opts(out[i + 1]!);
      const type = kv.get('type') ?? head;
      if (type === alias) {
        out[i + 1] = out[i + 1]!.split(',')
          .map((p, j) => (j === 0 && p === alias ? pinned : p === `type=${alias}` ? `type=${pinned}` : p))
          .join(',');
      }
      return out;
    }
  }
  return ['-machine', pinned, ...out];
}

/**
 * Points the `-drive` that boots `imagePath` at `file` (a qcow2 overlay),
 * with or without `snapshot=on`. Throws when no drive uses the image.
 */
export function swapDrive(args: readonly string[], imagePath: string, file: string, snapshot: boolean): string[] {
  const out = [...args];
  const want = path.resolve(imagePath);
  for (let i = 0; i < out.length - 1; i++) {
    if (out[i] !== '-drive') continue;
    const parts = out[i + 1]!.split(',');
    const fileIdx = parts.findIndex((p) => p.startsWith('file='));
    if (fileIdx < 0 || path.resolve(parts[fileIdx]!.slice(5)) !== want) continue;
    if (file.includes(',')) throw new Error(`warm start: path with a comma cannot go on a QEMU command line: ${file}`);
    const kept = parts.filter((p, j) => j !== fileIdx && !p.startsWith('snapshot=') && !p.startsWith('format='));
    out[i + 1] = [`file=${file}`, 'format=qcow2', ...kept, ...(snapshot ? ['snapshot=on'] : [])].join(',');
    return out;
  }
  throw new Error(`warm start: no -drive boots ${imagePath}`);
}

/** Removes an option and its value (every occurrence). */
export function dropOption(args: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) {
      i++;
      continue;
    }
    out.push(args[i]!);
  }
  return out;
}
