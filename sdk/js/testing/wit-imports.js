// Stand-ins for the component's `shoal:op/log` and `shoal:op/emit` imports outside a component.
// testing.js's `invoke` installs a FakeHost for each call; these only run if something calls the
// SDK's `component` directly, without one.
export function log(level, message) {
  throw new Error(`shoal:op/log called outside a component (${level}: ${message}); use testing.js's invoke`);
}

export function yieldOutput() {
  throw new Error("shoal:op/emit called outside a component; use testing.js's invoke");
}
