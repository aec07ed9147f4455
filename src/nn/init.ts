// Parameter initialisers that overwrite a tensor in place (torch.nn.init's normal_, zeros_, ...).
// Values are drawn on the host from a seeded Generator, so every backend gets the same model.

import { Generator, defaultGenerator } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';
import { writeInto } from './module.js';

let skipping = 0;

/**
 * Runs fn with the layer initialisers switched off (transformers' no_init_weights): models build
 * their layers inside it, then initialise once by their own rules or load a checkpoint over them.
 * Parameters are then uninitialised memory until written.
 */
export function withoutInit<T>(fn: () => T): T {
  skipping++;
  try {
    return fn();
  } finally {
    skipping--;
  }
}

/** Normal(mean, std) values into t. */
export function initNormal(t: Tensor, std: number, generator: Generator = defaultGenerator, mean = 0): void {
  if (skipping) return;
  const v = new Float32Array(t.size);
  // Box-Muller gives two normals per pair of uniforms; using both halves the cost of a 100M-parameter init.
  for (let i = 0; i < v.length; i += 2) {
    const r = std * Math.sqrt(-2 * Math.log((generator.nextU32() + 1) / 4294967297));
    const a = 2 * Math.PI * generator.uniform();
    v[i] = mean + r * Math.cos(a);
    if (i + 1 < v.length) v[i + 1] = mean + r * Math.sin(a);
  }
  writeInto(t, v);
}

/** Uniform values in [-bound, bound) into t. */
export function initUniform(t: Tensor, bound: number, generator: Generator = defaultGenerator): void {
  if (skipping) return;
  const v = new Float32Array(t.size);
  for (let i = 0; i < v.length; i++) v[i] = bound * (2 * generator.uniform() - 1);
  writeInto(t, v);
}

/**
 * PyTorch's kaiming_uniform_(w, a=sqrt(5)), the default of nn.Linear and of PEFT's lora_A:
 * bound = gain * sqrt(3 / fanIn) with gain = sqrt(2 / (1 + a^2)), which is 1 / sqrt(fanIn).
 */
export function initKaimingUniform(t: Tensor, fanIn: number, generator: Generator = defaultGenerator): void {
  initUniform(t, 1 / Math.sqrt(fanIn), generator);
}

export function initConstant(t: Tensor, value: number): void {
  if (skipping) return;
  writeInto(t, new Float32Array(t.size).fill(value));
}

export const initZeros = (t: Tensor): void => initConstant(t, 0);
export const initOnes = (t: Tensor): void => initConstant(t, 1);
