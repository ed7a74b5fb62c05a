#!/usr/bin/env node
// Every package's `prepack` (run by `npm pack`, `npm publish`, `pnpm pack` and `pnpm publish` in its
// folder). The packages depend on each other with "workspace:^". pnpm (and changesets, which calls
// `pnpm publish` in a pnpm workspace) replaces those ranges with the versions being published; npm
// packs them as they are, and a package published that way cannot be installed by anyone. This
// workspace releases with pnpm, so any other packer (npm, yarn 1, ...) is refused here, naming the
// ranges and the commands to use instead.
//
// The packer is told by npm_execpath, which npm, pnpm and yarn each set for the scripts they run
// (npm_config_user_agent is not enough: npm reads it from the environment, so an `npm pack` run
// from inside a pnpm script would inherit pnpm's).
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const packer = basename(process.env.npm_execpath ?? '');
if (!/pnpm/i.test(packer)) {
  const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8'));
  const fields = ['dependencies', 'peerDependencies', 'optionalDependencies'];
  const ranges = fields.flatMap((f) =>
    Object.entries(pkg[f] ?? {})
      .filter(([, range]) => String(range).startsWith('workspace:'))
      .map(([dep, range]) => `${f}.${dep}: "${range}"`),
  );
  if (ranges.length) {
    const tool = /^npm-cli\.js$/.test(packer) ? 'npm' : packer || 'this package manager';
    process.stderr.write(
      `${pkg.name}: ${tool} would pack these ranges unchanged, and the package could not be installed:\n` +
        ranges.map((r) => `  ${r}\n`).join('') +
        'Pack with `.tools/node_modules/.bin/pnpm pack` in the package folder; release with\n' +
        '`npm run changeset -- version` then `npm run changeset -- publish` (it runs `pnpm publish`).\n',
    );
    process.exit(1);
  }
}
