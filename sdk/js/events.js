// Metadata values and the events an op logs, as Dagster names them (`MetadataValue`,
// `AssetMaterialization`, `AssetObservation`, `ExpectationResult`), and their WIT shapes
// (`shoal:op/events`). Each object is checked when it is made, so a bad label or an empty asset
// key throws in the op's own line.

function str(value, what) {
  if (typeof value !== "string") throw new TypeError(`${what} takes a string, not ${show(value)}`);
  return value;
}

function show(value) {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "string") return JSON.stringify(value);
  if (value === undefined || typeof value === "function" || typeof value === "symbol") return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** One metadata value: `kind` is the WIT variant (`text`, `int`, `float`, `boolean`, `url`,
 * `path`, `json`, `markdown`), `value` what it holds (`json` holds JSON text). Made by the
 * constructors Dagster names (`MetadataValue.int(3)`, `.md("# T")`), or from a plain value
 * wherever metadata is expected (see `of`). */
export class MetadataValue {
  constructor(kind, value) {
    this.kind = kind;
    this.value = value;
    Object.freeze(this);
  }

  static text(text) {
    return new MetadataValue("text", str(text, "MetadataValue.text"));
  }

  /** An integer, as a Number or a BigInt, within ±(2^53-1): the QuickJS component model
   * carries s64 as a Number, so larger ones would lose precision (give them as text). */
  static int(value) {
    if (typeof value === "number" ? !Number.isInteger(value) : typeof value !== "bigint") {
      throw new TypeError(`MetadataValue.int takes an integer, not ${show(value)}`);
    }
    const n = Number(value);
    if (!Number.isSafeInteger(n) || BigInt(n) !== BigInt(value)) {
      throw new RangeError(`MetadataValue.int: ${show(value)} is past ±(2^53-1); give it as MetadataValue.text`);
    }
    return new MetadataValue("int", n);
  }

  static float(value) {
    if (typeof value !== "number") throw new TypeError(`MetadataValue.float takes a number, not ${show(value)}`);
    if (!Number.isFinite(value)) throw new RangeError(`MetadataValue.float: ${value} is not finite (JSON has no NaN)`);
    return new MetadataValue("float", value);
  }

  static bool(value) {
    if (typeof value !== "boolean") throw new TypeError(`MetadataValue.bool takes a boolean, not ${show(value)}`);
    return new MetadataValue("boolean", value);
  }

  static url(url) {
    return new MetadataValue("url", str(url, "MetadataValue.url"));
  }

  static path(path) {
    return new MetadataValue("path", str(path, "MetadataValue.path"));
  }

  /** `data` (an object, array or any JSON value) as JSON text. */
  static json(data) {
    let text;
    try {
      text = JSON.stringify(data);
    } catch (e) {
      throw new TypeError(`MetadataValue.json: not JSON: ${e.message}`);
    }
    if (text === undefined) throw new TypeError(`MetadataValue.json: ${show(data)} is not JSON`);
    return new MetadataValue("json", text);
  }

  static md(markdown) {
    return new MetadataValue("markdown", str(markdown, "MetadataValue.md"));
  }

  /** A plain value as its natural variant: string text, boolean boolean, an integral Number or
   * a BigInt int (see `int`), another Number float, null, an array or a plain object json; a
   * MetadataValue as it is. */
  static of(value) {
    if (value instanceof MetadataValue) return value;
    switch (typeof value) {
      case "string":
        return MetadataValue.text(value);
      case "boolean":
        return MetadataValue.bool(value);
      case "bigint":
        return MetadataValue.int(value);
      case "number":
        return Number.isSafeInteger(value) ? MetadataValue.int(value) : MetadataValue.float(value);
    }
    if (value === null || Array.isArray(value) || Object.getPrototypeOf(value) === Object.prototype) {
      return MetadataValue.json(value);
    }
    throw new TypeError(`no metadata value for ${show(value)}: use a string, number, boolean, array, plain object, or MetadataValue.*`);
  }
}

/** `metadata` (an object of label to value, or undefined) as `[[label, MetadataValue]]`. */
export function metadataEntries(metadata) {
  if (metadata === undefined || metadata === null) return [];
  if (typeof metadata !== "object" || Array.isArray(metadata) || metadata instanceof MetadataValue) {
    throw new TypeError(`metadata is an object of label to value, not ${show(metadata)}`);
  }
  return Object.entries(metadata).map(([label, value]) => {
    if (label === "") throw new TypeError("a metadata label must not be empty");
    return [label, MetadataValue.of(value)];
  });
}

function optionalString(value, what) {
  if (value !== undefined && value !== null && typeof value !== "string") {
    throw new TypeError(`${what} is a string, not ${show(value)}`);
  }
  return value ?? null;
}

function known(fields, names, what) {
  if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
    throw new TypeError(`${what} takes { ${names.join(", ")} }, not ${show(fields)}`);
  }
  for (const k of Object.keys(fields)) {
    if (!names.includes(k)) throw new TypeError(`${what}: unknown field \`${k}\` (known: ${names.join(", ")})`);
  }
}

function assetKey(key) {
  const path = typeof key === "string" ? [key] : key;
  if (!Array.isArray(path) || path.length === 0 || !path.every((p) => typeof p === "string" && p !== "")) {
    throw new TypeError(`an asset key is a non-empty string or array of them, not ${show(key)}`);
  }
  return [...path];
}

const ASSET_FIELDS = ["assetKey", "description", "partition", "metadata"];

function initAsset(event, fields, what) {
  known(fields, ASSET_FIELDS, what);
  event.assetKey = assetKey(fields.assetKey);
  event.description = optionalString(fields.description, `${what}: description`);
  event.partition = optionalString(fields.partition, `${what}: partition`);
  event.metadata = Object.fromEntries(metadataEntries(fields.metadata));
}

// These three work with or without `new`, like Out(...).

/** The op wrote (a partition of) an asset: `AssetMaterialization({ assetKey: ["db",
 * "orders"], description, partition, metadata: { rows: 3 } })`. Recorded as
 * `ASSET_MATERIALIZATION`. */
export function AssetMaterialization(fields) {
  if (!new.target) return new AssetMaterialization(fields);
  initAsset(this, fields, "AssetMaterialization");
}

/** The op looked at an asset without writing it. Recorded as `ASSET_OBSERVATION`. */
export function AssetObservation(fields) {
  if (!new.target) return new AssetObservation(fields);
  initAsset(this, fields, "AssetObservation");
}

/** The outcome of a data quality check: `ExpectationResult({ success, label, description,
 * metadata })`. Recorded as `STEP_EXPECTATION_RESULT`. Unlike Dagster, the label is required:
 * it names the check. */
export function ExpectationResult(fields) {
  if (!new.target) return new ExpectationResult(fields);
  known(fields, ["success", "label", "description", "metadata"], "ExpectationResult");
  if (typeof fields.success !== "boolean") throw new TypeError(`ExpectationResult: success is a boolean, not ${show(fields.success)}`);
  if (typeof fields.label !== "string" || fields.label === "") {
    throw new TypeError(`ExpectationResult: label is a non-empty string, not ${show(fields.label)}`);
  }
  this.success = fields.success;
  this.label = fields.label;
  this.description = optionalString(fields.description, "ExpectationResult: description");
  this.metadata = Object.fromEntries(metadataEntries(fields.metadata));
}

/** True for the objects `ctx.logEvent` takes. */
export function isUserEvent(event) {
  return event instanceof AssetMaterialization || event instanceof AssetObservation || event instanceof ExpectationResult;
}

// ---------------------------------------------------------------------------------------------
// WIT shapes (what `shoal.js` hands the component's `shoal:op/events` imports)

/** `[[label, MetadataValue]]` as WIT `metadata-entry` records. */
export function witEntries(entries) {
  return entries.map(([label, v]) => ({ label, value: { tag: v.kind, val: v.value } }));
}

/** An event of this module as the WIT `user-event` variant. */
export function witEvent(event) {
  const metadata = witEntries(Object.entries(event.metadata));
  if (event instanceof ExpectationResult) {
    return { tag: "expectation-result", val: { success: event.success, label: event.label, description: event.description, metadata } };
  }
  const val = { assetKey: event.assetKey, description: event.description, partition: event.partition, metadata };
  return { tag: event instanceof AssetMaterialization ? "asset-materialization" : "asset-observation", val };
}
