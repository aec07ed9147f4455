// Chat / instruction SFT: conversations rendered with the tokenizer's chat template, loss only on
// the assistant's tokens, and truncation that never silently cuts the first assistant turn.

import type { ChatMessage } from '../../io/chat_template.js';
import type { LoomTokenizer } from '../../io/tokenizer.js';
import { DataError, type Source } from '../readers/common.js';
import { chunks, ENCODE_GROUP, IGNORE_INDEX, padRows, type Batch, type PadOptions } from './batch.js';
import type { EncodedSet } from './classification.js';

/** A conversation, or a prompt/response pair (Alpaca-style columns). */
export type ChatRecord =
  | { messages: ChatMessage[]; source?: Source }
  | { prompt: string; response: string; system?: string; source?: Source };

export interface ChatExample {
  ids: Int32Array;
  /** The id on assistant tokens (including the end-of-turn marker), -100 elsewhere. */
  labels: Int32Array;
}

export interface EncodeChatOptions {
  maxLength: number;
  /**
   * When the first assistant turn does not fit in maxLength: `error` (default) stops with the
   * record's file:line; `drop` leaves the record out and counts it in `dropped`. Later turns that do
   * not fit are cut (counted in `truncated`): the example still teaches its first answer.
   */
  onOverflow?: 'error' | 'drop';
  /** `assistant` (default): every assistant turn; `last`: only the final one. */
  trainOn?: 'assistant' | 'last';
}

/** The messages of a record, with prompt/response turned into a user and an assistant turn. */
export function messagesOf(record: ChatRecord): ChatMessage[] {
  if ('messages' in record) return record.messages;
  const m: ChatMessage[] = [];
  if (record.system !== undefined && record.system.length > 0) m.push({ role: 'system', content: record.system });
  m.push({ role: 'user', content: record.prompt }, { role: 'assistant', content: record.response });
  return m;
}

/**
 * Character spans [start, end) of the assistant turns in the rendered text. A template renders a
 * conversation's prefix as a prefix of the whole (every real template does), so a turn starts where
 * the conversation before it plus the generation prompt ends, and ends where the conversation up to
 * it ends; trailing whitespace (the newline after <|im_end|>) is not part of the answer.
 */
export function assistantSpans(tokenizer: LoomTokenizer, messages: readonly ChatMessage[]): { text: string; spans: [number, number][] } {
  const template = tokenizer.chatTemplate;
  const text = template.render(messages);
  const spans: [number, number][] = [];
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = template.render(messages.slice(0, i), { addGenerationPrompt: true });
    const through = template.render(messages.slice(0, i + 1));
    if (!through.startsWith(before) || !text.startsWith(through)) {
      throw new Error('the chat template does not render a conversation prefix as a prefix of the conversation; cannot locate assistant turns');
    }
    spans.push([before.length, before.length + through.slice(before.length).trimEnd().length]);
  });
  return { text, spans };
}

/** Tokenizes conversations for SFT. */
export async function encodeChat(
  tokenizer: LoomTokenizer,
  records: Iterable<ChatRecord> | AsyncIterable<ChatRecord>,
  options: EncodeChatOptions,
): Promise<EncodedSet<ChatExample>> {
  const out: EncodedSet<ChatExample> = { examples: [], truncated: 0, dropped: 0 };
  const fail = (source: Source | undefined, message: string): void => {
    if (options.onOverflow === 'drop') {
      out.dropped++;
      return;
    }
    throw source ? new DataError(source.file, source.line, message) : new Error(message);
  };
  for await (const group of chunks(records, ENCODE_GROUP)) {
    const rendered: { record: ChatRecord; text: string; spans: [number, number][] }[] = [];
    for (const record of group) {
      const { text, spans } = assistantSpans(tokenizer, messagesOf(record));
      if (spans.length === 0) fail(record.source, 'the conversation has no assistant message to learn from');
      else rendered.push({ record, text, spans: options.trainOn === 'last' ? spans.slice(-1) : spans });
    }
    // Templates write their own <s> / [CLS] where they want them; transformers also encodes
    // rendered chats without adding special tokens.
    const encs = await tokenizer.encodeDetailedBatch(rendered.map((r) => ({ text: r.text })), { addSpecialTokens: false, offsets: true });
    encs.forEach((enc, j) => {
      const { record, spans } = rendered[j]!;
      const n = enc.ids.length;
      const labels = new Int32Array(n).fill(IGNORE_INDEX);
      let firstEnd = -1; // index after the last token of the first trained turn
      let k = 0;
      for (let i = 0; i < n && k < spans.length; i++) {
        const s = enc.offsets[2 * i]!;
        while (k < spans.length && s >= spans[k]![1]) k++; // spans and offsets both ascend
        if (k < spans.length && s >= spans[k]![0] && enc.offsets[2 * i + 1]! > s) {
          labels[i] = enc.ids[i]!;
          if (k === 0) firstEnd = i + 1;
        }
      }
      if (firstEnd < 0) return fail(record.source, 'the assistant turn produced no tokens');
      if (n <= options.maxLength) return void out.examples.push({ ids: enc.ids, labels });
      if (firstEnd > options.maxLength) {
        const why = `the first assistant turn ends at token ${firstEnd}, beyond maxLength ${options.maxLength}`;
        return fail(record.source, `${why}; raise maxLength or use onOverflow: 'drop'`);
      }
      out.truncated++;
      out.examples.push({ ids: enc.ids.slice(0, options.maxLength), labels: labels.slice(0, options.maxLength) });
    });
  }
  return out;
}

/** Pads a batch of chat examples (padding labelled -100). */
export function collateChat(examples: readonly ChatExample[], options: PadOptions): Batch {
  const padded = padRows(examples.map((e) => ({ ids: e.ids, labels: e.labels })), options);
  return { ...padded, labelsShape: padded.shape };
}
