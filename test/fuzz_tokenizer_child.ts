// Child process of the tokenizer fuzz (fuzz_data_files.test.ts): loads mutated tokenizer folders and
// uses them (encode, pairs, offsets, decode, chat template). A native abort kills only this process,
// which the parent reports. Runs only when LOOM_FUZZ_TOKENIZER_CHILD=1 (node --test loads every file).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomTokenizer } from '../src/io/tokenizer.js';
import { bertJson, BERT_CONFIG, gpt2Json, GPT2_CONFIG, llamaJson, LLAMA_CONFIG } from './data_fixtures.js';
import { expectSafe, jsonText, mutateBytes, mutateJson, seeded } from './fuzz_helpers.js';

async function use(dir: string): Promise<void> {
  const t = await LoomTokenizer.load(dir);
  await t.encode('the cat sat, unaffable 🐱 hi her');
  await t.encodeDetailedBatch([{ text: 'the cat', pair: 'sat' }, { text: 'hello new york' }], { offsets: true, maxLength: 6 });
  await t.encodeWordsBatch([['the', 'cat'], ['Ada', 'Lovelace']], { maxLength: 8 });
  await t.decode([0, 1, 2, 3, 999_999], { skipSpecialTokens: true });
  t.applyChatTemplate([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }], { addGenerationPrompt: true });
}

if (process.env.LOOM_FUZZ_TOKENIZER_CHILD === '1') {
  const root = process.env.LOOM_FUZZ_DIR!;
  const cases = Number(process.env.LOOM_FUZZ_CASES);
  const r = seeded(5);
  const families = [[gpt2Json(), GPT2_CONFIG], [bertJson(), BERT_CONFIG], [llamaJson(), LLAMA_CONFIG]] as const;
  const seen = { ok: 0, error: 0 };
  for (let i = 0; i < 2 * cases; i++) {
    const [json, config] = families[i % 3]!;
    const dir = join(root, `tok-${i % 3}`);
    mkdirSync(dir, { recursive: true });
    // Half the cases break tokenizer.json, half tokenizer_config.json (the other file stays valid).
    const target = i % 2 === 0 ? 'tokenizer.json' : 'tokenizer_config.json';
    const original = Buffer.from(JSON.stringify(target === 'tokenizer.json' ? json : config));
    const bytes = r(4) === 0 ? mutateBytes(r, original) : Buffer.from(jsonText(mutateJson(r, target === 'tokenizer.json' ? json : config)));
    writeFileSync(join(dir, 'tokenizer.json'), target === 'tokenizer.json' ? bytes : JSON.stringify(json));
    writeFileSync(join(dir, 'tokenizer_config.json'), target === 'tokenizer_config.json' ? bytes : JSON.stringify(config));
    seen[await expectSafe(`tokenizer case ${i} (${target}): ${Buffer.from(bytes).toString('utf8').slice(0, 300)}`, [target], () => use(dir))]++;
  }
  process.stdout.write(`${JSON.stringify(seen)}\n`);
}
