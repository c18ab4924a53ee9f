//! A component that panics while describing its ops: loading it must fail with the guest's
//! panic message, not only a backtrace.

use shoal_sdk::Op;

fn ops() -> Vec<Op> {
    panic!("the op list is not ready yet");
}

shoal_sdk::export!(ops);
