// The host-independent part of Shoal's JavaScript SDK: op definitions, the registry, and the
// dispatch of `describe` and `run`. `shoal.js` wires it to the component's imports; tests
// (and `testing.js`) wire it to fake ones. See README.md.

import { decode, encode } from "./cbor.js";
import { isUserEvent, metadataEntries } from "./events.js";

export { AssetMaterialization, AssetObservation, ExpectationResult, MetadataValue } from "./events.js";

/** The `shoal:op` interface version this SDK implements. */
export const WIT_VERSION = "0.3.0";

const NAME = /^[A-Za-z0-9_]+$/;
const MAX_KEY_BYTES = 128;

// ---------------------------------------------------------------------------------------------
// Errors

/** Base of the errors that map to the WIT `op-error` variant. */
export class OpError extends Error {
  constructor(message, tag) {
    super(message);
    this.name = new.target.name;
    this.tag = tag;
  }
}

/** The op failed; retrying will not help (`op-error::failed`). */
export class Failure extends OpError {
  constructor(message = "op failed") {
    super(message, "failed");
  }
}

/** A transient failure: the host retries the step if its retry policy allows
 * (`op-error::retry-requested`). */
export class RetryRequested extends OpError {
  constructor(message = "retry requested") {
    super(message, "retry-requested");
  }
}

/** An input or the config does not have the shape the op expects (`op-error::bad-input`). */
export class BadInput extends OpError {
  constructor(message) {
    super(message, "bad-input");
  }
}

/** The host rejected a dynamic output (bad or duplicate mapping key, undeclared output, ...).
 * The step fails with the host's message whatever the op does next. */
export class YieldRejected extends Failure {}

/** `ctx.logEvent` or `ctx.addOutputMetadata` could not record what it was given (the host
 * refused it, or it names an output or mapping key it cannot go to). Unlike a rejected yield,
 * the op may catch it and go on. */
export class EventRejected extends Failure {}

// ---------------------------------------------------------------------------------------------
// Declarations: In, Out, DynamicOut

function schemaText(schema, what) {
  if (schema === undefined || schema === null) return null;
  if (typeof schema === "string") {
    try {
      JSON.parse(schema);
    } catch (e) {
      throw new TypeError(`${what}: schema is a string but not JSON text: ${e.message}`);
    }
    return schema;
  }
  if (typeof schema !== "object" && typeof schema !== "boolean") {
    throw new TypeError(`${what}: schema must be a JSON Schema (a plain object or boolean), got ${typeof schema}`);
  }
  return JSON.stringify(schema);
}

// These five work with or without `new`: `Out({ ... })` like Dagster, or `new Out({ ... })`.

function specOptions(opts, known) {
  if (opts === undefined || opts === null) return {};
  if (typeof opts === "string") return { description: opts };
  if (typeof opts !== "object" || Array.isArray(opts)) throw new TypeError(`expected a description or { ${known.join(", ")} }`);
  for (const k of Object.keys(opts)) {
    if (!known.includes(k)) throw new TypeError(`unknown field \`${k}\` (known: ${known.join(", ")})`);
  }
  return opts;
}

/** An input declaration: `In({ description, schema })`, or `In("description")`. */
export function In(opts) {
  if (!new.target) return new In(opts);
  const o = specOptions(opts, ["description", "schema"]);
  this.description = o.description ?? "";
  this.schema = o.schema;
}

/** A (non-dynamic) output declaration: `Out({ description, schema, isRequired })`.
 * `isRequired: false` lets the op leave the output out (not yielding its `Output`, or
 * returning `undefined` for it); the steps that read it are then skipped, not failed. */
export function Out(opts) {
  if (!new.target) return new Out(opts);
  initOut(this, opts, false);
}

function initOut(out, opts, dynamic) {
  const o = specOptions(opts, ["description", "schema", "isRequired"]);
  if (o.isRequired !== undefined && typeof o.isRequired !== "boolean") {
    throw new TypeError(`isRequired is a boolean, not ${JSON.stringify(o.isRequired)}`);
  }
  out.description = o.description ?? "";
  out.schema = o.schema;
  out.dynamic = dynamic;
  out.isRequired = o.isRequired ?? true;
}

/** A dynamic output declaration: `DynamicOut({ description, schema, isRequired })` (the
 * schema of each element). A job must `map` or `collect` it. With `isRequired: false`, an op
 * that yields no value for it skips what maps or collects it (a required one gives zero
 * clones and an empty collect). */
export function DynamicOut(opts) {
  if (!new.target) return new DynamicOut(opts);
  initOut(this, opts, true);
}
DynamicOut.prototype = Object.create(Out.prototype, { constructor: { value: DynamicOut, writable: true, configurable: true } });

/** The last argument of Output and DynamicOutput: an output name, or `{ outputName, metadata }`. */
function outputOptions(opts, what) {
  if (opts === undefined || opts === null || typeof opts === "string") return { outputName: opts ?? undefined, metadata: [] };
  if (typeof opts !== "object" || Array.isArray(opts)) throw new TypeError(`${what}: expected an output name or { outputName, metadata }`);
  for (const k of Object.keys(opts)) {
    if (k !== "outputName" && k !== "metadata") throw new TypeError(`${what}: unknown field \`${k}\` (known: outputName, metadata)`);
  }
  return { outputName: opts.outputName, metadata: metadataEntries(opts.metadata) };
}

/** Dagster's `DynamicOutput(value, mapping_key, output_name, metadata)`: one element of a
 * dynamic output, `new DynamicOutput(value, key)`, `new DynamicOutput(value, key, "name")` or
 * `new DynamicOutput(value, key, { outputName, metadata: { rows: 3 } })` (the metadata is
 * attached before the value reaches the host). The mapping key must match `^[A-Za-z0-9_]+$`
 * (at most 128 bytes) and be unique per output; `outputName` may be left out when the op has
 * one dynamic output. */
export function DynamicOutput(value, mappingKey, options) {
  if (!new.target) return new DynamicOutput(value, mappingKey, options);
  const o = outputOptions(options, "DynamicOutput");
  this.value = value;
  this.mappingKey = mappingKey;
  this.outputName = o.outputName;
  this.metadata = o.metadata;
}

/** Dagster's `Output(value, output_name, metadata)`: the value of a non-dynamic output,
 * yielded from a generator op (or returned, for the single output `result`):
 * `new Output(v, "name")` or `new Output(v, { outputName, metadata })`. */
export function Output(value, options) {
  if (!new.target) return new Output(value, options);
  const o = outputOptions(options, "Output");
  this.value = value;
  this.outputName = o.outputName ?? "result";
  this.metadata = o.metadata;
}

// ---------------------------------------------------------------------------------------------
// Op definitions and the registry

/** Every op defined with `op(...)`, in definition order: what `component` describes. */
export const registry = [];

function declared(spec, Kind, what) {
  if (spec instanceof Kind) return spec;
  try {
    return new Kind(spec);
  } catch (e) {
    throw new TypeError(`${what}: expected ${Kind.name}(...), a description or { description, schema }: ${e.message}`);
  }
}

function checkName(name, what) {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(`${what} ${JSON.stringify(name)} must match ^[A-Za-z0-9_]+$`);
  }
}

/** An op: its WIT description and the function that runs it. Made by `op(...)`. */
export class OpDefinition {
  constructor(def, fn) {
    if (typeof def === "function" && fn === undefined) {
      fn = def;
      def = {};
    }
    if (typeof def === "string") def = { name: def };
    if (def === null || typeof def !== "object") throw new TypeError("op(definition, fn): definition must be an object");
    if (typeof fn !== "function") throw new TypeError("op(definition, fn): fn must be a function");
    const known = ["name", "description", "ins", "out", "configSchema"];
    for (const k of Object.keys(def)) {
      if (!known.includes(k)) throw new TypeError(`op definition: unknown field \`${k}\` (known: ${known.join(", ")})`);
    }
    const name = def.name ?? fn.name;
    checkName(name, "op name");
    const what = `op \`${name}\``;
    this.name = name;
    this.fn = fn;
    this.description = def.description ?? "";
    if (typeof this.description !== "string") throw new TypeError(`${what}: description must be a string`);

    // Inputs: ["a", "b"] or { a: In(...), b: "description" }.
    let ins = def.ins ?? [];
    if (Array.isArray(ins)) {
      if (new Set(ins).size !== ins.length) throw new TypeError(`${what}: an input is declared twice`);
      ins = Object.fromEntries(ins.map((n) => [n, new In()]));
    }
    if (typeof ins !== "object") throw new TypeError(`${what}: ins must be an array of names or an object of In(...)`);
    this.inputs = Object.entries(ins).map(([n, spec]) => {
      checkName(n, `${what}: input name`);
      const d = declared(spec, In, `${what}: input \`${n}\``);
      return { name: n, description: d.description, schema: schemaText(d.schema, `${what}: input \`${n}\``) };
    });
    this.inputNames = new Set(this.inputs.map((i) => i.name));

    // Outputs: one `result` (Out, or DynamicOut for a generator function), or { name: Out | DynamicOut }.
    let out = def.out;
    if (out === undefined) out = isGeneratorFunction(fn) ? new DynamicOut() : new Out();
    if (out instanceof Out) out = { result: out };
    if (typeof out !== "object" || out === null || Array.isArray(out)) {
      throw new TypeError(`${what}: out must be Out(...), DynamicOut(...) or an object of them`);
    }
    this.outputs = Object.entries(out).map(([n, spec]) => {
      checkName(n, `${what}: output name`);
      if (!(spec instanceof Out)) throw new TypeError(`${what}: output \`${n}\` must be Out(...) or DynamicOut(...)`);
      return { name: n, dynamic: spec.dynamic, description: spec.description, schema: schemaText(spec.schema, `${what}: output \`${n}\``), required: spec.isRequired };
    });
    if (this.outputs.length === 0) throw new TypeError(`${what}: declares no output`);
    this.single = this.outputs.length === 1 && this.outputs[0].name === "result";
    this.configSchema = schemaText(def.configSchema, `${what}: configSchema`);
  }

  /** The WIT `op-info` record. */
  info() {
    return {
      name: this.name,
      description: this.description,
      inputs: this.inputs.map((i) => ({ name: i.name, description: i.description, schema: i.schema })),
      outputs: this.outputs.map((o) => ({ name: o.name, dynamic: o.dynamic, description: o.description, schema: o.schema, required: o.required })),
      configSchema: this.configSchema,
    };
  }
}

function isGeneratorFunction(fn) {
  return Object.prototype.toString.call(fn) === "[object GeneratorFunction]";
}

function isGenerator(v) {
  return v !== null && typeof v === "object" && typeof v.next === "function" && typeof v.return === "function" && typeof v[Symbol.iterator] === "function" && Object.prototype.toString.call(v) === "[object Generator]";
}

/**
 * Defines an op and adds it to `registry` (so `component` describes it).
 *
 *   op({ name, description, ins, out, configSchema }, fn)
 *
 * - `name`: defaults to the function's name.
 * - `ins`: `["a", "b"]` or `{ a: In({ description, schema }), b: "description" }`; `fn`
 *   receives them decoded, by name: `fn(ctx, { a, b })`.
 * - `out`: `Out(...)` (the default), `DynamicOut(...)` (the default for a `function*`), or
 *   `{ name: Out(...) | DynamicOut(...), ... }` for several outputs.
 * - `configSchema`: a JSON Schema of the op's config table (a plain object).
 */
export function op(def, fn) {
  const d = new OpDefinition(def, fn);
  if (registry.some((o) => o.name === d.name)) throw new TypeError(`op \`${d.name}\` is defined twice`);
  registry.push(d);
  return d;
}

// ---------------------------------------------------------------------------------------------
// The host seam: `shoal.js` installs the component's imports here.

/** What the SDK calls on the host: `log(level, message)`, `yieldOutput(dynamicValue)` (the WIT
 * record), `logEvent(event)` (an event of events.js) and `addOutputMetadata(output, mappingKey,
 * entries)` (`[[label, MetadataValue]]`, `mappingKey` null for a non-dynamic output); the last
 * three throw, with the host's message, when the host refuses. */
function noHost() {
  throw new Error("no Shoal host: import the SDK through shoal.js inside a component, or use testing.js");
}
let installedHost = { log: noHost, yieldOutput: noHost, logEvent: noHost, addOutputMetadata: noHost };

/** Installs the host imports `component` uses; returns the one it replaces. */
export function setHost(host) {
  const previous = installedHost;
  installedHost = host;
  return previous;
}

// ---------------------------------------------------------------------------------------------
// Context

/** `ctx.log`: log lines, attributed by the host to the step. Each method joins its arguments
 * with spaces (non-strings as JSON) into one message. */
class Log {
  #run;
  constructor(run) {
    this.#run = run;
  }
  trace(...parts) {
    this.#run.log("trace", message(parts));
  }
  debug(...parts) {
    this.#run.log("debug", message(parts));
  }
  info(...parts) {
    this.#run.log("info", message(parts));
  }
  warn(...parts) {
    this.#run.log("warn", message(parts));
  }
  error(...parts) {
    this.#run.log("error", message(parts));
  }
}

function message(parts) {
  if (parts.length === 1 && typeof parts[0] === "string") return parts[0];
  return parts.map((p) => (typeof p === "string" ? p : safeString(p))).join(" ");
}

/** What an op's function receives first: Dagster's `context`. */
export class OpContext {
  #run;
  #log = null;
  constructor(opName, raw, opConfig, run) {
    this.#run = run;
    /** The op's name in its component. */
    this.opName = opName;
    /** The run this step belongs to. */
    this.runId = raw.runId;
    /** `op` for a plain step, `op[key]` for a clone, `op[a][b]` when nested. */
    this.stepKey = raw.stepKey;
    /** Mapping keys of this clone, outermost first; empty when the step is not mapped. */
    this.mappingKeys = raw.mappingKeys;
    /** 1 on the first attempt, 2 on the first retry, ... */
    this.attempt = raw.attempt;
    /** The op's config table, decoded (an empty object when the job gives none). */
    this.opConfig = opConfig;
    /** The step's tags (the job's, overridden by the op's, by the run's), read-only. */
    this.tags = Object.freeze(Object.fromEntries((raw.tags ?? []).map((t) => [t.key, t.value])));
  }

  /** The value of tag `key`, or null when the step has no such tag (Dagster's `get_tag`). */
  getTag(key) {
    return this.hasTag(key) ? this.tags[key] : null;
  }

  /** Dagster's `has_tag`. */
  hasTag(key) {
    return Object.prototype.hasOwnProperty.call(this.tags, key);
  }

  /** Dagster's `add_output_metadata`: attaches `metadata` (an object of label to value) to an
   * output, the only one when `outputName` is not given; for a dynamic output, to its value
   * with `mappingKey`, before that value is yielded. Adds to earlier metadata; a label given
   * again replaces its value. Throws EventRejected when it cannot be attached. */
  addOutputMetadata(metadata, { outputName, mappingKey } = {}) {
    this.#run.addMetadata(outputName, mappingKey, metadataEntries(metadata));
  }

  /** Records `event` (an AssetMaterialization, AssetObservation or ExpectationResult) for the
   * step now. Throws EventRejected when the host refuses it. */
  logEvent(event) {
    if (!isUserEvent(event)) throw new TypeError("logEvent takes an AssetMaterialization, AssetObservation or ExpectationResult");
    this.#run.logEvent(event);
  }

  /** The innermost mapping key (Dagster's `get_mapping_key()`), or null when not mapped. */
  get mappingKey() {
    const keys = this.mappingKeys;
    return keys.length ? keys[keys.length - 1] : null;
  }

  /** 0 on the first attempt, 1 on the first retry, ... (Dagster's `retry_number`). */
  get retryNumber() {
    return this.attempt > 0 ? this.attempt - 1 : 0;
  }

  /** Log lines: `ctx.log.info("...")`, also trace, debug, warn, error. */
  get log() {
    return this.#log ?? (this.#log = new Log(this.#run));
  }

  /** Hands one dynamic output to the host now, like `yield` in a generator op. Throws
   * YieldRejected when the host rejects it. */
  yieldOutput(dynamicOutput) {
    this.#run.emit(dynamicOutput);
  }
}

function safeString(v) {
  if (v instanceof Error) return v.stack ? `${v.name}: ${v.message}\n${v.stack}` : `${v.name}: ${v.message}`;
  try {
    const s = JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x instanceof Uint8Array ? Array.from(x) : x));
    return s === undefined ? String(v) : s;
  } catch {
    return String(v);
  }
}

// ---------------------------------------------------------------------------------------------
// Running one op

function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? (i++, 4) : 3;
  }
  return n;
}

/** The message of a host import's refusal (componentize-qjs throws the `err` payload). */
function hostMessage(e) {
  return e && e.payload !== undefined ? String(e.payload) : errorText(e);
}

function errorText(e) {
  if (e instanceof Error) return e.name && e.name !== "Error" ? `${e.name}: ${e.message}` : e.message;
  return typeof e === "string" ? e : safeString(e);
}

class Run {
  constructor(def, host) {
    this.def = def;
    this.host = host;
    this.values = {}; // non-dynamic output -> encoded value
    this.returned = []; // dynamic values returned at the end
    this.keys = null; // dynamic output -> Set of the keys used, once something is yielded
    this.sent = new Set(); // `output[key]` of the values already handed to the host
    this.rejected = null; // the host's message once it rejected a yield
  }

  /** Checks where metadata goes (the SDK knows the outputs and what was yielded) and hands it
   * to the host. */
  addMetadata(outputName, mappingKey, entries) {
    const outputs = this.def.outputs;
    const names = outputs.map((o) => `\`${o.name}\``).join(", ");
    const reject = (message) => new EventRejected(`op \`${this.def.name}\`: ${message}`);
    if (outputName === undefined || outputName === null) {
      if (outputs.length !== 1) throw reject(`addOutputMetadata needs an outputName: the op has outputs ${names}`);
      outputName = outputs[0].name;
    }
    const o = outputs.find((x) => x.name === outputName);
    if (!o) throw reject(`metadata for output \`${outputName}\`, which is not declared (outputs: ${names})`);
    mappingKey ??= null;
    if (typeof mappingKey === "number") mappingKey = String(mappingKey);
    if (o.dynamic && mappingKey === null) throw reject(`metadata for dynamic output \`${outputName}\` needs the mappingKey of its value`);
    if (!o.dynamic && mappingKey !== null) {
      throw reject(`output \`${outputName}\` is not dynamic: its metadata takes no mappingKey (got ${JSON.stringify(mappingKey)})`);
    }
    if (this.sent.has(`${outputName}[${mappingKey}]`)) {
      throw reject(`metadata for output \`${outputName}\`[${mappingKey}], which was already yielded: attach it before`);
    }
    this.toHost(() => this.host.addOutputMetadata(outputName, mappingKey, entries));
  }

  logEvent(event) {
    this.toHost(() => this.host.logEvent(event));
  }

  /** Calls a host import that may refuse; its refusal as EventRejected. */
  toHost(call) {
    try {
      call();
    } catch (e) {
      throw new EventRejected(hostMessage(e));
    }
  }

  log(level, message) {
    this.host.log(level, message);
  }

  fail(message) {
    return new Failure(`op \`${this.def.name}\`: ${message}`);
  }

  dynamicValue(d, how) {
    if (!(d instanceof DynamicOutput)) {
      const got = d === null ? "null" : Array.isArray(d) ? "an array" : typeof d === "object" ? (d.constructor?.name ?? "an object") : typeof d;
      throw this.fail(`${how} ${got}; a dynamic output is \`new DynamicOutput(value, mappingKey)\``);
    }
    const dynamics = this.def.outputs.filter((o) => o.dynamic);
    let output = d.outputName;
    if (output === undefined || output === null) {
      if (dynamics.some((o) => o.name === "result")) output = "result";
      else if (dynamics.length === 1) output = dynamics[0].name;
      else throw this.fail(`a DynamicOutput needs an output name: this op's dynamic outputs are ${dynamics.map((o) => `\`${o.name}\``).join(", ") || "none"}`);
    }
    if (!dynamics.some((o) => o.name === output)) {
      throw this.fail(`\`${output}\` is not a dynamic output of this op (dynamic outputs: ${dynamics.map((o) => `\`${o.name}\``).join(", ") || "none"})`);
    }
    let key = d.mappingKey;
    if (typeof key === "number" && Number.isSafeInteger(key)) key = String(key);
    if (typeof key !== "string") throw this.fail(`output \`${output}\`: mapping key must be a string, got ${typeof key}`);
    if (!NAME.test(key) || utf8Length(key) > MAX_KEY_BYTES) {
      throw this.fail(`output \`${output}\`: invalid mapping key ${JSON.stringify(key)}: keys must match ^[A-Za-z0-9_]+$ and be at most ${MAX_KEY_BYTES} bytes`);
    }
    if (this.keys === null) this.keys = new Map();
    let used = this.keys.get(output);
    if (!used) this.keys.set(output, (used = new Set()));
    if (used.has(key)) throw this.fail(`output \`${output}\`: duplicate mapping key ${JSON.stringify(key)}`);
    const value = this.encode(d.value, `output \`${output}\`[${key}]`);
    if (d.metadata?.length) this.addMetadata(output, key, d.metadata);
    used.add(key);
    return { output, mappingKey: key, value };
  }

  encode(value, what) {
    try {
      return encode(value);
    } catch (e) {
      throw this.fail(`${what}: ${e.message}`);
    }
  }

  emit(d) {
    if (this.rejected !== null) throw new YieldRejected(this.rejected);
    const value = this.dynamicValue(d, "yielded");
    try {
      this.host.yieldOutput(value);
    } catch (e) {
      this.rejected = hostMessage(e);
      throw new YieldRejected(this.rejected);
    }
    this.sent.add(`${value.output}[${value.mappingKey}]`);
  }

  setValue(name, value, how, metadata = []) {
    const o = this.def.outputs.find((x) => x.name === name);
    if (!o) throw this.fail(`${how} output \`${name}\`, which the op does not declare (outputs: ${this.def.outputs.map((x) => `\`${x.name}\``).join(", ")})`);
    if (o.dynamic) {
      if (!Array.isArray(value)) throw this.fail(`dynamic output \`${name}\` must be yielded or returned as an array of DynamicOutput`);
      for (const d of value) {
        if (d instanceof DynamicOutput && d.outputName === undefined) d.outputName = name;
        this.returned.push(this.dynamicValue(d, `returned in \`${name}\``));
      }
      return;
    }
    if (Object.prototype.hasOwnProperty.call(this.values, name)) throw this.fail(`output \`${name}\` was given twice`);
    if (value === undefined && !o.required) return; // an optional output left out
    const encoded = this.encode(value, `output \`${name}\``);
    if (metadata.length) this.addMetadata(name, null, metadata);
    this.values[name] = encoded;
  }

  yielded(item) {
    if (item instanceof Output) this.setValue(item.outputName, item.value, "yielded a value for", item.metadata);
    else this.emit(item);
  }

  returnedValue(r) {
    const def = this.def;
    if (def.single) {
      const o = def.outputs[0];
      if (o.dynamic) {
        if (r !== undefined) this.setValue("result", r, "returned");
      } else if (this.values.result === undefined) {
        if (r instanceof Output) this.setValue(r.outputName, r.value, "returned a value for", r.metadata);
        else this.setValue("result", r === undefined && o.required ? null : r, "returned");
      } else if (r !== undefined) {
        throw this.fail("output `result` was both yielded and returned");
      }
      return;
    }
    if (r === undefined) return;
    if (r === null || typeof r !== "object" || Array.isArray(r) || r instanceof Map) {
      throw this.fail(`an op with several outputs returns an object keyed by output name (or yields Output / DynamicOutput), got ${Array.isArray(r) ? "an array" : r === null ? "null" : typeof r}`);
    }
    for (const [name, value] of Object.entries(r)) this.setValue(name, value, "returned");
  }

  outputs() {
    const values = [];
    for (const o of this.def.outputs) {
      if (o.dynamic) continue;
      const value = this.values[o.name];
      if (value === undefined) {
        if (!o.required) continue; // left out: the host skips what reads it
        throw this.fail(`gave no value for output \`${o.name}\` (declare it Out({ isRequired: false }) to leave it out)`);
      }
      values.push({ name: o.name, value });
    }
    return { values, dynamic: this.returned };
  }
}

function decodeInputs(def, raw) {
  const inputs = {};
  let n = 0;
  for (const nv of raw) {
    const name = nv.name;
    if (!def.inputNames.has(name)) throw new BadInput(`op \`${def.name}\`: input \`${name}\` is not declared`);
    if (Object.prototype.hasOwnProperty.call(inputs, name)) throw new BadInput(`op \`${def.name}\`: input \`${name}\` given twice`);
    let v;
    try {
      v = decode(nv.value);
    } catch (e) {
      throw new BadInput(`op \`${def.name}\`: input \`${name}\`: ${e.message}`);
    }
    if (name === "__proto__") Object.defineProperty(inputs, name, { value: v, writable: true, enumerable: true, configurable: true });
    else inputs[name] = v;
    n++;
  }
  if (n !== def.inputs.length) {
    const missing = def.inputs.find((i) => !Object.prototype.hasOwnProperty.call(inputs, i.name));
    throw new BadInput(`op \`${def.name}\`: input \`${missing.name}\` is missing`);
  }
  return inputs;
}

function decodeConfig(def, bytes) {
  if (!bytes || bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0xa0)) return {};
  let c;
  try {
    c = decode(bytes);
  } catch (e) {
    throw new BadInput(`op \`${def.name}\`: config: ${e.message}`);
  }
  if (c === null || typeof c !== "object" || Array.isArray(c) || c instanceof Uint8Array) {
    throw new BadInput(`op \`${def.name}\`: config must be a table (a CBOR map)`);
  }
  return c;
}

/** The WIT `op-error` for anything an op throws. */
function toOpError(def, e, host) {
  if (e instanceof OpError) return { tag: e.tag, val: e.message };
  const message = `op \`${def.name}\` threw ${errorText(e)}`;
  try {
    host.log("error", e instanceof Error && e.stack ? `${message}\n${String(e.stack).trimEnd()}` : message);
  } catch {
    // the log budget may be spent; the error still reaches the host
  }
  return { tag: "failed", val: message };
}

/** Runs `def` once. Returns the WIT `outputs` record, or throws a WIT `op-error` value
 * (`{ tag, val }`), as the componentizers expect of a function returning `result<_, _>`. */
export function runOp(def, ctx, rawInputs, host = installedHost) {
  const run = new Run(def, host);
  let gen = null;
  try {
    const opConfig = decodeConfig(def, ctx.config);
    const inputs = decodeInputs(def, rawInputs ?? []);
    const context = new OpContext(def.name, ctx, opConfig, run);
    let r = def.fn(context, inputs);
    if (isGenerator(r)) {
      gen = r;
      for (let step = gen.next(); ; ) {
        if (step.done) {
          r = step.value;
          break;
        }
        let refused = null;
        try {
          run.yielded(step.value);
        } catch (e) {
          if (!(e instanceof EventRejected)) throw e;
          refused = e; // its metadata was refused: raised at the yield, the op may go on
        }
        step = refused === null ? gen.next() : gen.throw(refused);
      }
      gen = null;
    } else if (r && typeof r.then === "function") {
      throw run.fail("returned a Promise: ops are synchronous (the host has no async component model); drop `async`");
    }
    if (run.rejected !== null) throw new YieldRejected(run.rejected);
    run.returnedValue(r);
    return run.outputs();
  } catch (e) {
    if (gen !== null) {
      try {
        gen.return(undefined); // runs the generator's `finally` blocks
      } catch {
        // the first error is the one to report
      }
    }
    // Once the host rejected a value the step fails with its message, whatever the op did next.
    if (run.rejected !== null) throw { tag: "failed", val: run.rejected };
    throw toOpError(def, e, host);
  }
}

/** The exported WIT `op` interface over `ops` (a list of OpDefinition, or a function returning
 * one, read at each call), calling `host` (by default the one `shoal.js` installs). */
export function exportOps(ops = registry, host) {
  const list = () => (typeof ops === "function" ? ops() : ops);
  const h = () => host ?? installedHost;
  return {
    describe() {
      return list().map((d) => d.info());
    },
    run(name, ctx, inputs) {
      const def = list().find((d) => d.name === name);
      if (!def) {
        throw { tag: "failed", val: `this component has no op \`${name}\` (it has ${list().map((d) => `\`${d.name}\``).join(", ") || "none"})` };
      }
      return runOp(def, ctx, inputs, h());
    },
  };
}

/** The WIT `op` interface over every op defined with `op(...)`, in definition order. A
 * component's entry module re-exports it: `export { component as op } from "shoal.js"`. */
export const component = exportOps(registry);
