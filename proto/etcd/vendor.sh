#!/bin/sh
# Re-creates vendor/ from an etcd checkout: the three .proto files of the
# tag below with the gogoproto and google.api.http imports and options
# removed (they steer Go code generation and the HTTP gateway only; the
# messages, fields, numbers and services are untouched, so the wire format is
# etcd's). Usage: proto/etcd/vendor.sh /path/to/etcd.git
set -eu
repo=$1
tag=v3.4.23
here=$(cd "$(dirname "$0")" && pwd)
strip() {
	# Drop the two imports, every `option (gogoproto.X) = ...;` line, and
	# every multi-line `option (google.api.http) = { ... };` block.
	awk '
		/^import "gogoproto\/gogo.proto";/ { next }
		/^import "google\/api\/annotations.proto";/ { next }
		/^\/\/ for grpc-gateway$/ { next }
		/^option \(gogoproto\./ { next }
		/option \(google\.api\.http\) = \{/ { skip = 1; next }
		skip && /^ *\};$/ { skip = 0; next }
		skip { next }
		{ print }
	'
}
for f in etcdserver/etcdserverpb/rpc.proto mvcc/mvccpb/kv.proto auth/authpb/auth.proto; do
	mkdir -p "$here/vendor/etcd/$(dirname "$f")"
	git --git-dir="$repo" show "$tag:$f" | strip >"$here/vendor/etcd/$f"
done
git --git-dir="$repo" show "$tag:LICENSE" >"$here/vendor/LICENSE"
