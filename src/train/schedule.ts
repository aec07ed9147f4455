// Learning-rate schedules as multipliers of the base LR, with transformers' exact formulas
// (get_{constant,linear,cosine}_schedule_with_warmup); a minimum LR as a fraction of the base.

export type ScheduleName = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  name: ScheduleName;
  /** Optimiser steps of linear warmup from 0. */
  warmupSteps: number;
  /** Total optimiser steps of the run (the decay reaches its floor there). */
  totalSteps: number;
  /**
   * Floor of the decay as a fraction of the base LR (transformers' min_lr_rate of
   * get_cosine_with_min_lr_schedule_with_warmup): factor' = factor * (1 - r) + r after warmup.
   * Applied the same way to linear; constant ignores it. Default 0.
   */
  minLrRatio?: number;
}

/**
 * The LR multiplier for the update that follows `step` completed updates (0-based), i.e. torch's
 * LambdaLR after `step` scheduler.step() calls. With warmup the first update therefore uses 0,
 * exactly as transformers' Trainer does.
 */
export function lrFactor(o: ScheduleOptions, step: number): number {
  const r = o.minLrRatio ?? 0;
  if (!(r >= 0 && r <= 1)) throw new Error(`schedule: minLrRatio ${r} must be in [0, 1]`);
  if (step < o.warmupSteps) return step / Math.max(1, o.warmupSteps);
  if (o.name === 'constant') return 1;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  let factor: number;
  if (o.name === 'linear') {
    factor = Math.max(0, (o.totalSteps - step) / span);
  } else if (o.name === 'cosine') {
    const progress = (step - o.warmupSteps) / span;
    factor = Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress))); // num_cycles = 0.5
  } else {
    throw new Error(`schedule: unknown name ${String(o.name)} (constant, linear or cosine)`);
  }
  return r === 0 ? factor : Math.max(0, factor * (1 - r) + r);
}

/** transformers' warmup_ratio rule: ceil(ratio * totalSteps). */
export function warmupFromRatio(ratio: number, totalSteps: number): number {
  return Math.ceil(ratio * totalSteps);
}
