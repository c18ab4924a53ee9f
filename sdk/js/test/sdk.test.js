// The SDK without a component: op definitions, describe, and run through the dispatch with a
// fake host (what the componentizer's glue would call).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { decode, encode } from "../cbor.js";
import {
  BadInput,
  DynamicOut,
  DynamicOutput,
  Failure,
  In,
  OpDefinition,
  Out,
  Output,
  RetryRequested,
  YieldRejected,
  component,
  exportOps,
  op,
  registry,
} from "../core.js";
import { FakeHost, invoke } from "../testing.js";

const def = (d, fn) => new OpDefinition(d, fn);
const only = (...defs) => exportOps(defs);

test("op() registers in definition order; describe gives the WIT op-info records", () => {
  op({ name: "first", description: "the first", ins: ["a", "b"] }, () => 0);
  op(
    {
      name: "second",
      ins: { x: In({ description: "an x", schema: { type: "integer" } }), y: "a y" },
      out: { total: Out({ description: "the sum", schema: { type: "number" } }), parts: DynamicOut("each part") },
      configSchema: { type: "object", properties: { n: { type: "integer" } } },
    },
    () => ({ total: 1, parts: [] }),
  );
  op(function* named_from_function() {});
  assert.deepEqual(
    registry.map((d) => d.name),
    ["first", "second", "named_from_function"],
  );
  const described = component.describe();
  assert.deepEqual(described[0], {
    name: "first",
    description: "the first",
    inputs: [
      { name: "a", description: "", schema: null },
      { name: "b", description: "", schema: null },
    ],
    outputs: [{ name: "result", dynamic: false, description: "", schema: null, required: true }],
    configSchema: null,
  });
  assert.deepEqual(described[1], {
    name: "second",
    description: "",
    inputs: [
      { name: "x", description: "an x", schema: '{"type":"integer"}' },
      { name: "y", description: "a y", schema: null },
    ],
    outputs: [
      { name: "total", dynamic: false, description: "the sum", schema: '{"type":"number"}', required: true },
      { name: "parts", dynamic: true, description: "each part", schema: null, required: true },
    ],
    configSchema: '{"type":"object","properties":{"n":{"type":"integer"}}}',
  });
  // A generator function's single output is dynamic by default.
  assert.deepEqual(described[2].outputs, [{ name: "result", dynamic: true, description: "", schema: null, required: true }]);
  // Every schema is JSON text.
  for (const d of described) {
    for (const s of [d.configSchema, ...d.inputs.map((i) => i.schema), ...d.outputs.map((o) => o.schema)]) {
      if (s !== null) JSON.parse(s);
    }
  }
  assert.throws(() => op({ name: "first" }, () => 0), /op `first` is defined twice/);
});

test("definitions are checked when they are made", () => {
  assert.throws(() => def({ name: "bad name" }, () => 0), /must match/);
  assert.throws(() => def({}, () => 0), /op name "" must match/);
  assert.throws(() => def({ name: "x", ins: ["a-b"] }, () => 0), /input name "a-b"/);
  assert.throws(() => def({ name: "x", ins: ["a", "a"] }, () => 0), /declared twice/);
  assert.throws(() => def({ name: "x", inputs: ["a"] }, () => 0), /unknown field `inputs`/);
  assert.throws(() => def({ name: "x", out: {} }, () => 0), /declares no output/);
  assert.throws(() => def({ name: "x", out: { a: 1 } }, () => 0), /must be Out/);
  assert.throws(() => def({ name: "x", configSchema: "{not json" }, () => 0), /not JSON text/);
  assert.throws(() => def({ name: "x", configSchema: 5 }, () => 0), /JSON Schema/);
  assert.throws(() => def({ name: "x", ins: { a: In({ descripton: "typo" }) } }, () => 0), /unknown field `descripton`/);
  assert.throws(() => def({ name: "x" }), /fn must be a function/);
  // Schemas given as JSON text pass through; `true` is a schema too.
  assert.equal(def({ name: "x", configSchema: '{"type":"object"}' }, () => 0).info().configSchema, '{"type":"object"}');
  assert.equal(def({ name: "x", ins: { a: In({ schema: true }) } }, () => 0).info().inputs[0].schema, "true");
  // In, Out, DynamicOut, Output and DynamicOutput work with and without `new`.
  assert.ok(Out() instanceof Out && new Out() instanceof Out);
  assert.ok(DynamicOut() instanceof Out && DynamicOut().dynamic);
  assert.ok(DynamicOutput(1, "a") instanceof DynamicOutput);
  assert.equal(Output(1).outputName, "result");
});

test("a plain op: inputs by name, config, context, log lines", () => {
  let seen;
  const add = def({ name: "add", ins: ["a", "b"] }, (ctx, { a, b }) => {
    seen = {
      opName: ctx.opName,
      runId: ctx.runId,
      stepKey: ctx.stepKey,
      mappingKey: ctx.mappingKey,
      mappingKeys: ctx.mappingKeys,
      attempt: ctx.attempt,
      retryNumber: ctx.retryNumber,
      opConfig: ctx.opConfig,
    };
    ctx.log.info("adding", a, "and", b);
    ctx.log.debug({ a, b });
    ctx.log.warn("w");
    ctx.log.error("e");
    ctx.log.trace("t");
    return a + b + (ctx.opConfig.offset ?? 0);
  });
  const r = invoke("add", { ops: only(add), inputs: { a: 2, b: 40 }, config: { offset: 0.5, nested: { l: [1] } }, runId: "R", mappingKeys: ["x", "y"], attempt: 3 });
  assert.equal(r.error, null);
  assert.deepEqual(r.outputs, { result: 42.5 });
  assert.deepEqual(seen, {
    opName: "add",
    runId: "R",
    stepKey: "add[x][y]",
    mappingKey: "y",
    mappingKeys: ["x", "y"],
    attempt: 3,
    retryNumber: 2,
    opConfig: { offset: 0.5, nested: { l: [1] } },
  });
  assert.deepEqual(r.logs, [
    { level: "info", message: "adding 2 and 40" },
    { level: "debug", message: '{"a":2,"b":40}' },
    { level: "warn", message: "w" },
    { level: "error", message: "e" },
    { level: "trace", message: "t" },
  ]);
  // No config: an empty object; not mapped: mappingKey null.
  const c = def({ name: "c" }, (ctx) => [ctx.opConfig, ctx.mappingKey, ctx.mappingKeys, ctx.retryNumber]);
  assert.deepEqual(invoke("c", { ops: only(c) }).outputs.result, [{}, null, [], 0]);
  // Returning nothing gives null.
  assert.deepEqual(invoke("n", { ops: only(def({ name: "n" }, () => {})) }).outputs, { result: null });
});

test("the raw dispatch: outputs record with CBOR values, as the WIT declares", () => {
  const ops = only(def({ name: "double", ins: ["x"] }, (ctx, { x }) => x * 2));
  const ctx = { runId: "r", stepKey: "double", mappingKeys: [], attempt: 1, config: encode({}) };
  const out = exportOps([def({ name: "double", ins: ["x"] }, (ctx, { x }) => x * 2)], new FakeHost()).run("double", ctx, [{ name: "x", value: encode(21) }]);
  assert.deepEqual(Object.keys(out), ["values", "dynamic"]);
  assert.equal(out.values[0].name, "result");
  assert.ok(out.values[0].value instanceof Uint8Array);
  assert.equal(decode(out.values[0].value), 42);
  // Inputs may arrive as arrays of byte values too.
  assert.equal(invoke("double", { ops, inputs: { x: 1 } }).outputs.result, 2);
  const viaArray = exportOps([def({ name: "d", ins: ["x"] }, (ctx, { x }) => x)], new FakeHost()).run("d", ctx, [{ name: "x", value: [0x05] }]);
  assert.equal(decode(viaArray.values[0].value), 5);
  // An unknown op name.
  assert.throws(() => ops.run("nope", ctx, []), (e) => e.tag === "failed" && /no op `nope` \(it has `double`\)/.test(e.val));
});

test("a generator op: every yield reaches the host at once, in order", () => {
  const host = new FakeHost();
  const seenByOp = [];
  const producer = def({ name: "producer" }, function* (ctx) {
    for (let i = 0; i < 3; i++) {
      yield new DynamicOutput({ i }, `k${i}`);
      // The host has it before the op goes on.
      seenByOp.push(host.yields.length);
    }
  });
  const r = invoke("producer", { ops: only(producer), host });
  assert.equal(r.error, null);
  assert.deepEqual(seenByOp, [1, 2, 3]);
  assert.deepEqual(r.dynamic, [
    { output: "result", mappingKey: "k0", value: { i: 0 } },
    { output: "result", mappingKey: "k1", value: { i: 1 } },
    { output: "result", mappingKey: "k2", value: { i: 2 } },
  ]);
  assert.deepEqual(r.outputs, {});
  // ctx.yieldOutput does the same from a plain function; integer keys become strings.
  const imperative = def({ name: "imperative", out: DynamicOut() }, (ctx) => {
    [10, 20].forEach((v, i) => ctx.yieldOutput(new DynamicOutput(v, i)));
  });
  assert.deepEqual(invoke("imperative", { ops: only(imperative) }).dynamic.map((d) => [d.mappingKey, d.value]), [
    ["0", 10],
    ["1", 20],
  ]);
});

test("a rejected yield stops the op with the host's error", () => {
  const events = [];
  const host = new FakeHost({ rejectYield: (v) => (v.mappingKey === "k1" ? "mapping key `k1` rejected by the host" : undefined) });
  const producer = def({ name: "producer" }, function* () {
    try {
      for (let i = 0; i < 5; i++) {
        events.push(`yield ${i}`);
        yield new DynamicOutput(i, `k${i}`);
      }
    } finally {
      events.push("finally");
    }
    events.push("after the loop");
  });
  const r = invoke("producer", { ops: only(producer), host });
  assert.deepEqual(r.error, { tag: "failed", val: "mapping key `k1` rejected by the host" });
  assert.deepEqual(events, ["yield 0", "yield 1", "finally"]);
  assert.deepEqual(r.dynamic.map((d) => d.mappingKey), ["k0"]);

  // An op that catches the rejection and returns normally still fails with the host's error.
  const stubborn = def({ name: "stubborn", out: DynamicOut() }, (ctx) => {
    try {
      ctx.yieldOutput(new DynamicOutput(1, "k1"));
    } catch (e) {
      assert.ok(e instanceof YieldRejected);
    }
    assert.throws(() => ctx.yieldOutput(new DynamicOutput(2, "k2")), YieldRejected);
    return [];
  });
  const r2 = invoke("stubborn", { ops: only(stubborn), host: new FakeHost({ rejectYield: () => "no more" }) });
  assert.deepEqual(r2.error, { tag: "failed", val: "no more" });
});

test("errors map to the WIT op-error variants", () => {
  const cases = [
    [() => { throw new Failure("it broke"); }, { tag: "failed", val: "it broke" }],
    [() => { throw new RetryRequested("flaky"); }, { tag: "retry-requested", val: "flaky" }],
    [() => { throw new BadInput("no good"); }, { tag: "bad-input", val: "no good" }],
    [() => { throw new RetryRequested(); }, { tag: "retry-requested", val: "retry requested" }],
  ];
  for (const [fn, want] of cases) {
    assert.deepEqual(invoke("x", { ops: only(def({ name: "x" }, fn)) }).error, want);
  }
  // Any other error: failed with its message, the stack in an error log line.
  const r = invoke("x", { ops: only(def({ name: "x" }, () => null.field)) });
  assert.equal(r.error.tag, "failed");
  assert.match(r.error.val, /^op `x` threw TypeError: /);
  assert.equal(r.logs.length, 1);
  assert.equal(r.logs[0].level, "error");
  assert.match(r.logs[0].message, /threw TypeError[\s\S]*\n\s+at /);
  const plain = invoke("x", { ops: only(def({ name: "x" }, () => { throw new Error("plain"); })) });
  assert.deepEqual(plain.error, { tag: "failed", val: "op `x` threw plain" });
  const str = invoke("x", { ops: only(def({ name: "x" }, () => { throw "a string"; })) });
  assert.deepEqual(str.error, { tag: "failed", val: "op `x` threw a string" });
  // A generator that throws after yielding.
  const g = invoke("g", { ops: only(def({ name: "g" }, function* () { yield DynamicOutput(1, "a"); throw new RetryRequested("later"); })) });
  assert.deepEqual(g.error, { tag: "retry-requested", val: "later" });
  assert.equal(g.dynamic.length, 1);
  // Async functions are refused with a reason.
  const a = invoke("a", { ops: only(def({ name: "a" }, async () => 1)) });
  assert.equal(a.error.tag, "failed");
  assert.match(a.error.val, /returned a Promise: ops are synchronous/);
});

test("inputs and config the op cannot read are bad-input", () => {
  const ops = only(def({ name: "x", ins: ["v"] }, (ctx, { v }) => v));
  const ctx = (config) => ({ runId: "r", stepKey: "x", mappingKeys: [], attempt: 1, config });
  const run = (config, inputs) => {
    try {
      ops.run("x", ctx(config), inputs);
      return null;
    } catch (e) {
      return e;
    }
  };
  const ok = encode(1);
  assert.deepEqual(run(encode({}), [{ name: "v", value: new Uint8Array([0x82, 0x01]) }]), {
    tag: "bad-input",
    val: "op `x`: input `v`: unexpected end of input: an array of length 2 but 1 byte(s) left (at byte 0)",
  });
  assert.deepEqual(run(encode([1]), [{ name: "v", value: ok }]), { tag: "bad-input", val: "op `x`: config must be a table (a CBOR map)" });
  assert.match(run(new Uint8Array([0xa1]), [{ name: "v", value: ok }]).val, /^op `x`: config: unexpected end of input/);
  assert.deepEqual(run(encode({}), []), { tag: "bad-input", val: "op `x`: input `v` is missing" });
  assert.deepEqual(run(encode({}), [{ name: "w", value: ok }]), { tag: "bad-input", val: "op `x`: input `w` is not declared" });
  assert.deepEqual(run(encode({}), [{ name: "v", value: ok }, { name: "v", value: ok }]), { tag: "bad-input", val: "op `x`: input `v` given twice" });
  // An empty config (no bytes) is an empty table.
  assert.equal(run(new Uint8Array(0), [{ name: "v", value: ok }]), null);
});

test("several outputs: returned by name, yielded as Output and DynamicOutput", () => {
  const out = { total: Out(), evens: DynamicOut(), odds: DynamicOut() };
  const split = def({ name: "split", ins: ["values"], out }, function* (ctx, { values }) {
    for (const v of values) {
      if (v % 2 === 0) yield new DynamicOutput(v, `e${v}`, "evens");
    }
    yield new Output(values.length, "total");
    return { odds: values.filter((v) => v % 2).map((v) => new DynamicOutput(v, `o${v}`)) };
  });
  const r = invoke("split", { ops: only(split), inputs: { values: [1, 2, 3, 4] } });
  assert.equal(r.error, null);
  assert.deepEqual(r.outputs, { total: 4 });
  // Yielded values first, then returned ones.
  assert.deepEqual(r.dynamic.map((d) => `${d.output}:${d.mappingKey}=${d.value}`), ["evens:e2=2", "evens:e4=4", "odds:o1=1", "odds:o3=3"]);

  const plain = def({ name: "plain", out: { a: Out(), b: Out() } }, () => ({ a: 1, b: "two" }));
  assert.deepEqual(invoke("plain", { ops: only(plain) }).outputs, { a: 1, b: "two" });
  const missing = def({ name: "missing", out: { a: Out(), b: Out() } }, () => ({ a: 1 }));
  assert.deepEqual(invoke("missing", { ops: only(missing) }).error, { tag: "failed", val: "op `missing`: gave no value for output `b` (declare it Out({ isRequired: false }) to leave it out)" });
  const extra = def({ name: "extra", out: { a: Out(), b: Out() } }, () => ({ a: 1, b: 2, c: 3 }));
  assert.match(invoke("extra", { ops: only(extra) }).error.val, /output `c`, which the op does not declare/);
  const twice = def({ name: "twice", out: { a: Out(), b: Out() } }, function* () {
    yield Output(1, "a");
    return { a: 2, b: 3 };
  });
  assert.match(invoke("twice", { ops: only(twice) }).error.val, /output `a` was given twice/);
  const noName = def({ name: "no_name", out: { x: DynamicOut(), y: DynamicOut() } }, function* () {
    yield DynamicOutput(1, "k");
  });
  assert.match(invoke("no_name", { ops: only(noName) }).error.val, /needs an output name: this op's dynamic outputs are `x`, `y`/);
  // One dynamic output (not `result`): the name may be left out.
  const solo = def({ name: "solo", out: { items: DynamicOut(), count: Out() } }, function* () {
    yield DynamicOutput("a", "k");
    return { count: 1 };
  });
  assert.deepEqual(invoke("solo", { ops: only(solo) }).dynamic, [{ output: "items", mappingKey: "k", value: "a" }]);
});

test("Dagster's 'return a list of DynamicOutput'", () => {
  const pages = def({ name: "pages", out: DynamicOut() }, () => ["home", "about"].map((p) => new DynamicOutput(p, p)));
  const r = invoke("pages", { ops: only(pages) });
  assert.deepEqual(r.dynamic, [
    { output: "result", mappingKey: "home", value: "home" },
    { output: "result", mappingKey: "about", value: "about" },
  ]);
  const wrong = def({ name: "wrong", out: DynamicOut() }, () => [1, 2]);
  assert.match(invoke("wrong", { ops: only(wrong) }).error.val, /returned in `result` number; a dynamic output is `new DynamicOutput\(value, mappingKey\)`/);
});

test("mapping keys and values are checked before they reach the host", () => {
  const run = (fn) => invoke("x", { ops: only(def({ name: "x" }, fn)) });
  assert.match(run(function* () { yield DynamicOutput(1, "a b"); }).error.val, /invalid mapping key "a b"/);
  assert.match(run(function* () { yield DynamicOutput(1, "k".repeat(129)); }).error.val, /at most 128 bytes/);
  assert.match(run(function* () { yield DynamicOutput(1, "k"); yield DynamicOutput(2, "k"); }).error.val, /duplicate mapping key "k"/);
  assert.match(run(function* () { yield DynamicOutput(1, null); }).error.val, /mapping key must be a string/);
  assert.match(run(function* () { yield 5; }).error.val, /yielded number; a dynamic output is `new DynamicOutput/);
  assert.match(run(function* () { yield DynamicOutput(() => 1, "k"); }).error.val, /output `result`\[k\]: cannot encode a function as CBOR/);
  assert.match(run(function* () { yield DynamicOutput(1, "k", "other"); }).error.val, /`other` is not a dynamic output of this op/);
  const cyclic = {};
  cyclic.self = cyclic;
  assert.match(invoke("y", { ops: only(def({ name: "y" }, () => cyclic)) }).error.val, /op `y`: output `result`: cannot encode a cyclic value as CBOR at \.self/);
});

test("BigInt and bytes cross the boundary", () => {
  const big = def({ name: "big", ins: ["n", "b"] }, (ctx, { n, b }) => ({ n: n * 2n, len: b.length, b }));
  const r = invoke("big", { ops: only(big), inputs: { n: 2n ** 62n, b: new Uint8Array([1, 2, 3]) } });
  assert.deepEqual(r.outputs.result, { n: 2n ** 63n, len: 3, b: new Uint8Array([1, 2, 3]) });
});

test("sdk/js/wit/op.wit is a byte-identical copy of wit/op.wit", () => {
  const copy = readFileSync(new URL("../wit/op.wit", import.meta.url));
  const original = readFileSync(new URL("../../../wit/op.wit", import.meta.url));
  assert.ok(copy.equals(original), "sdk/js/wit/op.wit differs from wit/op.wit: cp wit/op.wit sdk/js/wit/op.wit");
  assert.match(copy.toString(), /package shoal:op@0\.3\.0;/);
});

test("returning Output(value) from a plain function fills `result`", () => {
  const r = invoke("o", { ops: only(def({ name: "o" }, () => new Output(7))) });
  assert.deepEqual(r.outputs, { result: 7 });
});
