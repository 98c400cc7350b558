/** Headers as published: names as sent, in order, repeated names allowed. */
export type RawHeaders = readonly (readonly [name: string, value: string])[];

/** Headers for lookups: lower-case name to its first value. */
export type HeaderMap = ReadonlyMap<string, string>;

const EMPTY: HeaderMap = new Map();

/** The lookup map of `headers`: lower-case name to its first value. */
export function headerMap(headers: RawHeaders): HeaderMap {
  if (headers.length === 0) return EMPTY;
  const map = new Map<string, string>();
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (!map.has(lower)) map.set(lower, value);
  }
  return map;
}

/** An empty {@link HeaderMap}. */
export const emptyHeaderMap: HeaderMap = EMPTY;
