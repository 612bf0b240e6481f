// The public face of image downloads, for resolveImage and the action's caches.
export { DownloadError, ImageNotFoundError, ImageRejectedError } from './errors.js';
export { cachedOrDownloaded, originFor } from './through-cache.js';
