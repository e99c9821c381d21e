// Accounts against the embedded SQLite storage (see accounts-suite.mjs).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { skipNoBinary } from './harness.mjs';
import { accountsSuite } from './accounts-suite.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmux-acct-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
accountsSuite('accounts (SQLite, in-process rate limits)', { storage: { sqlite: path.join(dir, 'llmux.db') }, skip: skipNoBinary });
