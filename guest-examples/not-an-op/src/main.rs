//! A WASI command: a valid component whose world exports `wasi:cli/run`, not `shoal:op/op`.

fn main() {
    println!("I am not an op");
}
