// Nothing in a model folder is executed: a folder carrying remote code (auto_map, trust_remote_code,
// a modeling .py, .js files next to the weights) and a chat template attempting the usual Jinja
// sandbox escapes loads as data through every command that reads it, and nothing runs: no marker
// file appears, and a fake `python3`/`python`/`node` first on PATH is never started.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoCorpus } from '../src/cli/demo_data.js';
import { ChatTemplate } from '../src/io/chat_template.js';
import { LOOM, tinyModelFolder, suiteTempDir } from './cli_helpers.js';

describe('a model folder is data, never code', () => {
  const p = suiteTempDir('loom-hostile-');
  const marker = (): string => p('PWNED');
  before(() => {
    const { model } = tinyModelFolder(p(), { docs: 100, chatTemplate: true });
    renameSync(model, p('evil'));
    const m = (...s: string[]): string => p('evil', ...s);
    // What transformers would import with trust_remote_code=True: here, code that leaves a marker.
    const config = JSON.parse(readFileSync(m('config.json'), 'utf8')) as Record<string, unknown>;
    config.auto_map = { AutoConfig: 'configuration_evil.EvilConfig', AutoModelForCausalLM: 'modeling_evil.EvilModel' };
    config.trust_remote_code = true;
    writeFileSync(m('config.json'), JSON.stringify(config));
    const py = `import pathlib\npathlib.Path(${JSON.stringify(marker())}).write_text("python ran")\n`;
    writeFileSync(m('modeling_evil.py'), py);
    writeFileSync(m('configuration_evil.py'), py);
    const js = `require('fs').writeFileSync(${JSON.stringify(marker())}, 'js ran');\n`;
    for (const f of ['index.js', 'loom.config.js', 'tokenizer.js', 'package.json']) writeFileSync(m(f), f === 'package.json' ? JSON.stringify({ main: 'index.js', scripts: { postinstall: 'node index.js' } }) : js);
    // Classic Jinja sandbox escapes (Python object graph, JS prototype chain) in the chat template.
    const tc = JSON.parse(readFileSync(m('tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    tc.auto_map = { AutoTokenizer: ['tokenization_evil.EvilTokenizer', null] };
    tc.chat_template = [
      "{{ cycler.__init__.__globals__.os.popen('touch " + marker() + "').read() }}",
      "{{ ''.__class__.__mro__[1].__subclasses__() }}",
      "{{ ''.constructor.constructor(\"require('fs').writeFileSync('" + marker() + "', 'x')\")() }}",
      "{% for m in messages %}{{ m['content'] }}{% endfor %}",
    ].join('');
    writeFileSync(m('tokenizer_config.json'), JSON.stringify(tc));
    writeFileSync(m('tokenization_evil.py'), py);
    // Fake interpreters first on PATH: if Loom ever shelled out to one, the marker would appear.
    mkdirSync(p('bin'));
    for (const exe of ['python3', 'python', 'node', 'sh']) {
      writeFileSync(p('bin', exe), `#!/bin/sh\necho "${exe} ran" > ${marker()}\n`);
      chmodSync(p('bin', exe), 0o755);
    }
  });

  it('info, generate, chat, evaluate and finetune read it as data; no code in it runs', () => {
    const env = { ...process.env, LOOM_NUM_THREADS: '1', PATH: `${p('bin')}:${process.env.PATH ?? ''}` };
    const loom = (args: string[], input = ''): { code: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(process.execPath, [LOOM, ...args], { encoding: 'utf8', input, env, timeout: 60_000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const info = loom(['info', p('evil'), '--json']);
    assert.equal(info.code, 0, info.stderr);
    assert.equal((JSON.parse(info.stdout) as { architecture: string }).architecture, 'GPT2LMHeadModel');
    const gen = loom(['generate', '--model', p('evil'), '--prompt', 'the battery', '--max-new-tokens', '3', '--seed', '1']);
    assert.equal(gen.code, 0, gen.stderr);
    // The template's escapes either render as nothing or fail as a template error naming the file.
    const chat = loom(['chat', '--model', p('evil'), '--max-new-tokens', '2'], 'hello\n');
    assert.ok(chat.code === 0 || /tokenizer_config\.json: chat template/.test(chat.stderr), `chat: exit ${chat.code}\n${chat.stderr}`);
    writeFileSync(p('text.txt'), demoCorpus(20));
    const ev = loom(['evaluate', '--model', p('evil'), '--task', 'clm', '--data', p('text.txt'), '--seq-len', '32']);
    assert.equal(ev.code, 0, ev.stderr);
    writeFileSync(p('chats.jsonl'), `${JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'the battery' }] })}\n`);
    const ft = loom(['finetune', '--model', p('evil'), '--task', 'chat', '--train', p('chats.jsonl'), '--out', p('ft'), '--steps', '1', '--seq-len', '32']);
    assert.ok(ft.code === 0 || /tokenizer_config\.json: chat template/.test(ft.stderr), `finetune: exit ${ft.code}\n${ft.stderr}`);
    if (process.env.LOOM_FUZZ_VERBOSE) console.log({ chat: [chat.code, chat.stdout, chat.stderr], ft: [ft.code, ft.stderr] });
    assert.equal(existsSync(marker()), false, `something in the model folder ran: ${existsSync(marker()) ? readFileSync(marker(), 'utf8') : ''}`);
    // The remote-code fields are kept as data (written back on save), not acted on.
    const saved = JSON.parse(readFileSync(p('evil', 'config.json'), 'utf8')) as { auto_map: Record<string, string> };
    assert.equal(saved.auto_map.AutoModelForCausalLM, 'modeling_evil.EvilModel');
  });

  it('each Jinja sandbox escape alone renders to nothing harmful or fails as a template error', () => {
    const js = `require('fs').writeFileSync(${JSON.stringify(marker())}, 'x')`;
    const escapes = [
      "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
      "{{ ''.__class__.__mro__[1].__subclasses__() }}",
      "{{ self._TemplateReference__context.joiner.__init__.__globals__.os }}",
      `{{ ''.constructor.constructor("${js}")() }}`,
      `{{ messages.constructor.constructor("${js}")() }}`,
      `{% set f = ''['constructor']['constructor'] %}{{ f("${js}")() }}`,
      "{{ messages.__proto__ }}{{ messages['__proto__']['polluted'] }}",
    ];
    for (const tpl of escapes) {
      let out = '';
      try {
        out = new ChatTemplate(tpl, {}, 'tokenizer_config.json').render([{ role: 'user', content: 'hi' }]);
      } catch (e) {
        assert.match((e as Error).message, /^tokenizer_config\.json: chat template/, tpl);
      }
      assert.doesNotMatch(out, /function|native code|uid=/, tpl);
    }
    assert.equal(existsSync(marker()), false, 'a template escaped its sandbox');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
