//! `grid-loadgen`: the load generator (work in progress in this commit).
fn main() {}
