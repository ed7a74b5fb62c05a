#!/usr/bin/env node
// Every package's `prepack` (run by `npm pack`, `npm publish`, `pnpm pack` and `pnpm publish` in its
// folder). The packages depend on each other with "workspace:^". pnpm (and changesets, which calls
// `pnpm publish` in a pnpm workspace) replaces those ranges with the versions being published; npm
// packs them as they are, and a package published that way cannot be installed by anyone. So npm
// (or yarn, bun) is refused here, naming the ranges and the commands to use instead.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const agent = process.env.npm_config_user_agent ?? '';
if (!agent.startsWith('pnpm/')) {
  const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8'));
  const fields = ['dependencies', 'peerDependencies', 'optionalDependencies'];
  const ranges = fields.flatMap((f) =>
    Object.entries(pkg[f] ?? {})
      .filter(([, range]) => String(range).startsWith('workspace:'))
      .map(([dep, range]) => `${f}.${dep}: "${range}"`),
  );
  if (ranges.length) {
    const tool = agent.split(' ')[0] || 'this package manager';
    process.stderr.write(
      `${pkg.name}: ${tool} would pack these ranges unchanged, and the package could not be installed:\n` +
        ranges.map((r) => `  ${r}\n`).join('') +
        'Pack with `.tools/node_modules/.bin/pnpm pack` in the package folder; release with\n' +
        '`npm run changeset -- version` then `npm run changeset -- publish` (it runs `pnpm publish`).\n',
    );
    process.exit(1);
  }
}
