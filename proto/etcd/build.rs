//! Compiles etcd's vendored `.proto` files with protox (no system `protoc`),
//! client stubs only: the harness talks to etcd, it never serves its API.

fn main() {
    let files = [
        "etcd/etcdserver/etcdserverpb/rpc.proto",
        "etcd/mvcc/mvccpb/kv.proto",
        "etcd/auth/authpb/auth.proto",
    ];
    println!("cargo:rerun-if-changed=vendor");
    let fds = protox::compile(files, ["vendor"]).expect("etcd's proto files must parse");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(fds)
        .expect("generated code must be written");
}
