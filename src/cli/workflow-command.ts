import { UsageError } from '../manifest/errors.js';

export async function workflowCommand(argv: string[]): Promise<number> {
  void argv;
  throw new UsageError('workflow: not available yet.');
}
