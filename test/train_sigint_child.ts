// Child process for the SIGINT test: a small training run that prints each step's loss as a JSON
// line. Runs only when LOOM_SIGINT_CHILD=1 (node --test may load every file under dist/test).

import { Trainer, arrayData, type TrainResult } from '../src/train/index.js';
import { TinyLM, lmBatches, lmStep } from './train_helpers.js';

/** The run both the child and the test's in-process reference perform. */
export function makeTrainer(runDir: string | undefined, maxSteps: number, resume: boolean, onStep: (step: number, loss: number) => Promise<void> | void) {
  const model = new TinyLM({ seed: resume ? 123 : 8, dropout: 0.1 });
  const trainer = new Trainer({
    model, step: lmStep, trainData: arrayData(lmBatches(5, 2, 6, 21), { seed: 3 }),
    config: { maxSteps, lr: 1e-2, schedule: 'constant', weightDecay: 0.05, runDir, resume, progress: 'none', logEvery: 0 },
    callbacks: { onStep: ({ step, loss }) => onStep(step, loss) },
  });
  return { model, trainer };
}

if (process.env.LOOM_SIGINT_CHILD === '1') {
  const { trainer } = makeTrainer(process.env.RUN_DIR!, Number(process.env.MAX_STEPS), process.env.RESUME === '1', async (step, loss) => {
    process.stdout.write(JSON.stringify({ step, loss }) + '\n');
    await new Promise((r) => setTimeout(r, 5)); // slow enough for the parent to interrupt mid-run
  });
  const result: TrainResult = await trainer.train();
  process.stdout.write(JSON.stringify({ done: { step: result.step, stoppedBy: result.stoppedBy, checkpoint: result.lastCheckpoint } }) + '\n');
}
