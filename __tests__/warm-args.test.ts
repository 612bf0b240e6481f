// The state key comes from the QEMU command line: hardware in, host-only details out.
import { describe, expect, it } from 'vitest';
import { dropOption, machineShape, pinMachine, swapDrive } from '../src/drivers/qemu/warm/args.js';
import { qemuArgs } from '../src/drivers/qemu/launch.js';
import { emptyConf, settingsFromFlags } from '../src/config/settings.js';

const djinn = (port: number, img = '/img/a.qcow2', pid = '/tmp/a/pid', log = '/tmp/a/console.log') => [
  '-accel',
  'tcg,thread=multi',
  '-display',
  'none',
  '-pidfile',
  pid,
  '-smp',
  '2',
  '-m',
  '1024',
  '-net',
  'nic,model=virtio',
  '-net',
  `user,hostfwd=tcp:127.0.0.1:${port}-:22`,
  '-drive',
  `file=${img},format=qcow2,media=disk,if=virtio,snapshot=on`,
  '-serial',
  `file:${log}`,
];

describe('machineShape', () => {
  it('reads memory, CPUs, accelerator and devices, ignoring ports and paths', () => {
    const a = machineShape(djinn(2222));
    expect(a).toMatchObject({ machine: 'pc', cpu: 'qemu64', accel: 'tcg,thread=multi', memoryMiB: 1024, cpus: 2 });
    expect(a.devices).toEqual(['-net nic,model=virtio', '-net user', '-drive if=virtio,media=disk', '-serial present']);
    expect(machineShape(djinn(40000, '/other.qcow2', '/x/pid', '/x/log'))).toEqual(a);
  });
  it('sees every hardware difference', () => {
    const base = machineShape(djinn(1));
    const other = (args: string[]) => expect(machineShape(args)).not.toEqual(base);
    other(djinn(1).map((x) => (x === '1024' ? '2048' : x)));
    other(djinn(1).map((x) => (x === '2' ? '1' : x)));
    other(djinn(1).map((x) => (x === 'nic,model=virtio' ? 'nic,model=e1000' : x)));
    other(djinn(1).map((x) => (x.startsWith('file:') ? 'none' : x)));
    other([...djinn(1), '-cpu', 'max']);
    other([...djinn(1), '-device', 'virtio-rng-pci']);
    other(djinn(1).map((x) => (x === 'tcg,thread=multi' ? 'kvm' : x)));
  });
  it('parses -m with units and -smp with cpus=', () => {
    expect(machineShape(['-m', '2G', '-smp', 'cpus=4,sockets=1']).memoryMiB).toBe(2048);
    expect(machineShape(['-m', 'size=512M', '-smp', 'cpus=4,sockets=1']).cpus).toBe(4);
    expect(machineShape(['-machine', 'pc-i440fx-7.2,accel=kvm'])).toMatchObject({ machine: 'pc-i440fx-7.2', accel: 'kvm' });
  });
});

describe('command line rewriting', () => {
  it('pins the machine type, adding -machine when there is none', () => {
    expect(pinMachine(['-m', '1'], 'pc-i440fx-7.2')).toEqual(['-machine', 'pc-i440fx-7.2', '-m', '1']);
    expect(pinMachine(['-machine', 'pc,accel=tcg'], 'pc-i440fx-7.2')).toEqual(['-machine', 'pc-i440fx-7.2,accel=tcg']);
    expect(pinMachine(['-machine', 'q35'], 'pc-i440fx-7.2')).toEqual(['-machine', 'q35']);
  });
  it('swaps the image drive for an overlay, with or without snapshot=on', () => {
    const on = swapDrive(djinn(1), '/img/a.qcow2', '/c/ov.qcow2', true);
    expect(on).toContain('file=/c/ov.qcow2,format=qcow2,media=disk,if=virtio,snapshot=on');
    const off = swapDrive(
      djinn(1, '/img/raw.img').map((x) => x.replace('format=qcow2', 'format=raw')),
      '/img/raw.img',
      '/c/ov.qcow2',
      false,
    );
    expect(off).toContain('file=/c/ov.qcow2,format=qcow2,media=disk,if=virtio');
    expect(() => swapDrive(djinn(1), '/img/none.qcow2', '/c/ov.qcow2', true)).toThrow(/no -drive/);
  });
  it('drops an option with its value', () => {
    expect(dropOption(['-a', '1', '-qmp', 'x', '-b'], '-qmp')).toEqual(['-a', '1', '-b']);
  });
});

describe('software emulation threading', () => {
  const spec = (cpus: number, tcgThreads?: 'single' | 'multi', accel: 'tcg' | 'kvm' = 'tcg') =>
    qemuArgs({ image: '/i', format: 'qcow2', cpus, memoryMiB: 512, accel, tcgThreads, sshPort: 1, consoleLog: '/c', pidFile: '/p' });

  it('runs every vCPU in one host thread unless -tcg-threads multi, and the state key tells the two apart', () => {
    expect(spec(2).slice(0, 2)).toEqual(['-accel', 'tcg,thread=single']);
    expect(spec(2, 'multi').slice(0, 2)).toEqual(['-accel', 'tcg,thread=multi']);
    expect(spec(1, 'multi').slice(0, 2)).toEqual(['-accel', 'tcg']);
    expect(spec(2, 'multi', 'kvm').slice(0, 2)).toEqual(['-accel', 'kvm']);
    expect(machineShape(spec(2)).accel).not.toBe(machineShape(spec(2, 'multi')).accel);
  });

  it('reads -tcg-threads and refuses other values', () => {
    expect(settingsFromFlags({ 'tcg-threads': 'multi' }, emptyConf(), '/t').qemu.tcgThreads).toBe('multi');
    expect(settingsFromFlags({}, emptyConf(), '/t').qemu.tcgThreads).toBeUndefined();
    expect(() => settingsFromFlags({ 'tcg-threads': 'many' }, emptyConf(), '/t')).toThrow(/expected one of single, multi/);
  });
});
