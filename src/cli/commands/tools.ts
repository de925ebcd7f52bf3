import type { Config } from '../../config/load.ts';
import { installFerretdb } from '../../db/ferretdb-install.ts';
import { UsageError } from '../usage.ts';

export async function toolsCommand(args: string[], config: Config): Promise<number> {
  if (args[0] !== 'ferretdb') throw new UsageError('tools: expected "ferretdb"');
  const binary = await installFerretdb(config.toolsDir, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`${binary}\n`);
  return 0;
}
