// `node --import <sdk>/testing/register.js ...`, or `await import(".../register.js")` before
// importing an op module: lets Node load a component's entry module (which imports
// `shoal:op/log@0.3.0`, `shoal:op/emit@0.3.0`, `shoal:op/events@0.3.0`) outside a component. The imports resolve to
// stand-ins; testing.js's `invoke` gives each call a fake host.
import { register } from "node:module";

register("./hooks.js", import.meta.url);
