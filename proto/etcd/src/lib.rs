//! etcd v3.4's client API, generated from the `.proto` files in `vendor/`
//! (see README.md there for where they come from and what was changed).
//!
//! - [`etcdserverpb`]: the services (`KV`, `Watch`, `Lease`, `Cluster`,
//!   `Maintenance`, `Auth`) and their messages, client side only;
//! - [`mvccpb`]: `KeyValue` and `Event`, the stored records;
//! - [`authpb`]: users, roles and permissions, referenced by `etcdserverpb`.
//!
//! etcd's generated module paths (`super::mvccpb`) require the three
//! packages to be siblings, hence one module each at the crate root.

#![allow(clippy::all, clippy::pedantic)]

pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

pub mod authpb {
    tonic::include_proto!("authpb");
}
