//! Compiles `proto/*.proto` with protox, a pure-Rust protobuf compiler, so a fresh
//! machine needs no system `protoc`.

fn main() {
    let files = ["raft.proto", "kv.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."]).expect("proto files must parse");
    tonic_prost_build::configure()
        // Entry payloads and values are shared between peers without copying.
        .bytes(".")
        .compile_fds(fds)
        .expect("generated code must be written");
}
