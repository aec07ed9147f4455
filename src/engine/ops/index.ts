// Every op, re-exported flat (import { matmul, softmax } from 'loom').

export { add, sub, mul, div, neg, exp, log, sqrt, tanh, sigmoid, relu, silu, gelu, pow, scale, addScalar } from './elementwise.js';
export { sum, mean, max, type ReduceOptions } from './reduce.js';
export { reshape, unsqueeze, squeeze, permute, transpose, slice, concat, broadcastTo } from './shape.js';
export { matmul, linear, type MatmulOptions, type LinearOpOptions } from './matmul.js';
export { softmax, logSoftmax, layerNorm, rmsNorm, embedding, crossEntropy, dropout, type CrossEntropyOptions, type DropoutOptions } from './nn.js';
export {
  rope, ropeInvFreq, attention, attentionPacked, type RopeOptions, type AttentionOptions, type PackedAttentionOptions, type HeadLayout,
} from './attention.js';
export { adamwStep, globalNorm, clipGradNorm, type AdamWState } from './optim.js';
export { ShapeError } from './check.js';
