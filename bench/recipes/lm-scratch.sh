#!/usr/bin/env bash
# Recipe 1: a character-level GPT-2 from scratch on TinyShakespeare (first 90% train, last 10%
# validation). Run A is nanoGPT's shakespeare_char CPU setting (4 layers, 4 heads, 128 dims, block 64,
# batch 12, 2,000 iterations, dropout 0, lr 1e-3 cosine to 1e-4, warmup 100, beta2 0.99, weight decay
# 0.1, clip 1.0), whose published validation loss is about 1.88 per character. Run B is the best
# this recipe gets in a wall-clock budget (--max-minutes). The tokenizer is byte-level BPE with no
# merges (256 bytes + 2 specials): the text is ASCII, so one token is one character and the loss
# per token is the loss per character. Usage: bench/recipes/lm-scratch.sh [--quick] [--fresh]
RECIPE=lm-scratch
source "$(dirname "$0")/common.sh"

prep split split-text "$DATA/tinyshakespeare/input.txt" 0.9 "$WORK/train.txt" "$WORK/val.txt"
stage tokenizer tokenizer train --type bpe --vocab-size 258 --out "$WORK/tok" "$WORK/train.txt" --json

# Run A: nanoGPT's configuration (n_positions = block_size, no dropout).
echo '{"n_layer":4,"n_head":4,"n_embd":128,"n_inner":512,"n_positions":64,"resid_pdrop":0,"embd_pdrop":0,"attn_pdrop":0}' > "$WORK/nano.json"
stage init-nano init --arch gpt2 --config "$WORK/nano.json" --tokenizer "$WORK/tok" --out "$WORK/init-nano" --json
NANO_STEPS=$(q 300 2000)
stage pretrain-nano pretrain --model "$WORK/init-nano" --objective clm --data "$WORK/train.txt" --eval "$WORK/val.txt" \
  --text-unit file --out "$WORK/nano" --steps "$NANO_STEPS" --batch-size 12 --seq-len 64 --lr 1e-3 --min-lr 1e-4 \
  --warmup 100 --schedule cosine --weight-decay 0.1 --adam-beta2 0.99 --eval-every 250 --eval-batches 0 \
  --save-every 250 --log-every 50 --json

# Run B: a larger model under a wall-clock budget; --steps sets the cosine schedule's length, sized
# so that the run ends near the budget at the throughput measured on this machine.
echo '{"n_layer":6,"n_head":6,"n_embd":192,"n_inner":768,"n_positions":128,"resid_pdrop":0,"embd_pdrop":0,"attn_pdrop":0}' > "$WORK/big.json"
stage init-big init --arch gpt2 --config "$WORK/big.json" --tokenizer "$WORK/tok" --out "$WORK/init-big" --json
BIG_MIN=$(q 1 10)
BIG_STEPS=$(q 60 1000)
stage pretrain-big pretrain --model "$WORK/init-big" --objective clm --data "$WORK/train.txt" --eval "$WORK/val.txt" \
  --text-unit file --out "$WORK/big" --steps "$BIG_STEPS" --max-minutes "$BIG_MIN" --batch-size 16 --seq-len 128 --lr 2e-3 \
  --min-lr 2e-4 --warmup 100 --schedule cosine --weight-decay 0.1 --adam-beta2 0.99 --eval-every 500 --eval-batches 0 \
  --save-every 250 --log-every 50 --json

# Samples (the prompt is 7 characters; the models take 64 and 128 positions).
stage sample-nano generate --model "$WORK/nano" --prompt $'ROMEO:\n' --max-new-tokens 57 --temperature 0.8 --top-k 0 --seed 1 --json
stage sample-big generate --model "$WORK/big" --prompt $'ROMEO:\n' --max-new-tokens 121 --temperature 0.8 --top-k 0 --seed 1 --json

finish "$(node -e '
const [nano, big, wall, quick] = process.argv.slice(1);
const r = (o) => { const j = JSON.parse(o); return { val_loss_per_char: +j.eval.loss.toFixed(4), steps: j.steps, stopped_by: j.stoppedBy, train_s: +j.seconds.toFixed(1), tokens_per_s: Math.round(j.tokens / j.seconds) }; };
console.log(JSON.stringify({ recipe: "lm-scratch", quick: quick === "1", nanogpt_config: r(nano), budget_run: r(big), target_val_loss_per_char: 1.88, wall_s: +wall }));
' "$(cat "$WORK/pretrain-nano.out")" "$(cat "$WORK/pretrain-big.out")" "$(wall)" "$QUICK")"
