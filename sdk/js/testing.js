// Running ops in plain Node, without a componentizer or a host: a fake host that records log
// lines and yielded values, and `invoke`, which runs one op the way the host would (inputs and
// config CBOR-encoded, outputs decoded). To import a component's entry module (which imports
// the WIT interfaces), load testing/register.js first (see there).

import { decode, encode } from "./cbor.js";
import { component, setHost } from "./core.js";

/** Records what an op sends to the host. `rejectYield(value)` may return a message to reject a
 * yielded value with, as the host does for a bad or duplicate mapping key. */
export class FakeHost {
  constructor({ rejectYield } = {}) {
    this.logs = [];
    this.yields = [];
    this.rejectYield = rejectYield;
  }
  log(level, message) {
    this.logs.push({ level, message });
  }
  yieldOutput(value) {
    const reason = this.rejectYield ? this.rejectYield(value) : undefined;
    if (reason) {
      // What componentize-qjs throws when an import returns `err(reason)`.
      const e = new Error(reason);
      e.payload = reason;
      throw e;
    }
    this.yields.push(value);
  }
}

/**
 * Runs op `name` of `ops` (a WIT `op` interface: `component` by default) once.
 *
 * Returns `{ outputs, dynamic, logs, error }`: `outputs` maps each non-dynamic output to its
 * decoded value; `dynamic` lists `{ output, mappingKey, value }` (decoded), yielded ones first,
 * then returned ones; `error` is the WIT op-error (`{ tag, val }`) when the op failed, else null.
 */
export function invoke(name, { inputs = {}, config = {}, runId = "test-run", stepKey, mappingKeys = [], attempt = 1, host = new FakeHost(), ops = component } = {}) {
  const ctx = {
    runId,
    stepKey: stepKey ?? (mappingKeys.length ? `${name}${mappingKeys.map((k) => `[${k}]`).join("")}` : name),
    mappingKeys,
    attempt,
    config: encode(config),
  };
  const raw = Object.entries(inputs).map(([n, v]) => ({ name: n, value: encode(v) }));
  const previous = setHost(host);
  const decodeDynamic = (d) => ({ output: d.output, mappingKey: d.mappingKey, value: decode(d.value) });
  try {
    const out = ops.run(name, ctx, raw);
    const outputs = {};
    for (const v of out.values) outputs[v.name] = decode(v.value);
    return { outputs, dynamic: [...host.yields, ...out.dynamic].map(decodeDynamic), logs: host.logs, error: null };
  } catch (e) {
    if (e && typeof e === "object" && typeof e.tag === "string" && "val" in e) {
      return { outputs: {}, dynamic: host.yields.map(decodeDynamic), logs: host.logs, error: e };
    }
    throw e;
  } finally {
    setHost(previous);
  }
}
