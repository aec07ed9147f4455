// The Trainer: one flat loop (micro-batches, 1/N loss scaling, clip, step, log, evaluate, save)
// in the manner of nanoGPT's train.py. Optimisers, schedules, metrics and checkpoints live beside it.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { faultPoint } from '../faults.js';
import { getMatmulPrecision, noGrad, scope, setMatmulPrecision } from '../engine/engine.js';
import { defaultGenerator } from '../engine/random.js';
import { scale } from '../engine/ops/elementwise.js';
import { hashInts } from '../data/rng.js';
import { CheckpointManager, readCheckpointContents, writeCheckpointContents, type TrainerState } from './checkpoint.js';
import { resolveConfig, type ResolvedConfig, type TrainerConfig } from './config.js';
import { AdamW, SGD, defaultParamGroups, gradientClipScale, type Optimizer } from './optim.js';
import { MetricsLog, Progress, formatEval } from './progress.js';
import { lrFactor, type ScheduleOptions } from './schedule.js';
import { nodeFs, type CheckpointFs } from './tensor_file.js';
import type { Evaluator, MetricRecord, RngLike, StepFn, TrainData, TrainableModel } from './types.js';

export interface StepInfo {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  epoch: number;
  tokens: number;
}

export interface TrainerCallbacks {
  onStep?(info: StepInfo): void | Promise<void>;
  onEvaluate?(step: number, metrics: MetricRecord): void | Promise<void>;
  onSave?(step: number, path: string): void | Promise<void>;
}

export interface TrainerOptions<M extends TrainableModel, B> {
  model: M;
  /** Forward pass of one (micro-)batch: returns the mean loss (and outputs for the evaluator). */
  step: StepFn<M, B>;
  trainData: TrainData<B>;
  /** Evaluation batches, iterated afresh for each evaluation. */
  evalData?: () => Iterable<B> | AsyncIterable<B>;
  /** Evaluation forward pass (default: `step`), run without gradients in eval mode. */
  evalStep?: StepFn<M, B>;
  evaluator?: () => Evaluator<B>;
  config?: TrainerConfig;
  callbacks?: TrainerCallbacks;
  /** A ready optimiser (custom groups); by default one is built from the config. */
  optimizer?: Optimizer;
  /** Extra random generators whose state must survive a resume (e.g. a data-order generator). */
  generators?: Record<string, RngLike>;
  /** File operations for checkpoints (tests inject failures). */
  fs?: CheckpointFs;
  /** Where progress and messages go (default stderr). */
  output?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Milliseconds for the maxMinutes budget (default Date.now; tests inject a fake clock). */
  clock?: () => number;
}

export type StopReason = 'maxSteps' | 'maxMinutes' | 'earlyStopping' | 'interrupt' | 'stop';

export interface TrainResult {
  step: number;
  stoppedBy: StopReason;
  best: TrainerState['best'];
  lastCheckpoint: string | null;
  history: MetricRecord[];
}

/** A NaN or infinite loss or gradient norm: training stops before the update; checkpoints are untouched. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

export class Trainer<M extends TrainableModel, B> {
  readonly config: ResolvedConfig;
  readonly optimizer: Optimizer;
  readonly checkpoints: CheckpointManager | null;
  private readonly sched: Required<ScheduleOptions>;
  private state: TrainerState;
  private stopRequest: StopReason | null = null;
  private lastCheckpoint: string | null = null;

  constructor(private readonly o: TrainerOptions<M, B>) {
    const c = (this.config = resolveConfig(o.config ?? {}, o.trainData.batchesPerEpoch));
    this.optimizer =
      o.optimizer ??
      (c.optimizer === 'sgd'
        ? new SGD(defaultParamGroups(o.model.namedParameters(), { weightDecay: c.weightDecay }), { lr: c.lr, momentum: c.momentum, dampening: c.dampening, nesterov: c.nesterov })
        : new AdamW(defaultParamGroups(o.model.namedParameters(), { weightDecay: c.weightDecay }), { lr: c.lr, betas: c.betas, eps: c.eps }));
    this.sched = { name: c.schedule, warmupSteps: c.warmupSteps, totalSteps: c.maxSteps, minLrRatio: c.minLrRatio };
    this.checkpoints = c.runDir ? new CheckpointManager(join(c.runDir, 'checkpoints'), o.fs ?? nodeFs) : null;
    this.state = { step: 0, epoch: 0, dataCursor: null, rng: {}, schedule: this.sched, history: [], best: null, badEvals: 0, logWindow: { lossSum: 0, steps: 0 } };
  }

  /** Asks the loop to stop after the current step (a checkpoint is saved when there is a runDir). */
  stop(): void {
    this.stopRequest ??= 'stop';
  }

  async train(): Promise<TrainResult> {
    const { o, config: c, optimizer } = this;
    const progress = new Progress(c.progress, o.output);
    const log = c.runDir ? new MetricsLog(c.runDir) : null;
    if (c.runDir) {
      mkdirSync(c.runDir, { recursive: true });
      // Not config.json: the run folder also receives the final HF model, whose config that is.
      writeFileSync(join(c.runDir, 'training_config.json'), JSON.stringify(c, null, 2) + '\n');
    }
    for (const line of (await this.checkpoints?.cleanStale()) ?? []) progress.message(line);
    if (c.resume) await this.resume(progress, log);
    else if (this.state.step === 0) log?.truncateAfter(0); // a fresh run in an old run folder starts a fresh log
    const onSigint = (): void => {
      if (this.stopRequest === 'interrupt') process.exit(130); // second Ctrl-C: leave now, checkpoints are atomic
      this.stopRequest = 'interrupt';
      progress.message('interrupt: finishing this step, then saving a checkpoint (Ctrl-C again to quit now)');
    };
    if (c.handleSigint) process.on('SIGINT', onSigint);
    const params = optimizer.params();
    const clock = o.clock ?? Date.now;
    const started = { time: Date.now(), step: this.state.step, tokens: 0 };
    const deadline = c.maxMinutes === null ? Infinity : clock() + c.maxMinutes * 60_000;
    let stoppedBy: StopReason = 'maxSteps';
    const precisionBefore = getMatmulPrecision();
    setMatmulPrecision(c.mixedPrecision === 'bf16' ? 'bf16' : 'fp32');
    try {
      optimizer.zeroGrad();
      o.model.train();
      while (this.state.step < c.maxSteps) {
        const step = this.state.step + 1;
        optimizer.setLrFactor(lrFactor(this.sched, step - 1));
        let loss = 0;
        for (let micro = 0; micro < c.gradientAccumulationSteps; micro++) {
          const batch = await o.trainData.next();
          // Random draws (dropout) come from a seed fixed by (seed, step, micro): a resumed run replays them.
          const seed = hashInts(c.seed, step, micro);
          defaultGenerator.setState(seed);
          loss += scope(() => {
            const out = o.step(o.model, batch, { step, micro, training: true, seed });
            const value = out.loss.item();
            if (!Number.isFinite(value)) this.nonFinite(`loss is ${value} at step ${step} (micro-batch ${micro})`);
            started.tokens += out.tokens ?? 0;
            // Mean of the micro-batch means: each backward adds 1/N of its gradient.
            (c.gradientAccumulationSteps === 1 ? out.loss : scale(out.loss, 1 / c.gradientAccumulationSteps)).backward();
            return value / c.gradientAccumulationSteps;
          });
        }
        // the clip coefficient goes into the update (no pass of its own over the gradients)
        const { norm: gradNorm, scale: gradScale } = gradientClipScale(params, c.maxGradNorm > 0 ? c.maxGradNorm : Infinity);
        if (!Number.isFinite(gradNorm)) this.nonFinite(`gradient norm is ${gradNorm} at step ${step}`);
        optimizer.step({ gradScale });
        optimizer.zeroGrad();
        faultPoint('step');

        const s = this.state;
        s.step = step;
        s.epoch = o.trainData.epoch();
        s.logWindow.lossSum += loss;
        s.logWindow.steps += 1;
        const lr = optimizer.lrs()[0] ?? 0;
        const elapsed = (Date.now() - started.time) / 1000;
        const logStep = c.logEvery > 0 && step % c.logEvery === 0;
        progress.step(
          { step, totalSteps: c.maxSteps, epoch: s.epoch, loss, lr, tokensPerSecond: started.tokens / Math.max(elapsed, 1e-9), eta: (elapsed / (step - started.step)) * (c.maxSteps - step) },
          logStep,
        );
        if (logStep) {
          this.record(log, { step, split: 'train', loss: s.logWindow.lossSum / s.logWindow.steps, lr, epoch: s.epoch, grad_norm: gradNorm });
          s.logWindow = { lossSum: 0, steps: 0 };
        }
        await o.callbacks?.onStep?.({ step, loss, lr, gradNorm, epoch: s.epoch, tokens: started.tokens });

        if (step < c.maxSteps && this.stopRequest === null && clock() >= deadline) {
          // The time budget is spent: this step ends the run as the last one would (evaluate, save).
          this.stopRequest = 'maxMinutes';
          this.record(log, { step, split: 'stop', reason: 'maxMinutes', max_minutes: c.maxMinutes!, epoch: s.epoch });
          progress.message(`time budget of ${c.maxMinutes} min spent: stopping at step ${step} of ${c.maxSteps}`);
        }
        const last = step === c.maxSteps || this.stopRequest === 'maxMinutes';
        let improved = false;
        if (o.evalData && ((c.evalEvery > 0 && step % c.evalEvery === 0) || last)) {
          const metrics = await this.evaluate();
          this.record(log, { step, split: 'eval', ...metrics, lr, epoch: s.epoch });
          progress.message(formatEval(step, metrics));
          improved = this.track(metrics);
          await o.callbacks?.onEvaluate?.(step, metrics);
          if (c.earlyStoppingPatience !== null && s.badEvals >= c.earlyStoppingPatience) this.stopRequest ??= 'earlyStopping';
        }
        const periodic = c.saveEvery > 0 && step % c.saveEvery === 0;
        let saved = false;
        const save = async (): Promise<void> => {
          this.lastCheckpoint = await this.save(step);
          saved = true;
          progress.message(`saved ${this.lastCheckpoint}`);
          await o.callbacks?.onSave?.(step, this.lastCheckpoint);
        };
        if (this.checkpoints && (periodic || last || improved || this.stopRequest)) await save();
        if (this.stopRequest) {
          stoppedBy = this.stopRequest;
          if (this.checkpoints && !saved) await save(); // a Ctrl-C that arrived during the evaluation or save above
          break;
        }
      }
    } finally {
      setMatmulPrecision(precisionBefore);
      if (c.handleSigint) process.off('SIGINT', onSigint);
      this.stopRequest = null; // a later train() call (more steps after a resume) starts fresh
      progress.done();
    }
    return { step: this.state.step, stoppedBy, best: this.state.best, lastCheckpoint: this.lastCheckpoint, history: this.state.history };
  }

  /** One pass over evalData in eval mode without gradients: weighted mean loss plus the evaluator's metrics. */
  async evaluate(): Promise<MetricRecord> {
    const { o } = this;
    if (!o.evalData) throw new Error('evaluate: no evalData was given');
    const evaluator = o.evaluator?.();
    const fn = o.evalStep ?? o.step;
    let lossSum = 0;
    let weight = 0;
    o.model.eval();
    try {
      for await (const batch of o.evalData()) {
        scope(() =>
          noGrad(() => {
            const out = fn(o.model, batch, { step: this.state.step, micro: 0, training: false, seed: 0 });
            const w = out.count ?? 1;
            lossSum += out.loss.item() * w;
            weight += w;
            evaluator?.update(out, batch);
          }),
        );
      }
    } finally {
      o.model.train();
    }
    if (weight === 0) throw new Error('evaluate: evalData yielded no batches');
    const loss = lossSum / weight;
    return { loss, ...evaluator?.compute(loss) };
  }

  private nonFinite(what: string): never {
    this.optimizer.zeroGrad();
    const kept = this.lastCheckpoint ? `the last good checkpoint is ${this.lastCheckpoint}` : 'no checkpoint was saved in this run';
    throw new NonFiniteError(`${what}; training stopped before updating the parameters, ${kept}`);
  }

  private record(log: MetricsLog | null, rec: MetricRecord): void {
    this.state.history.push(rec);
    log?.append(rec);
  }

  /** Best-metric bookkeeping (transformers' rule: better by more than the threshold). */
  private track(metrics: MetricRecord): boolean {
    const c = this.config;
    const v = metrics[c.bestMetric];
    if (typeof v !== 'number') throw new Error(`bestMetric "${c.bestMetric}" is not a number in the evaluation (keys: ${Object.keys(metrics).join(', ')})`);
    const best = this.state.best;
    const better = !best || (c.greaterIsBetter ? v - best.value : best.value - v) > c.earlyStoppingThreshold;
    if (better) {
      this.state.best = { metric: c.bestMetric, value: v, step: this.state.step };
      this.state.badEvals = 0;
    } else {
      this.state.badEvals += 1;
    }
    return better;
  }

  private async save(step: number): Promise<string> {
    const mgr = this.checkpoints!;
    const rng: Record<string, number> = { default: defaultGenerator.getState() };
    for (const [k, g] of Object.entries(this.o.generators ?? {})) rng[k] = g.getState();
    const state: TrainerState = { ...this.state, dataCursor: this.o.trainData.cursor(), rng };
    const path = await mgr.save(step, (dir) => writeCheckpointContents(mgr.fs, dir, this.o.model, this.optimizer, state));
    await mgr.rotate(this.config.saveTotalLimit, this.state.best?.step ?? null);
    return path;
  }

  private async resume(progress: Progress, log: MetricsLog | null): Promise<void> {
    const c = this.config;
    let path: string;
    if (typeof c.resume === 'string') {
      path = c.resume;
      await new CheckpointManager(path, this.o.fs ?? nodeFs).validate(path);
    } else {
      if (!this.checkpoints) throw new Error('resume: true needs runDir (checkpoints are looked for in runDir/checkpoints)');
      const latest = await this.checkpoints.latest();
      if (!latest) throw new Error(`resume: no checkpoint in ${this.checkpoints.dir}`);
      path = latest.path;
    }
    const state = await readCheckpointContents(this.o.fs ?? nodeFs, path, this.o.model, this.optimizer);
    const s = state.schedule;
    if (s.name !== this.sched.name || s.totalSteps !== this.sched.totalSteps || s.warmupSteps !== this.sched.warmupSteps || s.minLrRatio !== this.sched.minLrRatio) {
      progress.message(`warning: ${path} was trained with schedule ${JSON.stringify(s)}; continuing with ${JSON.stringify(this.sched)}`);
    }
    try {
      this.o.trainData.restore(state.dataCursor);
    } catch (e) {
      throw new Error(`${join(path, 'trainer_state.json')}: "dataCursor" does not fit this data: ${(e as Error).message}`);
    }
    defaultGenerator.setState(state.rng.default ?? defaultGenerator.getState());
    for (const [k, g] of Object.entries(this.o.generators ?? {})) {
      if (state.rng[k] === undefined) throw new Error(`resume: ${path} has no state for generator "${k}"`);
      g.setState(state.rng[k]);
    }
    this.state = { ...state, schedule: this.sched };
    this.lastCheckpoint = path;
    log?.truncateAfter(state.step);
    progress.message(`resumed from ${path} at step ${state.step}`);
  }
}
