// `djinn image build|ls|rm`: build images with our builder, manage the cache.
import { UsageError } from '../core/errors.js';
import { imageBuildCommand } from './image/build.js';
import { imageLsCommand, imageRmCommand } from './image/cache.js';

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  build: imageBuildCommand,
  ls: imageLsCommand,
  rm: imageRmCommand,
};

export async function imageCommand(argv: string[]): Promise<number> {
  const sub = SUBCOMMANDS[argv[0] ?? ''];
  if (!sub) throw new UsageError(`usage: djinn image build|ls|rm ...; found "${argv[0] ?? ''}".`);
  return sub(argv.slice(1));
}
