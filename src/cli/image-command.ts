import { UsageError } from '../manifest/errors.js';

export async function imageCommand(argv: string[]): Promise<number> {
  throw new UsageError(`image ${argv[0] ?? ''}: not available yet.`);
}
