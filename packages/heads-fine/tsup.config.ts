import { defineConfig } from 'tsup';
import { libConfig } from '../../tsup.base';

export default defineConfig(libConfig({ entry: ['src/index.ts', 'src/testing.ts'] }));
