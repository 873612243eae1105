/**
 * dist/cli-decode.js, `qkd decode`'s bundle as qkd.ts loads it: the decoder itself
 * (dist/cli-decode-main.js) from V8's code cache, since a decode is over in the time a cold
 * compile of it takes (bench D1).
 */
import * as path from 'node:path';
import { requireCached } from '../util/codecache';

requireCached(path.join(__dirname, 'cli-decode-main.js'), 'exit');
