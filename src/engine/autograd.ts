// Define-by-run autograd: each differentiable op records a Node with its backward rule and the
// tensors it saved. Nodes are refcounted (by output handles and by downstream nodes), so the saved
// tensors of a graph are freed deterministically: after backward(), or when nothing refers to it.

import { isGradEnabled, noGrad } from './engine.js';
import { Buffer, Tensor, shapeString } from './tensor.js';

/** Where an input's gradient goes: the node that produced it, or a leaf's .grad. */
type Edge = { node: Node } | { leaf: Tensor } | null;

/** Gradients of an op's inputs from the gradient of its output (null: no gradient for that input). */
export type BackwardRule = (dy: Tensor, saved: readonly Tensor[]) => readonly (Tensor | null)[];

export class Node {
  private refs = 1;
  private saved: Tensor[] | null;
  readonly edges: Edge[];

  constructor(
    readonly op: string,
    inputs: readonly Tensor[],
    saved: readonly Tensor[],
    private readonly rule: BackwardRule,
    readonly outShape: readonly number[],
  ) {
    this.edges = inputs.map((t): Edge => {
      if (!t.requiresGrad) return null;
      if (t._node) return { node: t._node.retain() };
      return { leaf: t };
    });
    this.saved = saved.map((t) => t._saved());
  }

  retain(): this {
    this.refs += 1;
    return this;
  }

  /** Drops one reference; at zero the saved tensors go and upstream nodes are released. */
  release(): void {
    this.refs -= 1;
    if (this.refs > 0) return;
    this.freeSaved();
    for (const e of this.edges) if (e && 'node' in e) e.node.release();
  }

  freeSaved(): void {
    if (!this.saved) return;
    for (const t of this.saved) t.dispose();
    this.saved = null;
  }

  apply(dy: Tensor): readonly (Tensor | null)[] {
    if (!this.saved) {
      throw new Error(
        `backward through ${this.op} a second time: its saved tensors were freed (pass retainGraph: true to the first backward)`,
      );
    }
    return this.rule(dy, this.saved);
  }
}

/**
 * Records `out` as produced by `op` from `inputs` when any input needs a gradient. `saved` tensors are
 * kept alive (shared storage) until the graph is freed; the rule receives them in the same order.
 */
export function record(out: Tensor, op: string, inputs: readonly Tensor[], saved: readonly Tensor[], rule: BackwardRule): Tensor {
  if (!isGradEnabled()) return out;
  if (!inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  out._node = new Node(op, inputs, saved, rule, out.shape);
  return out;
}

/** Nodes reachable from root, each after every node that consumes it (reverse topological order). */
function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const visited = new Set<Node>();
  const stack: [Node, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [node, i] = top;
    if (i < node.edges.length) {
      top[1] = i + 1;
      const e = node.edges[i];
      if (e && 'node' in e && !visited.has(e.node)) {
        visited.add(e.node);
        stack.push([e.node, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

/** g itself when it owns its storage, else a private copy (gradients are accumulated in place). */
function owned(g: Tensor): Tensor {
  if (!g.buf().shared) return g;
  const b = g.backend;
  const copy = new Tensor(new Buffer(b, b.alloc('f32', g.size)), g.shape, 'f32').keep();
  b.stridedCopy(g.storage, 0, [1], [g.size], copy.storage, 0, [1]);
  g.dispose();
  return copy;
}

/** a + b in a new buffer, with a's shape. */
function sumInto(a: Tensor, b: Tensor): Tensor {
  const be = a.backend;
  const out = new Tensor(new Buffer(be, be.alloc('f32', a.size)), a.shape, 'f32').keep();
  be.binary('add', a.storage, a.shape, b.storage, b.shape, out.storage, a.shape);
  return out;
}

function accumulateInto(target: Tensor, g: Tensor): void {
  const b = target.backend;
  b.binary('add', target.storage, target.shape, g.storage, g.shape, target.storage, target.shape);
}

export function runBackward(root: Tensor, grad: Tensor | null, retainGraph: boolean): void {
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require grad (no input had requiresGrad)`);
  if (grad === null && root.size !== 1) {
    throw new Error(`backward: output has shape ${shapeString(root.shape)}; pass a gradient for non-scalar outputs`);
  }
  noGrad(() => {
    const seed = grad ? grad.detach() : ones(root);
    if (grad && grad.size !== root.size) {
      throw new Error(`backward: gradient shape ${shapeString(grad.shape)} does not match ${shapeString(root.shape)}`);
    }
    seed.keep();
    const rootNode = root._node;
    if (!rootNode) {
      // A leaf: its gradient is the seed itself.
      addToLeaf(root, seed);
      return;
    }
    const pending = new Map<Node, Tensor>([[rootNode, seed]]);
    const order = topoOrder(rootNode);
    for (const node of order) {
      const dy = pending.get(node);
      if (!dy) continue;
      pending.delete(node);
      const grads = node.apply(dy);
      dy.dispose();
      node.edges.forEach((e, i) => {
        const g = grads[i];
        if (!g) return;
        g.keep();
        if (!e) {
          g.dispose();
          return;
        }
        if (g.size !== (('node' in e) ? shapeProduct(e.node.outShape) : e.leaf.size)) {
          throw new Error(`backward: ${node.op} produced a gradient of shape ${shapeString(g.shape)} for input ${i}`);
        }
        if ('leaf' in e) {
          addToLeaf(e.leaf, g);
          return;
        }
        // A gradient may share its buffer with another edge's (an add hands dy to both inputs): it is kept
        // as it is, and the first sum into a shared one goes to a new buffer (one pass, not copy + add).
        const prev = pending.get(e.node);
        if (!prev) pending.set(e.node, g);
        else if (prev.buf().shared) {
          pending.set(e.node, sumInto(prev, g));
          prev.dispose();
          g.dispose();
        } else {
          accumulateInto(prev, g);
          g.dispose();
        }
      });
      if (!retainGraph) node.freeSaved();
    }
    for (const t of pending.values()) t.dispose();
  });
}

function shapeProduct(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function addToLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.disposed) {
    g.dispose();
    return;
  }
  if (leaf.grad && !leaf.grad.disposed) {
    accumulateInto(leaf.grad, g);
    g.dispose();
    return;
  }
  g = owned(g);
  // The gradient takes the leaf's shape (a rule may hand back a same-size reshaped view).
  if (g.shape.length !== leaf.shape.length || g.shape.some((d, i) => d !== leaf.shape[i])) {
    const view = new Tensor(g.buf().retain(), leaf.shape, g.dtype);
    g.dispose();
    leaf.grad = view.keep();
  } else leaf.grad = g;
}

function ones(like: Tensor): Tensor {
  const b = like.backend;
  const t = new Tensor(new Buffer(b, b.alloc('f32', like.size)), like.shape, 'f32');
  b.fill(t.storage, 1);
  return t;
}
