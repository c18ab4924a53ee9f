// Running ops in plain Node, without a componentizer or a host: a fake host that records log
// lines, yielded values, events and output metadata, and `invoke`, which runs one op the way
// the host would (inputs and config CBOR-encoded, outputs decoded). To import a component's entry module (which imports
// the WIT interfaces), load testing/register.js first (see there).

import { decode, encode } from "./cbor.js";
import { component, setHost } from "./core.js";

/** What componentize-qjs throws when an import returns `err(reason)`. */
function refusal(reason) {
  const e = new Error(reason);
  e.payload = reason;
  return e;
}

/** Records what an op sends to the host. `rejectYield(value)` may return a message to reject a
 * yielded value with, as the host does for a bad or duplicate mapping key; `refuse(thing)`,
 * given each event and each `{ outputName, mappingKey, metadata }`, a message to refuse it
 * with. */
export class FakeHost {
  constructor({ rejectYield, refuse } = {}) {
    this.logs = [];
    this.yields = [];
    this.events = [];
    this.metadata = new Map(); // `output[key]` -> { label: MetadataValue }
    this.rejectYield = rejectYield;
    this.refuse = refuse;
  }
  log(level, message) {
    this.logs.push({ level, message });
  }
  yieldOutput(value) {
    const reason = this.rejectYield ? this.rejectYield(value) : undefined;
    if (reason) throw refusal(reason);
    this.yields.push(value);
  }
  check(thing) {
    const reason = this.refuse ? this.refuse(thing) : undefined;
    if (reason) throw refusal(reason);
  }
  logEvent(event) {
    this.check(event);
    this.events.push(event);
  }
  addOutputMetadata(outputName, mappingKey, entries) {
    const metadata = Object.fromEntries(entries);
    this.check({ outputName, mappingKey, metadata });
    const key = `${outputName}[${mappingKey}]`;
    this.metadata.set(key, { ...this.metadata.get(key), ...metadata });
  }
  /** The metadata attached to an output (to its value with `mappingKey`, for a dynamic one):
   * `{ label: MetadataValue }`, empty when there is none. */
  outputMetadata(outputName = "result", mappingKey = null) {
    return { ...this.metadata.get(`${outputName}[${mappingKey}]`) };
  }
}

/**
 * Runs op `name` of `ops` (a WIT `op` interface: `component` by default) once.
 *
 * Returns `{ outputs, dynamic, logs, events, outputMetadata, error }`: `outputs` maps each
 * non-dynamic output to its decoded value (an optional output the op left out is not there);
 * `dynamic` lists `{ output, mappingKey, value }` (decoded), yielded ones first, then returned
 * ones; `events` the events the op logged; `outputMetadata(outputName, mappingKey)` the
 * metadata attached to an output; `error` is the WIT op-error (`{ tag, val }`) when the op
 * failed, else null. `tags` is an object of the step's tags.
 */
export function invoke(name, { inputs = {}, config = {}, tags = {}, runId = "test-run", stepKey, mappingKeys = [], attempt = 1, host = new FakeHost(), ops = component } = {}) {
  const ctx = {
    runId,
    stepKey: stepKey ?? (mappingKeys.length ? `${name}${mappingKeys.map((k) => `[${k}]`).join("")}` : name),
    mappingKeys,
    attempt,
    config: encode(config),
    tags: Object.entries(tags)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => ({ key, value })),
  };
  const raw = Object.entries(inputs).map(([n, v]) => ({ name: n, value: encode(v) }));
  const previous = setHost(host);
  const decodeDynamic = (d) => ({ output: d.output, mappingKey: d.mappingKey, value: decode(d.value) });
  const recorded = { logs: host.logs, events: host.events, outputMetadata: (o, k) => host.outputMetadata(o, k) };
  try {
    const out = ops.run(name, ctx, raw);
    const outputs = {};
    for (const v of out.values) outputs[v.name] = decode(v.value);
    return { outputs, dynamic: [...host.yields, ...out.dynamic].map(decodeDynamic), ...recorded, error: null };
  } catch (e) {
    if (e && typeof e === "object" && typeof e.tag === "string" && "val" in e) {
      return { outputs: {}, dynamic: host.yields.map(decodeDynamic), ...recorded, error: e };
    }
    throw e;
  } finally {
    setHost(previous);
  }
}
