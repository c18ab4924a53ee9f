// The CBOR codec: RFC 8949 Appendix A vectors, round trips, and malformed input.
import { test } from "node:test";
import assert from "node:assert/strict";

import { CborError, MAX_DEPTH, Simple, Tagged, decode, encode } from "../cbor.js";

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const bytes = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));

// [value, preferred encoding] from RFC 8949 Appendix A (those JavaScript values encode to).
const VECTORS = [
  [0, "00"],
  [1, "01"],
  [10, "0a"],
  [23, "17"],
  [24, "1818"],
  [25, "1819"],
  [100, "1864"],
  [1000, "1903e8"],
  [1000000, "1a000f4240"],
  [1000000000000, "1b000000e8d4a51000"],
  [18446744073709551615n, "1bffffffffffffffff"],
  [18446744073709551616n, "c249010000000000000000"],
  [-18446744073709551616n, "3bffffffffffffffff"],
  [-18446744073709551617n, "c349010000000000000000"],
  [-1, "20"],
  [-10, "29"],
  [-100, "3863"],
  [-1000, "3903e7"],
  [1.1, "fb3ff199999999999a"],
  [1.0e300, "fb7e37e43c8800759c"],
  [-4.1, "fbc010666666666666"],
  [false, "f4"],
  [true, "f5"],
  [null, "f6"],
  [undefined, "f7"],
  [new Simple(16), "f0"],
  [new Simple(255), "f8ff"],
  [new Tagged(1, 1363896240), "c11a514b67b0"],
  [new Tagged(32, "http://www.example.com"), "d82076687474703a2f2f7777772e6578616d706c652e636f6d"],
  [new Uint8Array([]), "40"],
  [new Uint8Array([1, 2, 3, 4]), "4401020304"],
  ["", "60"],
  ["a", "6161"],
  ["IETF", "6449455446"],
  ['"\\', "62225c"],
  ["\u00fc", "62c3bc"],
  ["\u6c34", "63e6b0b4"],
  ["\ud800\udd51", "64f0908591"],
  [[], "80"],
  [[1, 2, 3], "83010203"],
  [[1, [2, 3], [4, 5]], "8301820203820405"],
  [Array.from({ length: 25 }, (_, i) => i + 1), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"],
  [{}, "a0"],
  [{ a: 1, b: [2, 3] }, "a26161016162820203"],
  [["a", { b: "c" }], "826161a161626163"],
  [{ a: "A", b: "B", c: "C", d: "D", e: "E" }, "a56161614161626142616361436164614461656145"],
];

test("RFC 8949 Appendix A: encodes to the preferred serialization", () => {
  for (const [value, want] of VECTORS) assert.equal(hex(encode(value)), want, `encode(${String(value)})`);
});

test("RFC 8949 Appendix A: decodes back", () => {
  for (const [value, h] of VECTORS) assert.deepEqual(decode(bytes(h)), value, `decode(${h})`);
});

test("decodes the floats and forms JavaScript does not produce", () => {
  const cases = [
    ["f90000", 0],
    ["f98000", -0],
    ["f93c00", 1],
    ["f93e00", 1.5],
    ["f97bff", 65504],
    ["f90001", 5.960464477539063e-8],
    ["f90400", 0.00006103515625],
    ["f9c400", -4],
    ["f97c00", Infinity],
    ["f9fc00", -Infinity],
    ["fa47c35000", 100000],
    ["fa7f7fffff", 3.4028234663852886e38],
    ["fa7f800000", Infinity],
    ["fb7ff0000000000000", Infinity],
    ["c249010000000000000000", 18446744073709551616n],
    ["3b000000000000000f", -16],
    ["1b001fffffffffffff", Number.MAX_SAFE_INTEGER],
    ["1b0020000000000000", 9007199254740992n],
    ["3b001ffffffffffffe", -Number.MAX_SAFE_INTEGER],
    ["3b001fffffffffffff", -9007199254740992n],
  ];
  for (const [h, want] of cases) assert.ok(Object.is(decode(bytes(h)), want) || decode(bytes(h)) === want, `decode(${h}) = ${String(decode(bytes(h)))}`);
  assert.ok(Number.isNaN(decode(bytes("f97e00"))));
  assert.ok(Number.isNaN(decode(bytes("fa7fc00000"))));
});

test("decodes indefinite-length items", () => {
  assert.deepEqual(decode(bytes("5f42010243030405ff")), new Uint8Array([1, 2, 3, 4, 5]));
  assert.equal(decode(bytes("7f657374726561646d696e67ff")), "streaming");
  assert.deepEqual(decode(bytes("9fff")), []);
  assert.deepEqual(decode(bytes("9f018202039f0405ffff")), [1, [2, 3], [4, 5]]);
  assert.deepEqual(decode(bytes("83018202039f0405ff")), [1, [2, 3], [4, 5]]);
  assert.deepEqual(decode(bytes("bf61610161629f0203ffff")), { a: 1, b: [2, 3] });
  assert.deepEqual(decode(bytes("826161bf61626163ff")), ["a", { b: "c" }]);
  assert.deepEqual(decode(bytes("bf6346756ef563416d7421ff")), { Fun: true, Amt: -2 });
});

test("maps with other keys decode to a Map; __proto__ stays data", () => {
  const m = decode(bytes("a201020304"));
  assert.ok(m instanceof Map);
  assert.deepEqual([...m], [[1, 2], [3, 4]]);
  const o = decode(encode({ ["__proto__"]: 1, x: 2 }));
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(Object.keys(o), ["__proto__", "x"]);
  assert.equal(hex(encode(new Map([[1, "a"], ["b", [true]]]))), "a2016161616281f5");
});

test("round trips: integers at every width boundary, signs, BigInt", () => {
  const ints = [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
  for (const n of ints) {
    assert.equal(decode(encode(n)), n);
    assert.equal(decode(encode(-n)), -n);
  }
  // Below -(2^53 - 1) integers come back as BigInts.
  assert.equal(decode(encode(-(2 ** 53))), -(2n ** 53n));
  for (const n of [2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, 2n ** 100n, -(2n ** 64n), -(2n ** 64n) - 1n, -(2n ** 90n)]) {
    assert.equal(decode(encode(n)), n);
  }
  // Safe BigInts come back as Numbers.
  assert.equal(decode(encode(5n)), 5);
  // Integral doubles beyond 2^53 encode as exact integers.
  assert.equal(decode(encode(2 ** 60)), 2n ** 60n);
  assert.equal(decode(encode(-(2 ** 64))), -(2n ** 64n));
  assert.equal(hex(encode(2 ** 64)), "fb43f0000000000000");
});

test("round trips: floats, -0, NaN, strings, nesting, typed arrays", () => {
  for (const x of [0.5, -1.25, 1e-300, Number.MIN_VALUE, Number.MAX_VALUE, Infinity, -Infinity]) assert.equal(decode(encode(x)), x);
  assert.ok(Object.is(decode(encode(-0)), -0));
  assert.ok(Number.isNaN(decode(encode(NaN))));
  const text = "ascii, é, 水, 🦀, \u0000, \uffff";
  assert.equal(decode(encode(text)), text);
  const long = "x".repeat(100000) + "é".repeat(10000);
  assert.equal(decode(encode(long)), long);
  const value = { list: [1, -2, 3.5, "four", null, true, [new Uint8Array([9, 8])]], nested: { deeper: { n: 1n << 70n } } };
  assert.deepEqual(decode(encode(value)), value);
  assert.deepEqual(decode(encode(new Int16Array([-1, 2]))), [-1, 2]);
  assert.deepEqual(decode(encode(new Uint8Array([1, 2]).buffer)), new Uint8Array([1, 2]));
  assert.equal(decode(encode(new Date(0))), "1970-01-01T00:00:00.000Z");
  const big = Array.from({ length: 10000 }, (_, i) => ({ i, s: `k${i}` }));
  assert.deepEqual(decode(encode(big)), big);
});

test("decodes whatever a componentizer gives for list<u8>: views, arrays, ArrayBuffers", () => {
  assert.deepEqual(decode([0x82, 0x01, 0x02]), [1, 2]);
  assert.deepEqual(decode(new Uint8Array([0x82, 0x01, 0x02]).buffer), [1, 2]);
  assert.deepEqual(decode(new DataView(new Uint8Array([0xff, 0x82, 0x01, 0x02]).buffer, 1)), [1, 2]);
  assert.deepEqual(decode(new Uint8Array([0xff, 0x82, 0x01, 0x02]).subarray(1)), [1, 2]);
  assert.deepEqual(decode(new Uint8ClampedArray([0x61, 0x61])), "a");
  assert.throws(() => decode(null), /expects bytes \(a Uint8Array\), got null/);
  assert.throws(() => decode("81"), /expects bytes/);
});

test("toJSON values, class instances and an encode nested in toJSON", () => {
  class Point {
    constructor(x, y) {
      this.x = x;
      this.y = y;
    }
  }
  assert.deepEqual(decode(encode([new Point(1, 2)])), [{ x: 1, y: 2 }]);
  class Nested {
    toJSON() {
      return { inner: decode(encode([1, { a: "b" }])) };
    }
  }
  const nested = new Nested();
  assert.deepEqual(decode(encode({ before: 1, v: nested, after: [2] })), { before: 1, v: { inner: [1, { a: "b" }] }, after: [2] });
});

test("refuses what CBOR cannot hold", () => {
  assert.throws(() => encode(() => 1), /cannot encode a function/);
  assert.throws(() => encode({ a: [Symbol("s")] }), /cannot encode a symbol as CBOR at \.a\[0\]/);
  const cyclic = { a: {} };
  cyclic.a.b = cyclic;
  assert.throws(() => encode(cyclic), /cyclic value as CBOR at \.a\.b/);
  assert.throws(() => encode("\ud800x"), /lone surrogate/);
  let deep = 0;
  for (let i = 0; i < MAX_DEPTH; i++) deep = [deep];
  assert.doesNotThrow(() => encode(deep));
  assert.throws(() => encode([deep]), /nested deeper than 64/);
  // A shared (not cyclic) object is fine.
  const shared = { x: 1 };
  assert.deepEqual(decode(encode([shared, shared])), [{ x: 1 }, { x: 1 }]);
});

test("malformed input: a CborError naming what and where", () => {
  const cases = [
    ["", /empty input/],
    ["18", /unexpected end of input.*1-byte argument/],
    ["1c", /reserved additional information 28/],
    ["1f", /indefinite length is not allowed for major type 0/],
    ["3f", /indefinite length is not allowed for major type 1/],
    ["df00", /indefinite length is not allowed for major type 6/],
    ["fc", /reserved additional information 28/],
    ["f818", /simple value 24 must be encoded in the initial byte/],
    ["ff", /unexpected break/],
    ["0000", /1 trailing byte\(s\)/],
    ["6261", /string of length 2 but 1 byte\(s\) left/],
    ["5f01ff", /chunk of an indefinite-length byte string must be a definite byte string/],
    ["5f5f4001ffff", /chunk of an indefinite-length byte string must be a definite byte string|cannot nest/],
    ["7f4161ff", /chunk of an indefinite-length text string must be a definite text string/],
    ["5f41", /unexpected end of input/],
    ["9f01", /unexpected end of input/],
    ["8301", /unexpected end of input|array of length 3/],
    ["9b0000000100000000", /array of length 4294967296/],
    ["bb0000000100000000", /map of length/],
    ["a101", /unexpected end of input/],
    ["bf01ff", /map key without a value/],
    ["81ff", /unexpected break/],
    ["62c328", /invalid UTF-8/],
    ["61ff", /invalid UTF-8/],
    ["62c0af", /invalid UTF-8/], // overlong
    ["63eda080", /invalid UTF-8/], // a surrogate
    ["64f4900000", /invalid UTF-8/], // beyond U+10FFFF
    ["62e6b0", /invalid UTF-8/], // truncated sequence
    ["7f61c361a9ff", /invalid UTF-8/], // a code point split across chunks
    ["a2616101616102", /duplicate map key "a"/],
    ["c263616263", /bignum \(tag 2\) must hold a byte string/],
    ["fa0000", /single-precision float/],
    ["fb00000000", /double-precision float/],
    ["f9", /half-precision float/],
  ];
  for (const [h, re] of cases) {
    assert.throws(
      () => decode(bytes(h)),
      (e) => e instanceof CborError && re.test(e.message) && typeof e.offset === "number",
      `decode(${h || "<empty>"})`,
    );
  }
  assert.throws(() => decode(bytes("81".repeat(MAX_DEPTH + 1) + "00")), /nested deeper than 64/);
  assert.deepEqual(decode(bytes("81".repeat(MAX_DEPTH) + "00")).flat(Infinity), [0]);
  assert.throws(() => decode(42), TypeError);
});

test("CborError offsets point at the offending item", () => {
  try {
    decode(bytes("8301021c"));
    assert.fail("no error");
  } catch (e) {
    assert.equal(e.offset, 3);
    assert.match(e.message, /at byte 3/);
  }
});
