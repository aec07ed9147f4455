// Reproducible random numbers for initialisation and seeds: a small, fast, seedable generator
// (SplitMix32 stream) whose sequence is the same on every platform and backend.

export class Generator {
  private state: number;

  constructor(seed = 0) {
    this.state = seed >>> 0;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  }

  /** Uniform in [0, 1) with 24 bits (exactly representable in f32). */
  uniform(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Standard normal (Box-Muller on two uniforms, the first kept away from 0). */
  normal(): number {
    const u1 = (this.nextU32() + 1) / 4294967297;
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** A fresh 32-bit seed for a derived stream (dropout masks). */
  seed(): number {
    return this.nextU32();
  }

  /** State for checkpoints (resume continues the same sequence). */
  getState(): number {
    return this.state;
  }

  setState(state: number): void {
    this.state = state >>> 0;
  }
}

/** The default generator (used when a call passes none); reseed with manualSeed. */
export const defaultGenerator = new Generator(0x10041);

export function manualSeed(seed: number): void {
  defaultGenerator.setState(seed);
}
