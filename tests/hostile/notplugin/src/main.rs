//! Not a kuryr6 plugin: the host must refuse it by what it exports, naming
//! the contract versions it runs.
fn main() {
    println!("a command, not a plugin");
}
