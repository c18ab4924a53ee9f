// Stand-ins for the component's `shoal:op/*` imports outside a component. testing.js's
// `invoke` installs a FakeHost for each call; these only run if something calls the SDK's
// `component` directly, without one.
function outside(what) {
  return () => {
    throw new Error(`shoal:op/${what} called outside a component; use testing.js's invoke`);
  };
}

export const log = outside("log");
export const yieldOutput = outside("emit");
export const logEvent = outside("events");
export const addOutputMetadata = outside("events");
