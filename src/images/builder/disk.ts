// Assembles a bootable disk from files alone: no loop device, no mount.
// Partition 1: FAT with syslinux, the kernel and the initrd. Partition 2: ext4 made from the tree (mke2fs -d).
import { rm, writeFile } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { SYSLINUX_MBR } from '../../host/requirements.js';
import { BuildError, run } from './run.js';

const SECTOR = 512;
const BOOT_START = 2048; // sectors: 1 MiB alignment
export const BOOT_MIB = 64;

export interface DiskSpec {
  out: string;
  workDir: string;
  kernel: string;
  initrd: string;
  append: string;
  tree: string;
  sizeMiB: number;
  /** mke2fs -O value, for old guest kernels. */
  ext4Features?: string;
  /** Runs mke2fs (as root when the tree is root-owned and we are not). */
  runMke2fs?: (args: string[]) => Promise<unknown>;
}

const MBR_PATHS = SYSLINUX_MBR;

export async function makeDisk(spec: DiskSpec, log: (line: string) => void): Promise<void> {
  const raw = path.join(spec.workDir, 'disk.raw');
  const rootStart = BOOT_START + BOOT_MIB * 2048;
  await rm(raw, { force: true });
  const fh = await open(raw, 'w');
  await fh.truncate(spec.sizeMiB * 1024 * 1024);
  await fh.close();
  try {
    await run('sfdisk', ['-q', raw], {
      input: `label: dos\nstart=${BOOT_START}, size=${BOOT_MIB * 2048}, type=6, bootable\nstart=${rootStart}, type=83\n`,
    });
    await run('mkfs.fat', [
      '-F',
      '16',
      '-n',
      'BOOT',
      '--offset',
      String(BOOT_START),
      '-h',
      String(BOOT_START),
      raw,
      String(BOOT_MIB * 1024),
    ]);
    const fat = `${raw}@@${BOOT_START * SECTOR}`;
    await run('mcopy', ['-i', fat, spec.kernel, '::/vmlinuz']);
    await run('mcopy', ['-i', fat, spec.initrd, '::/initrd.img']);
    const cfg = path.join(spec.workDir, 'syslinux.cfg');
    await writeFile(
      cfg,
      `DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL /vmlinuz\n  INITRD /initrd.img\n  APPEND ${spec.append}\n`,
    );
    await run('mcopy', ['-i', fat, cfg, '::/syslinux.cfg']);
    await run('syslinux', ['--install', '--offset', String(BOOT_START * SECTOR), raw]);
    let mbrDone = false;
    for (const mbr of MBR_PATHS) {
      try {
        await run('dd', [`if=${mbr}`, `of=${raw}`, 'bs=440', 'count=1', 'conv=notrunc', 'status=none']);
        mbrDone = true;
        break;
      } catch {
        // try the next location
      }
    }
    if (!mbrDone) throw new BuildError(`syslinux's mbr.bin was not found (looked in ${MBR_PATHS.join(', ')}): install syslinux-common.`);
    log('writing the root file system (ext4)');
    const rootKiB = (spec.sizeMiB - BOOT_MIB - 1) * 1024;
    const args = ['-q', '-F', '-t', 'ext4', '-L', 'root', '-E', `offset=${rootStart * SECTOR}`, '-d', spec.tree];
    if (spec.ext4Features) args.push('-O', spec.ext4Features);
    await (spec.runMke2fs ?? ((a: string[]) => run('mke2fs', a)))([...args, raw, `${rootKiB}k`]);
    log('converting to qcow2');
    await run('qemu-img', ['convert', '-O', 'qcow2', raw, spec.out]);
  } finally {
    await rm(raw, { force: true });
  }
}
