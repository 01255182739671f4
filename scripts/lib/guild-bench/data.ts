/**
 * The benchmark's data, generated deterministically (same seed → same bytes on every machine), in
 * the shape of The Guild's federation benchmark (graphql-hive/graphql-gateways-benchmark): 6 users,
 * 9 products, 11 reviews whose bodies have that benchmark's lengths, so the heavy query moves the
 * same amount of JSON (~87 KB response) through the gateway.
 */
export interface User {
  id: string;
  name: string;
  username: string;
  birthday: number;
}

export interface Product {
  upc: string;
  name: string;
  price: number;
  weight: number;
  inStock: boolean;
}

export interface Review {
  id: string;
  body: string;
  productUpc: string;
}

/** A small seeded generator (xorshift32): the data only has to be stable, not random-looking. */
function generator(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

const next = generator(0x5eed_2026);
const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
const between = (low: number, high: number): number => low + Math.floor(next() * (high - low + 1));

const FIRST = ['Ada', 'Brian', 'Chloe', 'Dmitri', 'Elif', 'Farah', 'Goran', 'Hana', 'Ivo', 'Jun'] as const;
const LAST = ['Okafor', 'Lindqvist', 'Moreau', 'Tanaka', 'Novak', 'Haddad', 'Silva', 'Kowalski'] as const;
const THINGS = ['Table', 'Couch', 'Glass', 'Chair', 'Lamp', 'Shelf', 'Grill', 'Fridge', 'Desk', 'Stool', 'Rug'] as const;
const WORDS = [
  'quality', 'sturdy', 'delivery', 'arrived', 'quickly', 'assembly', 'took', 'longer', 'than', 'expected', 'finish',
  'looks', 'great', 'in', 'the', 'living', 'room', 'would', 'buy', 'again', 'colour', 'slightly', 'different', 'from',
  'photos', 'but', 'still', 'nice', 'packaging', 'was', 'damaged', 'support', 'replaced', 'it', 'within', 'a', 'week',
] as const;

function sentence(length: number): string {
  let text = '';
  while (text.length < length) text += (text ? ' ' : '') + pick(WORDS);
  return `${text.slice(0, length - 1)}.`;
}

export const users: readonly User[] = Array.from({ length: 6 }, (_, i) => {
  const first = pick(FIRST);
  const last = pick(LAST);
  return { id: String(i + 1), name: `${first} ${last}`, username: `${first}${last}`.toLowerCase(), birthday: between(1e8, 1.6e9) };
});

/** Fisher–Yates with the seeded generator: the same order on every engine (a random `sort` comparator is not). */
function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

const productNames = shuffled(THINGS);

export const products: readonly Product[] = Array.from({ length: 9 }, (_, i) => ({
  upc: String(i + 1),
  name: productNames[i]!,
  // Around 1000, so both branches of shippingEstimate run.
  price: between(10, 2_500),
  weight: between(10, 6_000),
  inStock: next() < 0.5,
}));

/** Body lengths and products of the reference benchmark's reviews. */
const REVIEW_SHAPE: readonly [bodyLength: number, productUpc: string][] = [
  [445, '1'], [289, '1'], [275, '1'], [143, '1'],
  [445, '2'], [289, '2'], [275, '2'], [143, '2'],
  [143, '3'], [143, '4'], [844, '4'],
];

export const reviews: readonly Review[] = REVIEW_SHAPE.map(([length, productUpc], i) => ({
  id: String(i + 1),
  body: sentence(length),
  productUpc,
}));

/**
 * As in the reference benchmark: every review's author is the first user, and every user's reviews
 * are the first two reviews — that is what makes the heavy query fan out.
 */
export const authorOfEveryReview: User = users[0]!;
export const reviewsOfEveryUser: readonly Review[] = reviews.slice(0, 2);
