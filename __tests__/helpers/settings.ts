// Driver settings for tests and benchmarks: the defaults, with only the parts a test cares about changed.
import {
  defaultSettings,
  type DockerSettings,
  type DriverSettings,
  type ImageSettings,
  type QemuSettings,
  type SshSettings,
} from '../../src/config/settings.js';

export interface SettingsChanges {
  cacheDir?: string;
  image?: Partial<ImageSettings>;
  qemu?: Partial<QemuSettings>;
  ssh?: Partial<SshSettings>;
  docker?: Partial<DockerSettings>;
}

export function testSettings(tempDir: string, changes: SettingsChanges = {}): DriverSettings {
  const d = defaultSettings(tempDir);
  return {
    ...d,
    ...('cacheDir' in changes ? { cacheDir: changes.cacheDir } : {}),
    image: { ...d.image, ...changes.image },
    qemu: { ...d.qemu, ...changes.qemu },
    ssh: { ...d.ssh, ...changes.ssh },
    docker: { ...d.docker, ...changes.docker },
  };
}

/** Changes laid over changes, part by part (a test's defaults, then one case's). */
export function merged(a: SettingsChanges, b: SettingsChanges): SettingsChanges {
  return {
    ...('cacheDir' in a ? { cacheDir: a.cacheDir } : {}),
    ...('cacheDir' in b ? { cacheDir: b.cacheDir } : {}),
    image: { ...a.image, ...b.image },
    qemu: { ...a.qemu, ...b.qemu },
    ssh: { ...a.ssh, ...b.ssh },
    docker: { ...a.docker, ...b.docker },
  };
}
