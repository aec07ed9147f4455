// Chat templates: renders a tokenizer_config.json `chat_template` (Jinja) with @huggingface/jinja,
// the same engine transformers.js uses, and supplies a ChatML default for models that have none.

import { Template } from '@huggingface/jinja';

/** One chat turn. Extra keys (tool calls, names) are passed through to the template. */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/**
 * ChatML (OpenAI, Qwen, SmolLM): `<|im_start|>role\ncontent<|im_end|>\n` per turn. Chosen as the
 * default because it marks every turn with the role and an end marker the model learns to emit, and
 * because `trainByteLevelBpe({ chatTokens: true })` can add its two markers as special tokens.
 */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The markers of CHATML_TEMPLATE, to register as special tokens when training a chat tokenizer. */
export const CHATML_TOKENS = ['<|im_start|>', '<|im_end|>'] as const;

export interface RenderOptions {
  /** Append the opening of an assistant turn (for generation). */
  addGenerationPrompt?: boolean;
  /** Further template variables (tools, documents, custom flags). */
  variables?: Record<string, unknown>;
}

/** A parsed chat template. Parsing once matters: SFT renders every example several times. */
export class ChatTemplate {
  readonly source: string;
  private readonly template: Template;
  private readonly specialTokens: Record<string, string>;

  /** What errors start with: the file the template came from, when it came from one. */
  private readonly origin: string;

  /**
   * `specialTokens` become template variables (`bos_token`, `eos_token`, ...), as in transformers.
   * `file` (tokenizer_config.json) is named in errors. The template runs in @huggingface/jinja's
   * interpreter, which evaluates expressions over its own values: no JavaScript is generated or
   * run, and Python's object graph (`__class__`, `__globals__`) does not exist there.
   */
  constructor(source: string, specialTokens: Record<string, string> = {}, file?: string) {
    this.source = source;
    this.specialTokens = specialTokens;
    this.origin = file === undefined ? '' : `${file}: `;
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new Error(`${this.origin}chat template does not parse: ${(err as Error).message}`);
    }
  }

  render(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    for (const [i, m] of messages.entries()) {
      if (typeof m.role !== 'string' || typeof m.content !== 'string') {
        throw new Error(`chat message ${i}: expected { role: string, content: string }`);
      }
    }
    try {
      return this.template.render({
        ...this.specialTokens,
        ...options.variables,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
      });
    } catch (err) {
      throw new Error(`${this.origin}chat template: ${(err as Error).message}`);
    }
  }
}

/** Picks the template from a tokenizer_config.json value: a string, or a list of named templates. */
export function selectChatTemplate(value: unknown, name = 'default'): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const entry = (value as { name?: unknown; template?: unknown }[]).find((t) => t.name === name);
    return typeof entry?.template === 'string' ? entry.template : undefined;
  }
  return undefined;
}
