#!/usr/bin/env bash
# Recipe 4: named entities (token classification) on CoNLL-2003, train -> validation (eng.testa),
# entity-level F1 with seqeval's semantics. A small cased BERT fine-tuned after masked-LM
# pre-training on the CoNLL training text, against the same model from random weights.
# Target: >= 75 F1 within 60 minutes on 2 cores. Usage: bench/recipes/ner.sh [--quick] [--fresh]
RECIPE=ner
source "$(dirname "$0")/common.sh"

prep text conll-text "$DATA/conll2003/train.txt" "$WORK/train_text.txt"
stage tokenizer tokenizer train --type wordpiece --cased --vocab-size 8192 --out "$WORK/tok" "$WORK/train_text.txt" --json
echo '{"num_hidden_layers":4,"num_attention_heads":4,"hidden_size":256,"intermediate_size":1024,"max_position_embeddings":128}' > "$WORK/bert.json"
stage init init --arch bert --config "$WORK/bert.json" --tokenizer "$WORK/tok" --out "$WORK/init" --json

stage mlm pretrain --model "$WORK/init" --objective mlm --data "$WORK/train_text.txt" --text-unit line --out "$WORK/mlm" \
  --validation-fraction 0.02 --steps "$(q 40 800)" --max-minutes "$(q 1 5)" --batch-size 32 --seq-len 128 --lr 5e-4 --min-lr 5e-5 \
  --warmup "$(q 4 50)" --schedule cosine --weight-decay 0.01 --eval-every 200 --save-every 100 --log-every 20 --json

FT=(--task ner --train "$DATA/conll2003/train.txt" --eval "$DATA/conll2003/valid.txt" --seq-len 128 --batch-size 32 --schedule linear
  --epochs "$(q 0.1 4)" --max-minutes "$(q 0.6 4.5)" --eval-every 200 --save-every 200 --log-every 20 --json)
stage ft-mlm finetune --model "$WORK/mlm" --out "$WORK/ft-mlm" --lr 3e-4 "${FT[@]}"
stage ft-random finetune --model "$WORK/init" --out "$WORK/ft-random" --lr 3e-4 "${FT[@]}"

finish "$(node -e '
const [mlm, a, b, wall, quick] = process.argv.slice(1).map((s, i) => (i < 3 ? JSON.parse(s) : s));
const r = (j) => ({ f1: +(100 * j.eval.f1).toFixed(2), precision: +(100 * j.eval.precision).toFixed(2), recall: +(100 * j.eval.recall).toFixed(2), steps: j.steps, stopped_by: j.stoppedBy, train_s: +j.seconds.toFixed(1) });
console.log(JSON.stringify({
  recipe: "ner", quick: quick === "1", mlm: { steps: mlm.steps, eval_perplexity: +mlm.eval.perplexity.toFixed(2), train_s: +mlm.seconds.toFixed(1) },
  with_mlm: r(a), random_init: r(b), target_f1: 75, wall_s: +wall,
}));
' "$(cat "$WORK/mlm.out")" "$(cat "$WORK/ft-mlm.out")" "$(cat "$WORK/ft-random.out")" "$(wall)" "$QUICK")"
