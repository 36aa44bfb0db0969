#!/usr/bin/env bash
# Build SeaweedFS's `weed` (the S3 server of the suite's object-store tests) once, from the Go module proxy, into
# the machine's cache outside any clone, so fresh clones and CI reuse it. Needs Go 1.26; about 10 CPU-minutes
# and 230 MB the first time, nothing after. $SPARK_FLOWS_WEED names a binary to use instead.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^WEED_VERSION = "\(.*\)".*/\1/p' spark_flows/testing/s3_server.py)
module=github.com/seaweedfs/seaweedfs
cache="${SPARK_FLOWS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spark_flows}"
target="${SPARK_FLOWS_WEED:-$cache/weed-$version/bin/weed}"

[ -x "$target" ] && exit 0
[ -n "${SPARK_FLOWS_WEED:-}" ] && { echo "build_weed: error: SPARK_FLOWS_WEED=$target is not an executable" >&2; exit 1; }
command -v go >/dev/null || { echo "build_weed: error: Go (1.26) is needed to build the S3 server weed once" >&2; exit 1; }
echo "build_weed: building SeaweedFS weed $version once into $target (Go module proxy; about 10 CPU-minutes)"
# weed's go.mod has replace directives, so `go install module@version` refuses it: build it as the main module
go mod download "$module@$version" || { echo "build_weed: error: could not download $module@$version" >&2; exit 1; }
source_dir=$(go env GOMODCACHE)/$module@$version
mkdir -p "$(dirname "$target")"
started=$SECONDS
(cd "$source_dir" && GOFLAGS="-buildvcs=false -mod=readonly" go build -o "$target.tmp" ./weed) \
  || { rm -f "$target.tmp"; echo "build_weed: error: go build of $module@$version/weed failed (see above)" >&2; exit 1; }
mv "$target.tmp" "$target"
echo "build_weed: built $("$target" version) in $((SECONDS - started))s"
