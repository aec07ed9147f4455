// The demo's data, generated (seeded) by a small grammar of product reviews: an unlabelled corpus
// for pre-training and a labelled sentiment set (positive / negative / neutral) for fine-tuning.

const PRODUCTS = ['phone', 'blender', 'novel', 'jacket', 'tent', 'kettle', 'laptop', 'backpack', 'lamp', 'camera', 'desk chair', 'board game', 'toaster', 'bicycle', 'speaker', 'watch', 'vacuum', 'mattress', 'printer', 'headset', 'sofa', 'drill', 'guitar', 'stroller'];
const ASPECTS = ['battery', 'screen', 'sound', 'fabric', 'plot', 'price', 'delivery', 'packaging', 'build quality', 'design', 'handle', 'motor', 'colour', 'manual', 'warranty', 'zipper', 'keyboard', 'lid', 'cushion', 'strap', 'finish', 'app', 'charger', 'wheels'];
/** Sentiment words by class; the labelled training set sees only the first half of each list. */
const WORDS = {
  positive: ['great', 'excellent', 'wonderful', 'lovely', 'fantastic', 'brilliant', 'superb', 'delightful', 'outstanding', 'terrific', 'marvellous', 'splendid', 'perfect', 'impressive', 'gorgeous', 'sturdy', 'reliable', 'charming', 'flawless', 'stellar'],
  negative: ['terrible', 'awful', 'horrible', 'dreadful', 'poor', 'flimsy', 'useless', 'disappointing', 'shoddy', 'broken', 'atrocious', 'miserable', 'faulty', 'pathetic', 'lousy', 'abysmal', 'defective', 'rubbish', 'appalling', 'wretched'],
  neutral: ['average', 'ordinary', 'standard', 'typical', 'adequate', 'acceptable', 'plain', 'unremarkable', 'middling', 'passable', 'moderate', 'fair', 'normal', 'basic', 'regular', 'conventional', 'so-so', 'neutral', 'common', 'usual'],
};
const CONSEQUENCES = {
  positive: ['i would buy it again', 'five stars from me', 'my whole family loves it', 'i recommend it to everyone', 'worth every penny', 'i am so happy with it', 'it made my week', 'best purchase this year', 'i already ordered a second one', 'it exceeded my hopes'],
  negative: ['i returned it the next day', 'a complete waste of money', 'i want a refund', 'avoid it at all costs', 'one star and that is generous', 'i regret buying it', 'it went straight in the bin', 'never again', 'i am filing a complaint', 'it ruined my weekend'],
  neutral: ['it does the job', 'nothing special either way', 'you get what you pay for', 'it is fine i suppose', 'three stars seems right', 'neither good nor bad', 'i have no strong feelings', 'it works as described', 'about what i expected', 'it is okay for the price'],
};
const FILLERS = ['i bought it for my sister', 'it arrived on tuesday', 'i have used it for two weeks', 'my neighbour has the same one', 'i ordered it online', 'it came in a brown box', 'i use it every morning', 'the shop was busy that day', 'i got it on sale', 'we took it on holiday'];
const ADVERBS = ['really', 'quite', 'very', 'rather', 'truly', 'pretty', 'so', 'honestly', ''];
const CLAUSES = [
  (a: string, p: string, w: string, d: string) => `the ${a} is ${d} ${w}`,
  (a: string, p: string, w: string) => `what a ${w} ${p}`,
  (a: string, p: string, w: string, d: string) => `i found the ${a} ${d} ${w}`,
  (a: string, p: string, w: string) => `${w} ${a} and ${w} ${p}`,
  (a: string, p: string, w: string, d: string) => `honestly the ${p} feels ${d} ${w}`,
  (a: string, p: string, w: string) => `the ${a} turned out ${w}`,
  (a: string, p: string, w: string, d: string) => `this ${p} has a ${d} ${w} ${a}`,
  (a: string, p: string, w: string) => `overall ${w}`,
];

export type Sentiment = 'positive' | 'negative' | 'neutral';
const CLASSES: Sentiment[] = ['positive', 'negative', 'neutral'];

/** A seeded generator (mulberry32): the demo's data are the same on every machine. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function clean(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** A review of one sentiment; `half` restricts the sentiment words to one half of each list. */
function review(r: () => number, cls: Sentiment, o: { half?: 0 | 1; consequences: boolean; fillers: boolean }): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const words = WORDS[cls];
  const pool = o.half === undefined ? words : words.slice(o.half * (words.length / 2), (o.half + 1) * (words.length / 2));
  const product = pick(PRODUCTS);
  const parts: string[] = [];
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) parts.push(pick(CLAUSES)(pick(ASPECTS), product, pick(pool), pick(ADVERBS)));
  if (o.consequences) for (let i = 0; i < 1 + Math.floor(r() * 2); i++) parts.splice(Math.floor(r() * (parts.length + 1)), 0, pick(CONSEQUENCES[cls]));
  if (o.fillers && r() < 0.6) parts.splice(Math.floor(r() * (parts.length + 1)), 0, pick(FILLERS));
  return clean(parts.map((p) => `${p}.`).join(' '));
}

/** Unlabelled pre-training corpus: reviews with every sentiment word, their consequences and filler. */
export function demoCorpus(documents: number, seed = 1): string {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < documents; i++) out.push(review(r, CLASSES[Math.floor(r() * 3)]!, { consequences: true, fillers: true }));
  return out.join('\n\n') + '\n';
}

export interface Labelled {
  text: string;
  label: Sentiment;
}

/**
 * Labelled reviews without the giveaway consequence sentences. The training set uses one half of
 * the sentiment words and the test set the other half: the labelled set alone cannot teach what
 * "splendid" or "abysmal" mean, the unlabelled corpus can. That is the point the demo makes.
 */
export function demoLabelled(n: number, half: 0 | 1, seed: number): Labelled[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const label = CLASSES[i % 3]!;
    return { text: review(r, label, { half, consequences: false, fillers: true }), label };
  });
}
