// The manifest as the engine sees it after parsing: every list in manifest
// order, every item with the position it came from.
import type { EnvVar } from '../core/job.js';
import type { SourcePosition } from '../core/reporter.js';

export interface Positioned {
  position: SourcePosition;
}

/** An `objects` or `artifacts` item: `src [=> dst]`. */
export interface Passthrough extends Positioned {
  src: string;
  dst: string;
}

/** A `sources` item: `url [ref] [=> dir]`. */
export interface Source extends Positioned {
  url: string;
  ref: string;
  dir: string;
}

export interface ManifestJob extends Positioned {
  stage: string;
  /** As written; empty when the manifest gave none. */
  name: string;
  commands: string[];
  artifacts: Passthrough[];
}

export interface DriverSpec extends Positioned {
  type: 'qemu' | 'docker' | 'ssh' | 'os';
  /** Every key the manifest gave, as strings. */
  options: Record<string, string>;
}

export interface Warning {
  file?: string;
  line: number;
  column: number;
  message: string;
}

export interface Manifest {
  file: string;
  namespace?: string;
  driver: DriverSpec;
  env: (EnvVar & Positioned)[];
  objects: Passthrough[];
  sources: Source[];
  stages: (Positioned & { name: string })[];
  allowFailures: (Positioned & { name: string })[];
  jobs: ManifestJob[];
  warnings: Warning[];
}
