// Everything a front end (CLI flags, action inputs) and driver.conf can say
// about how to run a driver. Front ends fill it; drivers read only what they need.
import type { DriverConf } from './driver-conf.js';

export type Tristate = 'auto' | 'on' | 'off';

export interface DriverSettings {
  /** driver.conf as read (empty blocks when there is none). */
  conf: DriverConf;
  /** Folder for this build's temporary files (console log, keys, pidfile); made and removed by the caller. */
  tempDir: string;

  // qemu
  disks?: string;
  cpus?: number;
  memoryMiB?: number;
  kvm?: Tristate;
  bootTimeoutMs?: number;
  /** No console output and no SSH banner for this long while booting = stalled (docs/qemu.md). */
  bootStallMs?: number;
  /** Boots again this many times after a stall (default 1). */
  bootRetries?: number;
  /** Overrides the manifest's image name. */
  image?: string;
  imageFile?: string;
  imageFormat?: 'qcow2' | 'raw';
  imageUrl?: string;
  imageSha256?: string;
  imageServer?: string;
  imageBuild?: 'auto' | 'always' | 'never';
  imageMaxAgeMs?: number;
  /** -image-source: which network source to ask (auto: the Djinn server, then the catalogue or our builder). */
  imageSource?: 'auto' | 'server' | 'catalogue' | 'build';
  /** -image-mirror DISTRO=URL values (catalogue base URLs). */
  imageMirrors?: string[];
  /** -image-checksum off boots a catalogue image its checksum file does not vouch for. */
  imageChecksum?: 'required' | 'off';
  /** -image-file is a catalogue image (the action's image cache hands those over as files): boot it with the cloud-init seed. */
  imageCloudInit?: boolean;
  /** The CLI's image cache folder. */
  cacheDir?: string;
  warm?: 'on' | 'off' | 'refresh';
  /** Start QEMU so that it can outlive this process (the action's `keep`: see Driver.keep). */
  detached?: boolean;

  // ssh
  sshUser?: string;
  sshKeyFile?: string;
  sshPassword?: string;
  connectTimeoutMs?: number;

  // docker
  dockerHost?: string;
  dockerVersion?: string;
}

export function emptyConf(file = ''): DriverConf {
  return { file, blocks: {}, warnings: [] };
}
