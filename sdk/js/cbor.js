// CBOR (RFC 8949) in plain JavaScript, for the values that cross Shoal's op boundary.
//
// No dependencies and no platform APIs beyond ECMAScript (no TextEncoder, no Buffer): it runs in
// Node and inside a component (QuickJS or StarlingMonkey).
//
// Encoding (JavaScript -> CBOR), preferred (shortest) serialization:
//   integral Number within ±2^64          -> integer (major 0 or 1); -0 stays a float
//   other Number (1.5, NaN, Infinity)     -> 64-bit float
//   BigInt                                -> integer; beyond 64 bits a bignum (tag 2 or 3)
//   string                                -> text (UTF-8; a lone surrogate is an error)
//   Uint8Array, ArrayBuffer, DataView     -> bytes
//   Array, other typed arrays             -> array
//   Map                                   -> map with any keys, in insertion order
//   plain object                          -> map with text keys, in property order
//   true, false, null, undefined          -> simple values 21, 20, 22, 23
//   Tagged, Simple                        -> a tag around a value, a simple value
//   a class instance with toJSON() (Date) -> whatever toJSON() returns
//   another class instance                -> map of its own enumerable properties
//   functions, symbols, cycles            -> TypeError
//
// Decoding (CBOR -> JavaScript):
//   integers -> Number when safe (|n| <= 2^53 - 1), else BigInt; bignums (tags 2, 3) -> BigInt
//   floats (half, single, double) -> Number; bytes -> Uint8Array; text -> string; array -> Array
//   map -> plain object when every key is text, else Map; other tags -> Tagged;
//   unassigned simple values -> Simple. Indefinite-length strings, arrays and maps are accepted.
// Malformed input throws a CborError naming the offset and what was wrong.

/** Arrays, maps and tags nested deeper than this are refused, both ways: it is the host's limit
 * (a deeper value is not well-formed to it), and it keeps the recursion well inside an
 * interpreter's stack. */
export const MAX_DEPTH = 64;

/** A malformed or unsupported CBOR item. `offset` is the byte where decoding stopped. */
export class CborError extends Error {
  constructor(message, offset) {
    super(offset === undefined ? message : `${message} (at byte ${offset})`);
    this.name = "CborError";
    this.offset = offset;
  }
}

/** A tagged item (major type 6) other than a bignum. */
export class Tagged {
  constructor(tag, value) {
    if (typeof tag === "number") {
      if (!Number.isSafeInteger(tag) || tag < 0) throw new TypeError(`CBOR tag ${tag} is not an unsigned integer`);
    } else if (typeof tag !== "bigint" || tag < 0n || tag >= 1n << 64n) {
      throw new TypeError(`CBOR tag ${tag} is not an unsigned 64-bit integer`);
    }
    this.tag = tag;
    this.value = value;
  }
}

/** A simple value (major type 7) without a JavaScript meaning: 0..19 and 32..255. */
export class Simple {
  constructor(value) {
    if (!Number.isInteger(value) || value < 0 || value > 255 || (value >= 20 && value < 32)) {
      throw new TypeError(`${value} is not an unassigned CBOR simple value (0..19, 32..255)`);
    }
    this.value = value;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding
//
// Written for an interpreter (QuickJS runs every step of a JavaScript op): few calls and property
// lookups per item, the output buffer and the ancestors kept in module variables (a nested
// `encode`, from a toJSON() method, saves and restores them), paths built only on error.

const TWO_32 = 0x100000000;
const TWO_64 = 18446744073709551616; // 2 ** 64, exact as a double
const U64_MAX = (1n << 64n) - 1n;

let W = new Uint8Array(1024); // the output buffer, reused across calls
let L = 0; // bytes written to W
let ANC = []; // ANC[d]: the container at depth d being encoded
let encoding = false;
const F64 = new DataView(new ArrayBuffer(8));

function grow(n) {
  let size = W.length * 2;
  while (size < L + n) size *= 2;
  const next = new Uint8Array(size);
  next.set(W.subarray(0, L));
  W = next;
}

// A head with a Number argument 0 <= n < 2^64 (exact when n is safe, or an integral double).
function head(major, n) {
  if (L + 9 > W.length) grow(9);
  const m = major << 5;
  if (n < 24) {
    W[L++] = m | n;
  } else if (n < 0x100) {
    W[L++] = m | 24;
    W[L++] = n;
  } else if (n < 0x10000) {
    W[L++] = m | 25;
    W[L++] = n >>> 8;
    W[L++] = n & 0xff;
  } else if (n < TWO_32) {
    W[L++] = m | 26;
    W[L++] = n >>> 24;
    W[L++] = (n >>> 16) & 0xff;
    W[L++] = (n >>> 8) & 0xff;
    W[L++] = n & 0xff;
  } else {
    W[L++] = m | 27;
    const hi = Math.floor(n / TWO_32);
    const lo = n % TWO_32;
    W[L++] = hi >>> 24;
    W[L++] = (hi >>> 16) & 0xff;
    W[L++] = (hi >>> 8) & 0xff;
    W[L++] = hi & 0xff;
    W[L++] = lo >>> 24;
    W[L++] = (lo >>> 16) & 0xff;
    W[L++] = (lo >>> 8) & 0xff;
    W[L++] = lo & 0xff;
  }
}

function headBig(major, n) {
  if (n < 0x20000000000000n) {
    head(major, Number(n));
    return;
  }
  if (L + 9 > W.length) grow(9);
  W[L++] = (major << 5) | 27;
  for (let shift = 56n; shift >= 0n; shift -= 8n) W[L++] = Number((n >> shift) & 0xffn);
}

function raw(bytes) {
  if (L + bytes.length > W.length) grow(bytes.length);
  W.set(bytes, L);
  L += bytes.length;
}

/** Encodes `value` as CBOR. Throws a TypeError for what CBOR cannot hold (functions, symbols,
 * cycles, nesting deeper than MAX_DEPTH). */
export function encode(value) {
  if (encoding) {
    // Called again from inside an encode (a toJSON method): keep the outer call's state.
    const w = W;
    const l = L;
    const anc = ANC;
    W = new Uint8Array(256);
    L = 0;
    ANC = [];
    try {
      item(value, 0);
      return W.slice(0, L);
    } finally {
      W = w;
      L = l;
      ANC = anc;
    }
  }
  encoding = true;
  L = 0;
  try {
    item(value, 0);
    return W.slice(0, L);
  } catch (e) {
    if (e instanceof TypeError && e.cborPath) {
      const path = e.cborPath;
      const shown = path.length > 12 ? [...path.slice(0, 4), "…", ...path.slice(-6)] : path;
      e.message += ` at ${shown.join("")}`;
      delete e.cborPath;
    }
    throw e;
  } finally {
    encoding = false;
    ANC.length = 0;
    if (W.length > 65536) W = new Uint8Array(1024); // do not keep a large buffer alive
  }
}

function pathError(e, segment) {
  if (e instanceof TypeError) {
    if (!e.cborPath) e.cborPath = [];
    e.cborPath.unshift(segment);
  }
  return e;
}

function item(v, depth) {
  switch (typeof v) {
    case "number":
      if (Number.isInteger(v) && v < TWO_64 && v >= -TWO_64 && !Object.is(v, -0)) {
        if (v >= 0) head(0, v);
        else if (v >= -Number.MAX_SAFE_INTEGER) head(1, -1 - v);
        else headBig(1, -1n - BigInt(v));
      } else {
        if (L + 9 > W.length) grow(9);
        F64.setFloat64(0, v);
        W[L++] = 0xfb;
        for (let i = 0; i < 8; i++) W[L++] = F64.getUint8(i);
      }
      return;
    case "string":
      text(v);
      return;
    case "boolean":
      head(7, v ? 21 : 20);
      return;
    case "undefined":
      head(7, 23);
      return;
    case "bigint":
      if (v >= 0n) {
        if (v <= U64_MAX) headBig(0, v);
        else bignum(2, v);
      } else {
        const m = -1n - v;
        if (m <= U64_MAX) headBig(1, m);
        else bignum(3, m);
      }
      return;
    case "function":
    case "symbol":
      throw new TypeError(`cannot encode a ${typeof v} as CBOR`);
  }
  if (v === null) {
    head(7, 22);
    return;
  }
  if (Array.isArray(v)) {
    enter(v, depth);
    const n = v.length;
    head(4, n);
    let i = 0;
    try {
      for (; i < n; i++) item(v[i], depth + 1);
    } catch (e) {
      throw pathError(e, `[${i}]`);
    }
    return;
  }
  if (v instanceof Uint8Array) {
    head(2, v.length);
    raw(v);
    return;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) {
    enter(v, depth);
    const keys = Object.keys(v);
    head(5, keys.length);
    let k;
    try {
      for (k of keys) {
        text(k);
        item(v[k], depth + 1);
      }
    } catch (e) {
      throw pathError(e, `.${k}`);
    }
    return;
  }
  if (v instanceof ArrayBuffer || v instanceof DataView) {
    const bytes = v instanceof DataView ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(v);
    head(2, bytes.length);
    raw(bytes);
    return;
  }
  if (v instanceof Map) {
    enter(v, depth);
    head(5, v.size);
    let k;
    try {
      for (const [key, val] of v) {
        k = key;
        item(key, depth + 1);
        item(val, depth + 1);
      }
    } catch (e) {
      throw pathError(e, typeof k === "string" ? `.${k}` : "{…}");
    }
    return;
  }
  if (v instanceof Tagged) {
    enter(v, depth);
    if (typeof v.tag === "bigint") headBig(6, v.tag);
    else head(6, v.tag);
    item(v.value, depth + 1);
    return;
  }
  if (v instanceof Simple) {
    if (v.value < 24) head(7, v.value);
    else {
      if (L + 2 > W.length) grow(2);
      W[L++] = 0xf8;
      W[L++] = v.value;
    }
    return;
  }
  if (ArrayBuffer.isView(v)) {
    enter(v, depth);
    head(4, v.length);
    for (let i = 0; i < v.length; i++) item(v[i], depth + 1);
    return;
  }
  if (typeof v.toJSON === "function") {
    item(v.toJSON(), depth);
    return;
  }
  // Any other object (a class instance): its own enumerable properties, as JSON does.
  enter(v, depth);
  const keys = Object.keys(v);
  head(5, keys.length);
  let k;
  try {
    for (k of keys) {
      text(k);
      item(v[k], depth + 1);
    }
  } catch (e) {
    throw pathError(e, `.${k}`);
  }
}

// Notes a container at `depth`; past MAX_DEPTH, tells a cycle from deep nesting.
function enter(v, depth) {
  if (depth >= MAX_DEPTH) {
    for (let i = 0; i < depth; i++) {
      for (let j = i + 1; j < depth; j++) {
        if (ANC[i] === ANC[j]) throw new TypeError("cannot encode a cyclic value as CBOR");
      }
    }
    throw new TypeError(`cannot encode as CBOR: nested deeper than ${MAX_DEPTH}`);
  }
  ANC[depth] = v;
}

function bignum(tag, n) {
  const bytes = [];
  while (n > 0n) {
    bytes.push(Number(n & 0xffn));
    n >>= 8n;
  }
  bytes.reverse();
  head(6, tag);
  head(2, bytes.length);
  raw(bytes);
}

function text(s) {
  const n = s.length;
  // ASCII fast path: one byte per code unit, written straight into the buffer.
  if (L + n + 9 > W.length) grow(n + 9);
  const at = L;
  head(3, n);
  const body = L;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    W[body + i] = c;
  }
  if (i === n) {
    L = body + n;
    return;
  }
  L = at;
  const bytes = utf8Encode(s);
  head(3, bytes.length);
  raw(bytes);
}

/** UTF-8 bytes of a string; a lone surrogate is a TypeError. */
export function utf8Encode(s) {
  const out = new Uint8Array(s.length * 3);
  let j = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[j++] = c;
    } else if (c < 0x800) {
      out[j++] = 0xc0 | (c >> 6);
      out[j++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) {
        throw new TypeError(`cannot encode a string with a lone surrogate (U+${c.toString(16).toUpperCase()}) as CBOR text`);
      }
      i++;
      c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      out[j++] = 0xf0 | (c >> 18);
      out[j++] = 0x80 | ((c >> 12) & 0x3f);
      out[j++] = 0x80 | ((c >> 6) & 0x3f);
      out[j++] = 0x80 | (c & 0x3f);
    } else {
      out[j++] = 0xe0 | (c >> 12);
      out[j++] = 0x80 | ((c >> 6) & 0x3f);
      out[j++] = 0x80 | (c & 0x3f);
    }
  }
  return out.subarray(0, j);
}

// ---------------------------------------------------------------------------------------------
// Decoding
//
// The input and the position live in module variables too (decoding calls no user code, so it
// is never re-entered).

const BREAK = Symbol("break");
let B = null; // the input
let P = 0; // the position in B
let N = 0; // B.length

/** Decodes exactly one CBOR item from `bytes` (a Uint8Array, or an array of byte values).
 * Throws a CborError on malformed input, on trailing bytes, and on nesting deeper than
 * MAX_DEPTH. */
export function decode(bytes) {
  if (!(bytes instanceof Uint8Array)) bytes = asBytes(bytes);
  if (bytes.length === 0) throw new CborError("empty input: no CBOR item", 0);
  if (bytes.length === 1) {
    // One-byte items (small integers, {}, [], "", true, null, ...) without the machinery.
    const b = bytes[0];
    if (b < 24) return b;
    if (b >= 0x20 && b < 0x38) return 0x1f - b;
    if (b === 0xa0) return {};
    if (b === 0x80) return [];
  }
  B = bytes;
  P = 0;
  N = bytes.length;
  try {
    const v = next(0);
    if (v === BREAK) throw new CborError("unexpected break (0xff) outside an indefinite-length item", 0);
    if (P !== N) throw new CborError(`${N - P} trailing byte(s) after the CBOR item`, P);
    return v;
  } finally {
    B = null;
  }
}

// What a componentizer hands over for a `list<u8>`: a Uint8Array (QuickJS), another view or an
// array of numbers (StarlingMonkey), an ArrayBuffer.
function asBytes(b) {
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  if (b !== null && typeof b === "object" && typeof b.length === "number") return Uint8Array.from(b);
  throw new TypeError(`CBOR decode expects bytes (a Uint8Array), got ${b === null ? "null" : Object.prototype.toString.call(b)}`);
}

function eof(n, what, at = P) {
  return new CborError(`unexpected end of input: ${what} needs ${n} more byte(s), ${N - at} left`, at);
}

// The argument of a head whose additional information is `ai` >= 24: a Number when safe, else
// a BigInt; -1 for an indefinite length.
function arg(ai, major, start) {
  switch (ai) {
    case 24:
      if (P + 1 > N) throw eof(1, "a 1-byte argument");
      return B[P++];
    case 25:
      if (P + 2 > N) throw eof(2, "a 2-byte argument");
      P += 2;
      return (B[P - 2] << 8) | B[P - 1];
    case 26:
      if (P + 4 > N) throw eof(4, "a 4-byte argument");
      P += 4;
      return B[P - 4] * 0x1000000 + ((B[P - 3] << 16) | (B[P - 2] << 8) | B[P - 1]);
    case 27: {
      if (P + 8 > N) throw eof(8, "an 8-byte argument");
      const hi = B[P] * 0x1000000 + ((B[P + 1] << 16) | (B[P + 2] << 8) | B[P + 3]);
      const lo = B[P + 4] * 0x1000000 + ((B[P + 5] << 16) | (B[P + 6] << 8) | B[P + 7]);
      P += 8;
      if (hi < 0x200000) return hi * TWO_32 + lo; // < 2^53
      return (BigInt(hi) << 32n) | BigInt(lo);
    }
    case 31:
      if (major >= 2 && major <= 5) return -1;
      throw new CborError(`indefinite length is not allowed for major type ${major}`, start);
    default:
      throw new CborError(`reserved additional information ${ai} in initial byte 0x${hexByte(B[start])}`, start);
  }
}

// Checks that `n` elements of at least one byte each can follow.
function count(n, start, what) {
  if (typeof n === "bigint" || n > N - P) {
    throw new CborError(`unexpected end of input: ${what} of length ${n} but ${N - P} byte(s) left`, start);
  }
  return n;
}

function next(depth) {
  const start = P;
  if (P >= N) throw eof(1, "an item");
  const ib = B[P++];
  const major = ib >> 5;
  const ai = ib & 0x1f;
  if (major === 7) return simple(ai, start);
  const n = ai < 24 ? ai : arg(ai, major, start);
  switch (major) {
    case 0:
      return n;
    case 1:
      if (typeof n === "bigint") return -1n - n;
      if (n >= Number.MAX_SAFE_INTEGER) return -1n - BigInt(n);
      return -1 - n;
    case 2: {
      if (n === -1) return chunks(2);
      count(n, start, "a string");
      P += n;
      return B.slice(P - n, P);
    }
    case 3: {
      if (n === -1) return utf8Decode(chunks(3), start);
      count(n, start, "a string");
      P += n;
      return utf8Decode(B, start, P - n, P);
    }
    case 4: {
      if (depth >= MAX_DEPTH) throw new CborError(`nested deeper than ${MAX_DEPTH}`, start);
      if (n === -1) {
        const out = [];
        for (;;) {
          const v = next(depth + 1);
          if (v === BREAK) return out;
          out.push(v);
        }
      }
      count(n, start, "an array");
      const out = new Array(n);
      for (let i = 0; i < n; i++) {
        const at = P;
        const v = next(depth + 1);
        if (v === BREAK) throw new CborError("unexpected break (0xff) inside a definite-length item", at);
        out[i] = v;
      }
      return out;
    }
    case 5:
      if (depth >= MAX_DEPTH) throw new CborError(`nested deeper than ${MAX_DEPTH}`, start);
      return map(n === -1 ? -1 : count(n, start, "a map"), depth + 1);
    case 6: {
      if (depth >= MAX_DEPTH) throw new CborError(`nested deeper than ${MAX_DEPTH}`, start);
      const at = P;
      const v = next(depth + 1);
      if (v === BREAK) throw new CborError("unexpected break (0xff) inside a definite-length item", at);
      if (n === 2 || n === 3) {
        if (!(v instanceof Uint8Array)) throw new CborError(`bignum (tag ${n}) must hold a byte string`, start);
        let m = 0n;
        for (const byte of v) m = (m << 8n) | BigInt(byte);
        return n === 2 ? m : -1n - m;
      }
      return new Tagged(n, v);
    }
  }
  throw new CborError("unreachable", start);
}

function chunks(major) {
  const parts = [];
  let total = 0;
  for (;;) {
    const at = P;
    if (P >= N) throw eof(1, "an item");
    const ib = B[P++];
    if (ib === 0xff) break;
    if (ib >> 5 !== major) {
      const kind = major === 2 ? "byte" : "text";
      throw new CborError(`a chunk of an indefinite-length ${kind} string must be a definite ${kind} string, got initial byte 0x${hexByte(ib)}`, at);
    }
    const ai = ib & 0x1f;
    const n = ai < 24 ? ai : arg(ai, major, at);
    if (n === -1) throw new CborError("indefinite-length string chunks cannot nest", at);
    count(n, at, "a string");
    P += n;
    if (major === 3) utf8Decode(B, at, P - n, P); // each chunk must be valid UTF-8 on its own
    parts.push(B.subarray(P - n, P));
    total += n;
  }
  const out = new Uint8Array(total);
  let j = 0;
  for (const p of parts) {
    out.set(p, j);
    j += p.length;
  }
  return out;
}

function map(n, depth) {
  let obj = {};
  let m = null; // a Map, once a key is not text
  for (let i = 0; n === -1 || i < n; i++) {
    const at = P;
    const k = next(depth);
    if (k === BREAK) {
      if (n !== -1) throw new CborError("unexpected break (0xff) inside a definite-length item", at);
      break;
    }
    const atValue = P;
    const v = next(depth);
    if (v === BREAK) throw new CborError("map key without a value", atValue);
    if (m === null && typeof k === "string") {
      if (Object.prototype.hasOwnProperty.call(obj, k)) throw new CborError(`duplicate map key ${JSON.stringify(k)}`, at);
      if (k === "__proto__") Object.defineProperty(obj, k, { value: v, writable: true, enumerable: true, configurable: true });
      else obj[k] = v;
    } else {
      if (m === null) {
        m = new Map();
        for (const key of Object.keys(obj)) m.set(key, obj[key]);
        obj = null;
      }
      m.set(k, v);
    }
  }
  return m === null ? obj : m;
}

function simple(ai, start) {
  switch (ai) {
    case 20:
      return false;
    case 21:
      return true;
    case 22:
      return null;
    case 23:
      return undefined;
    case 24: {
      if (P + 1 > N) throw eof(1, "a simple value");
      const v = B[P++];
      if (v < 32) throw new CborError(`simple value ${v} must be encoded in the initial byte`, start);
      return new Simple(v);
    }
    case 25: {
      if (P + 2 > N) throw eof(2, "a half-precision float");
      P += 2;
      return halfToNumber((B[P - 2] << 8) | B[P - 1]);
    }
    case 26: {
      if (P + 4 > N) throw eof(4, "a single-precision float");
      const v = new DataView(B.buffer, B.byteOffset + P, 4).getFloat32(0);
      P += 4;
      return v;
    }
    case 27: {
      if (P + 8 > N) throw eof(8, "a double-precision float");
      const v = new DataView(B.buffer, B.byteOffset + P, 8).getFloat64(0);
      P += 8;
      return v;
    }
    case 31:
      return BREAK;
    default:
      if (ai < 20) return new Simple(ai);
      throw new CborError(`reserved additional information ${ai} in initial byte 0x${hexByte(B[start])}`, start);
  }
}

function hexByte(b) {
  return b.toString(16).padStart(2, "0");
}

function halfToNumber(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decodes the UTF-8 in `b[from..to]` to a string; invalid UTF-8 (overlong forms, surrogates,
 * truncated sequences) is a CborError at `offset`. */
export function utf8Decode(b, offset = 0, from = 0, to = b.length) {
  // ASCII fast path: String.fromCharCode over slices of the bytes.
  let i = from;
  while (i < to && b[i] < 0x80) i++;
  if (i === to) return asciiString(b, from, to);
  let s = asciiString(b, from, i);
  const units = [];
  while (i < to) {
    const c = b[i];
    if (c < 0x80) {
      units.push(c);
      i++;
    } else {
      let cp;
      let n;
      let min;
      if (c >= 0xc2 && c <= 0xdf) {
        cp = c & 0x1f;
        n = 1;
        min = 0x80;
      } else if (c >= 0xe0 && c <= 0xef) {
        cp = c & 0x0f;
        n = 2;
        min = 0x800;
      } else if (c >= 0xf0 && c <= 0xf4) {
        cp = c & 0x07;
        n = 3;
        min = 0x10000;
      } else {
        throw new CborError(`invalid UTF-8 in a text string: byte 0x${hexByte(c)} at index ${i - from}`, offset);
      }
      if (i + n >= to) throw new CborError(`invalid UTF-8 in a text string: truncated sequence at index ${i - from}`, offset);
      for (let k = 1; k <= n; k++) {
        const cc = b[i + k];
        if ((cc & 0xc0) !== 0x80) {
          throw new CborError(`invalid UTF-8 in a text string: bad continuation byte at index ${i + k - from}`, offset);
        }
        cp = (cp << 6) | (cc & 0x3f);
      }
      if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        throw new CborError(`invalid UTF-8 in a text string: bad code point at index ${i - from}`, offset);
      }
      i += n + 1;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      } else {
        units.push(cp);
      }
    }
    if (units.length >= 4096) {
      s += String.fromCharCode.apply(null, units);
      units.length = 0;
    }
  }
  return s + String.fromCharCode.apply(null, units);
}

function asciiString(b, from, to) {
  let s = "";
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(to, i + 4096)));
  }
  return s;
}
