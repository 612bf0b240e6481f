// Picks the driver for a manifest. One driver per folder, all behind the Driver interface.
import type { DriverSpec } from '../manifest/types.js';
import type { Driver } from './driver.js';
import { DriverError } from '../core/errors.js';
import { DockerDriver } from './docker/docker-driver.js';
import { OsDriver } from './os/os-driver.js';
import { QemuDriver } from './qemu/qemu-driver.js';
import { SshDriver } from './ssh/ssh-driver.js';
import type { DriverSettings } from '../config/settings.js';

export function makeDriver(spec: DriverSpec, settings: DriverSettings): Driver {
  switch (spec.type) {
    case 'os':
      return new OsDriver();
    case 'docker':
      return new DockerDriver(spec, settings);
    case 'ssh':
      return new SshDriver(spec, settings);
    case 'qemu':
      return new QemuDriver(settings, spec.options.image ?? '');
    default:
      throw new DriverError(`driver ${spec.type} is not available in this build.`);
  }
}
