#!/usr/bin/env bash
# Recipe 2: continued pre-training on documentation. A small GPT-2 is pre-trained from scratch on the
# ESLint docs (byte-level BPE trained on them, with the ChatML tokens so recipe 5 can fine-tune it
# for chat), then continued on the TypeScript docs with a seeded 10% of the files held out.
# Metric: perplexity on the held-out TypeScript files before and after the continuation (the same
# `loom evaluate` both times), plus `loom generate` samples. Usage: docs-continued.sh [--quick] [--fresh]
RECIPE=docs-continued
source "$(dirname "$0")/common.sh"

prep split split-files "$DATA/typescript-docs" 0.1 0 "$WORK/ts-train" "$WORK/ts-held"
stage tokenizer tokenizer train --type bpe --vocab-size 8192 --chat-template --out "$WORK/tok" "$DATA/eslint-docs/src" --json
echo '{"n_layer":4,"n_head":4,"n_embd":256,"n_inner":1024,"n_positions":256}' > "$WORK/model.json"
stage init init --arch gpt2 --config "$WORK/model.json" --tokenizer "$WORK/tok" --out "$WORK/init" --json

# Phase 1: ESLint docs from scratch (5% of the tokens held out for its own evaluation).
stage pretrain-eslint pretrain --model "$WORK/init" --objective clm --data "$DATA/eslint-docs/src" --out "$WORK/eslint" \
  --validation-fraction 0.05 --steps "$(q 40 400)" --max-minutes "$(q 1 3.5)" --batch-size 16 --seq-len 128 --lr 1e-3 --min-lr 1e-4 \
  --warmup "$(q 5 40)" --schedule cosine --weight-decay 0.1 --eval-every 100 --save-every 100 --log-every 20 --json
stage eval-before evaluate --model "$WORK/eslint" --task clm --data "$WORK/ts-held" --seq-len 128 --batch-size 16 --json

# Phase 2: continue on the TypeScript docs; the held-out files are the evaluation data.
stage pretrain-ts pretrain --model "$WORK/eslint" --objective clm --data "$WORK/ts-train" --eval "$WORK/ts-held" --out "$WORK/ts" \
  --steps "$(q 30 300)" --max-minutes "$(q 1 2.5)" --batch-size 16 --seq-len 128 --lr 5e-4 --min-lr 5e-5 --warmup "$(q 3 20)" \
  --schedule cosine --weight-decay 0.1 --eval-every 100 --eval-batches 0 --save-every 100 --log-every 20 --json
stage eval-after evaluate --model "$WORK/ts" --task clm --data "$WORK/ts-held" --seq-len 128 --batch-size 16 --json

i=0
for prompt in $'## Generics\n\n' $'The `strict` flag' $'```ts\ninterface '; do
  i=$((i + 1))
  stage "sample-$i" generate --model "$WORK/ts" --prompt "$prompt" --max-new-tokens 60 --temperature 0.7 --top-k 40 --seed "$i" --json
done

finish "$(node -e '
const [before, after, eslint, ts, wall, quick] = process.argv.slice(1).map((s, i) => (i < 4 ? JSON.parse(s) : s));
console.log(JSON.stringify({
  recipe: "docs-continued", quick: quick === "1",
  heldout_ts_perplexity_before: +before.perplexity.toFixed(2), heldout_ts_perplexity_after: +after.perplexity.toFixed(2),
  eslint_val_perplexity: +eslint.eval.perplexity.toFixed(2), eslint_steps: eslint.steps, ts_steps: ts.steps,
  train_s: +(eslint.seconds + ts.seconds).toFixed(1), wall_s: +wall,
}));
' "$(cat "$WORK/eval-before.out")" "$(cat "$WORK/eval-after.out")" "$(cat "$WORK/pretrain-eslint.out")" "$(cat "$WORK/pretrain-ts.out")" "$(wall)" "$QUICK")"
