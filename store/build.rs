// `sqlx::migrate!` embeds the migrations at compile time: rebuild this
// crate when one is added or changed, not only when its own code changes.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
