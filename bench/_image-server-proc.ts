// The loopback image server in its own process for bench/images.ts, so the
// fetcher under test does not share an event loop with the server.
// Usage: _image-server-proc.ts NAME FILE; prints the URL, serves until stdin closes.
import { startImageServer } from '../__tests__/helpers/image-server.js';

const [name, file] = process.argv.slice(2);
const server = await startImageServer();
server.serve(name, file);
process.stdout.write(`${server.url}\n`);
process.stdin.resume();
process.stdin.on('end', () => void server.close().then(() => process.exit(0)));
