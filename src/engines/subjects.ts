/**
 * NATS subject matching, as the engines need it: which stream captures
 * a subject, which events a consumer's filter selects, and whether two
 * streams' subjects collide.
 *
 * Subjects are `.`-separated tokens; in a pattern `*` stands for exactly one
 * token and `>` (last token only) for one or more. Subjects reaching these
 * functions were validated by the layer above, so they have no empty tokens.
 *
 * @module
 */

/** Tells whether a literal subject matches a compiled set of patterns. */
export type SubjectMatcher = (subject: string) => boolean;

const ONE = "*";
const REST = ">";

/** Whether `pattern` contains a wildcard token. */
export function hasWildcard(pattern: string): boolean {
  return tokenIsWildcard(pattern.split("."));
}

function tokenIsWildcard(tokens: readonly string[]): boolean {
  return tokens.some((t) => t === ONE || t === REST);
}

/** Token-wise match of a literal subject against a pattern. */
function matchTokens(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === REST) return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== ONE && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

/** Whether the literal `subject` matches `pattern`. */
export function matches(pattern: string, subject: string): boolean {
  return matchTokens(pattern.split("."), subject.split("."));
}

/**
 * Whether every literal subject `filter` matches is also matched by
 * `pattern` (both may hold wildcards): `orders.*.paid` is within `orders.>`,
 * `orders.>` is not within `orders.*`.
 */
export function isSubsetOf(filter: string, pattern: string): boolean {
  const f = filter.split(".");
  const p = pattern.split(".");
  for (let i = 0; i < p.length; i++) {
    const pt = p[i];
    if (pt === REST) return f.length > i;
    const ft = f[i];
    if (ft === undefined || ft === REST) return false;
    if (pt === ONE) continue;
    if (ft !== pt) return false; // a `*` in the filter is wider than a literal
  }
  return f.length === p.length;
}

/** Whether some literal subject matches both `a` and `b` (`a.>` and `a` do not overlap). */
export function overlaps(a: string, b: string): boolean {
  const x = a.split(".");
  const y = b.split(".");
  for (let i = 0; ; i++) {
    const s = x[i];
    const t = y[i];
    if (s === undefined || t === undefined) return s === t;
    if (s === REST || t === REST) return true; // the other side has a token here
    if (s !== ONE && t !== ONE && s !== t) return false;
  }
}

const NOTHING: SubjectMatcher = () => false;

/**
 * The matcher of a consumer's or source's subject filter: `undefined` (take
 * every subject) when the filter lists none.
 */
export function filterMatcher(subjects: readonly string[]): SubjectMatcher | undefined {
  return subjects.length === 0 ? undefined : compileMatcher(subjects);
}

/**
 * Compiles patterns into one matcher for the hot path: literal patterns
 * become a set lookup and `prefix.>` a `startsWith`, so only patterns with
 * `*` split the subject (once, whatever their number).
 */
export function compileMatcher(patterns: readonly string[]): SubjectMatcher {
  const literals = new Set<string>();
  const prefixes: string[] = [];
  const general: string[][] = [];
  for (const pattern of patterns) {
    const tokens = pattern.split(".");
    const last = tokens.length - 1;
    if (!tokenIsWildcard(tokens)) literals.add(pattern);
    else if (tokens[last] === REST && !tokenIsWildcard(tokens.slice(0, last))) {
      prefixes.push(pattern.slice(0, -1)); // "a.b.>" → "a.b.", ">" → ""
    } else general.push(tokens);
  }
  if (prefixes.length === 0 && general.length === 0) {
    if (literals.size === 0) return NOTHING;
    if (literals.size === 1) {
      const [only] = literals;
      return (subject) => subject === only;
    }
    return (subject) => literals.has(subject);
  }
  return (subject) => {
    if (literals.has(subject)) return true;
    for (const prefix of prefixes) {
      if (subject.length > prefix.length && subject.startsWith(prefix)) return true;
    }
    if (general.length === 0) return false;
    const tokens = subject.split(".");
    for (const pattern of general) if (matchTokens(pattern, tokens)) return true;
    return false;
  };
}
