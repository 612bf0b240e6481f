// Failures of getting an image, told apart so that resolveImage can decide
// whether building the image is a sensible fallback (-image-build auto).
import { DriverError } from '../../core/errors.js';

/** The server answered 404; `available` lists what it does have (may be empty when its listing failed). */
export class ImageNotFoundError extends DriverError {
  constructor(
    message: string,
    readonly url: string,
    readonly available: string[],
  ) {
    super(message);
    this.name = 'ImageNotFoundError';
  }
}

/** The download could not be done (network, timeouts, 5xx after retries, truncated bodies). */
export class DownloadError extends DriverError {
  constructor(
    message: string,
    readonly url: string,
    /** True when trying again later could help (as opposed to a refused file). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

/** The bytes arrived but are not an image we may boot: not qcow2, a backing file, wrong size or digest. */
export class ImageRejectedError extends DriverError {
  constructor(message: string) {
    super(message);
    this.name = 'ImageRejectedError';
  }
}
