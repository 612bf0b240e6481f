// The qemu driver and its launch API (see HANDOFF.md for the warm-start hooks).
export { QemuDriver, defaultCpus, defaultMemoryMiB, TCG_BOOT_TIMEOUT_MS, KVM_BOOT_TIMEOUT_MS, KVM_PROBE_MS } from './qemu-driver.js';
export { qemuArgs, QemuProcess, consoleTail, freePort, waitForForward, readPidFile, HOSTFWD_TAKEN, QEMU_BINARY, type LaunchSpec, type QemuExit } from './launch.js';
export { checkKvm, planAccel, accelArgs, type Accel, type AccelPlan, type KvmCheck } from './accel.js';
