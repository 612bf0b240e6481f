import { UsageError } from '../../manifest/errors.js';

export async function imageLsCommand(argv: string[]): Promise<number> {
  void argv;
  throw new UsageError('image ls: not available yet.');
}

export async function imageRmCommand(argv: string[]): Promise<number> {
  void argv;
  throw new UsageError('image rm: not available yet.');
}
