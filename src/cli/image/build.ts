import { UsageError } from '../../manifest/errors.js';

export async function imageBuildCommand(argv: string[]): Promise<number> {
  void argv;
  throw new UsageError('image build: not available yet.');
}
