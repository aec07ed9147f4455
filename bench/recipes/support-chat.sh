#!/usr/bin/env bash
# Recipe 5: a support chatbot (chat SFT). The recipe-2 model (GPT-2 pre-trained on ESLint and then
# TypeScript docs, ChatML tokens in its tokenizer) is fine-tuned on Schema-Guided Dialogues (USER ->
# user, SYSTEM -> assistant; loss on the assistant turns only), a seeded 10% of the dialogues held
# out, each dialogue cut into windows of 8 messages (4 exchanges) that fit the 256-token context. Metric: held-out dialogue loss (per assistant token) before and after, and `loom chat`
# transcripts (stdin piped). Runs recipe 2 first when its model is missing.
# Usage: bench/recipes/support-chat.sh [--quick] [--fresh]
RECIPE=support-chat
source "$(dirname "$0")/common.sh"

BASE=${LOOM_RECIPES_DIR:-/tmp/loom-recipes}/docs-continued$([ $QUICK = 1 ] && echo -quick || true)/ts
if [ ! -f "$BASE/config.json" ]; then
  echo "[$RECIPE] the recipe-2 model $BASE is missing: running docs-continued.sh first" >&2
  "$REPO/bench/recipes/docs-continued.sh" $([ $QUICK = 1 ] && echo --quick || true) > /dev/null
fi

prep split sgd-chat "$DATA/sgd-dialogues/train" 0 8 "$WORK/train.jsonl" "$WORK/held.jsonl"
stage eval-before evaluate --model "$BASE" --task chat --data "$WORK/held.jsonl" --seq-len 256 --batch-size 8 --json
stage sft finetune --model "$BASE" --task chat --train "$WORK/train.jsonl" --eval "$WORK/held.jsonl" --out "$WORK/sft" \
  --seq-len 256 --batch-size 8 --lr 5e-4 --schedule cosine --min-lr 5e-5 --warmup "$(q 3 30)" --epochs "$(q 0.05 2)" \
  --max-minutes "$(q 0.8 4.5)" --eval-every 200 --save-every 100 --log-every 20 --json
stage eval-after evaluate --model "$WORK/sft" --task chat --data "$WORK/held.jsonl" --seq-len 256 --batch-size 8 --json

# Transcripts: user lines piped to `loom chat` (greedy decoding), one session per file.
printf '%s\n' "Hi, I need to find a restaurant for dinner." "Something Italian in San Jose, please." "Yes, book a table for two at 7 pm." > "$WORK/chat-1.txt"
printf '%s\n' "I want to check my bank balance." "My checking account." "Thanks, that's all." > "$WORK/chat-2.txt"
for i in 1 2; do
  STAGE_INPUT="$WORK/chat-$i.txt" stage "chat-$i" chat --model "$WORK/sft" --temperature 0 --repetition-penalty 1.2 --max-new-tokens 48
done

finish "$(node -e '
const [before, after, sft, wall, quick] = process.argv.slice(1).map((s, i) => (i < 3 ? JSON.parse(s) : s));
console.log(JSON.stringify({
  recipe: "support-chat", quick: quick === "1",
  heldout_loss_before: +before.loss.toFixed(4), heldout_loss_after: +after.loss.toFixed(4),
  heldout_perplexity_before: +before.perplexity.toFixed(2), heldout_perplexity_after: +after.perplexity.toFixed(2),
  sft_steps: sft.steps, stopped_by: sft.stoppedBy, train_s: +sft.seconds.toFixed(1), wall_s: +wall,
}));
' "$(cat "$WORK/eval-before.out")" "$(cat "$WORK/eval-after.out")" "$(cat "$WORK/sft.out")" "$(wall)" "$QUICK")"
