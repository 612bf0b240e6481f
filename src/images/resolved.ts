// What resolving an image gives the driver: a file to boot and where it came from
// (its own file, so the sources below resolve.ts can return one without importing it).
export interface ResolvedImage {
  /** Absolute path of the file to boot (never written: QEMU runs it with snapshot=on). */
  path: string;
  format: 'qcow2' | 'raw';
  /** Image name as the manifest (or -image) gave it, e.g. debian/stable. */
  name: string;
  /** Where it came from: file, disks, cache, download, build. */
  source: 'file' | 'disks' | 'cache' | 'download' | 'build';
  /** SHA-256 of the file when known (cache, download, pinned). */
  sha256?: string;
  /** A catalogue image: boots with a cloud-init NoCloud seed that authorises our key for root. */
  cloudInit?: boolean;
}
