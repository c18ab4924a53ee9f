//! A component that panics while describing its ops: loading it must fail with the guest's
//! panic message, not only a backtrace. Built with the SDK's builder form of `export!`, whose
//! function is where the panic happens.

use shoal_sdk::Op;

fn ops() -> Vec<Op> {
    panic!("the op list is not ready yet");
}

shoal_sdk::export!(fn ops);
