// The public face of image downloads, for resolveImage and the action's caches.
export { downloadImage, normalizeSha256, type DownloadOptions, type DownloadResult } from './download.js';
export { DownloadError, ImageNotFoundError, ImageRejectedError } from './errors.js';
export { checkQcow2, readQcow2Header } from './qcow2.js';
export { DEFAULT_IMAGE_SERVER, imageUrl, listServerImages, notFoundError, checkImageName, type ServerImage } from './server.js';
export { cachedOrDownloaded, originFor, downloadUrl, DEFAULT_MAX_AGE_MS, type FetchRequest, type HttpTuning } from './through-cache.js';
export type { ProgressEvent, ProgressReporter } from './progress.js';
