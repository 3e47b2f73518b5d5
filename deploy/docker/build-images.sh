#!/usr/bin/env bash
# Builds the autotriage images without a registry: static, CGO-free binaries
# are compiled on the host with its Go toolchain, then copied onto `scratch`
# by deploy/docker/Dockerfile. Nothing is pulled.
#
#   deploy/docker/build-images.sh [IMAGE...]
#
# IMAGE is one of: nats fetcher classifier writer freshdesk-sim cli (default:
# all). Each becomes ${IMAGE_PREFIX}/<image>:${VERSION} and :latest.
#
# Environment:
#   VERSION       image tag and version baked into the binaries (default: git describe)
#   REVISION      VCS revision for the OCI label (default: git rev-parse HEAD)
#   IMAGE_PREFIX  repository prefix (default autotriage)
#   DIST          output folder for binaries and build contexts (default dist)
#   SKIP_MISSING  1: skip (with a warning) images whose main package does not
#                 exist or does not compile yet, instead of failing
#   LICENSES      SPDX expression for org.opencontainers.image.licenses
#                 (default NOASSERTION until the project picks a license)
#   GOARCH        target architecture (default: the host's)
#   DOCKER_BUILDKIT  left as set; defaults to 0 (the legacy builder), which
#                 every Docker engine has. The Dockerfile works with both.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
IMAGE_PREFIX=${IMAGE_PREFIX:-autotriage}
DIST=${DIST:-dist}
SKIP_MISSING=${SKIP_MISSING:-0}
LICENSES=${LICENSES:-NOASSERTION}
CREATED=${CREATED:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
SOURCE=${SOURCE:-https://github.com/autotriage/autotriage}
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
export CGO_ENABLED=0 GOOS=linux
GO=${GO:-go}
DOCKER=${DOCKER:-docker}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

case "$DIST" in /*) ;; *) DIST="$root/$DIST" ;; esac
mkdir -p "$DIST/bin" "$DIST/images"

ldflags="-s -w -X github.com/autotriage/autotriage/services/internal/platform.version=${VERSION}"

# image -> binary name, Go package (relative to ./services), title, description
declare -A BIN PKG DESC
BIN[nats]=nats-server;            PKG[nats]=github.com/nats-io/nats-server/v2
BIN[fetcher]=fetcher;             PKG[fetcher]=./fetcher
BIN[classifier]=classifier;       PKG[classifier]=./classifier
BIN[writer]=writer;               PKG[writer]=./writer
BIN[freshdesk-sim]=freshdesk-sim; PKG[freshdesk-sim]=./freshdesk-sim
BIN[cli]=autotriage;              PKG[cli]=./autotriage
DESC[nats]="NATS server with JetStream for autotriage"
DESC[fetcher]="autotriage fetcher: Freshdesk polling and webhooks to the TICKETS stream"
DESC[classifier]="autotriage classifier: TICKETS to PREDICTIONS with the promoted model"
DESC[writer]="autotriage writer: PREDICTIONS applied to Freshdesk, OUTCOMES recorded"
DESC[freshdesk-sim]="Freshdesk API v2 simulator for the autotriage demo and tests"
DESC[cli]="autotriage operator CLI (train, promote, status, replay, dlq)"
ALL=(nats fetcher classifier writer freshdesk-sim cli)

images=("$@")
[ ${#images[@]} -gt 0 ] || images=("${ALL[@]}")

log() { printf '==> %s\n' "$*" >&2; }

gobuild() { # out pkg
	(cd "$root/services" && "$GO" build -trimpath -ldflags "$ldflags" -o "$1" "$2")
}

[ -r "$CA_BUNDLE" ] || { echo "build-images: CA bundle $CA_BUNDLE not found (set CA_BUNDLE)" >&2; exit 1; }

log "healthcheck"
gobuild "$DIST/bin/healthcheck" ./healthcheck

built=() skipped=()
for img in "${images[@]}"; do
	bin=${BIN[$img]:-}
	if [ -z "$bin" ]; then
		echo "build-images: unknown image '$img' (want: ${ALL[*]})" >&2
		exit 2
	fi
	pkg=${PKG[$img]}
	log "$img: go build $pkg"
	if [ "$pkg" != "${pkg#./}" ] && [ -z "$(ls "$root/services/${pkg#./}"/*.go 2>/dev/null)" ]; then
		if [ "$SKIP_MISSING" = 1 ]; then
			log "$img: SKIPPED: services/${pkg#./} has no Go files yet"
			skipped+=("$img")
			continue
		fi
		echo "build-images: services/${pkg#./} has no Go files (SKIP_MISSING=1 skips it)" >&2
		exit 1
	fi
	if ! gobuild "$DIST/bin/$bin" "$pkg"; then
		if [ "$SKIP_MISSING" = 1 ]; then
			log "$img: SKIPPED: $pkg does not compile"
			skipped+=("$img")
			continue
		fi
		exit 1
	fi
	built+=("$img")
done

# Build contexts, then the docker builds in parallel (the legacy builder
# spends most of its time starting one container per step, not on the CPU).
pids=()
for img in "${built[@]}"; do
	bin=${BIN[$img]}
	ctx="$DIST/images/$img"
	rm -rf "$ctx"
	mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/usr/local/bin" "$ctx/data"
	printf 'root:x:0:0:root:/:/sbin/nologin\nautotriage:x:65532:65532:autotriage:/data:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
	printf 'root:x:0:\nautotriage:x:65532:\n' >"$ctx/rootfs/etc/group"
	cp "$CA_BUNDLE" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
	cp "$DIST/bin/$bin" "$DIST/bin/healthcheck" "$ctx/rootfs/usr/local/bin/"
	if [ "$img" = nats ]; then
		mkdir -p "$ctx/rootfs/etc/nats"
		cp "$root/deploy/nats/nats.conf" "$ctx/rootfs/etc/nats/nats.conf"
		cp "$root/deploy/nats/auth.conf" "$ctx/rootfs/etc/nats/auth.conf"
		cp "$root/deploy/nats/nats-tls.conf" "$ctx/rootfs/etc/nats/nats-tls.conf"
	fi
	chmod -R u=rwX,go=rX "$ctx/rootfs"
	chmod 0755 "$ctx/rootfs/usr/local/bin/"*

	licenses=$LICENSES
	[ "$img" = nats ] && licenses=Apache-2.0 # nats-server's own license
	log "$img: docker build ${IMAGE_PREFIX}/$img:$VERSION"
	"$DOCKER" build --pull=false -q \
		-f "$root/deploy/docker/Dockerfile" --target "$img" \
		--label "org.opencontainers.image.title=${IMAGE_PREFIX}/$img" \
		--label "org.opencontainers.image.description=${DESC[$img]}" \
		--label "org.opencontainers.image.version=$VERSION" \
		--label "org.opencontainers.image.revision=$REVISION" \
		--label "org.opencontainers.image.created=$CREATED" \
		--label "org.opencontainers.image.source=$SOURCE" \
		--label "org.opencontainers.image.url=$SOURCE" \
		--label "org.opencontainers.image.vendor=autotriage" \
		--label "org.opencontainers.image.licenses=$licenses" \
		--label "io.autotriage.binary=$bin" \
		-t "${IMAGE_PREFIX}/$img:$VERSION" -t "${IMAGE_PREFIX}/$img:latest" \
		"$ctx" >"$ctx.log" 2>&1 &
	pids+=("$!:$img")
done
failed=0
for p in "${pids[@]}"; do
	if ! wait "${p%%:*}"; then
		echo "build-images: docker build of ${p#*:} failed:" >&2
		grep -v -e 'DEPRECATED: The legacy builder' -e 'BuildKit is currently disabled' -e 'environment-variable\.' "$DIST/images/${p#*:}.log" >&2 || true
		failed=1
	fi
done
[ "$failed" = 0 ] || exit 1

log "built: ${built[*]:-none}${skipped:+; skipped: ${skipped[*]}}"
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep "^${IMAGE_PREFIX}/" | grep ":$VERSION" | sort >&2 || true

# Every image must stay under 30 MB.
for img in "${built[@]}"; do
	size=$("$DOCKER" image inspect --format '{{.Size}}' "${IMAGE_PREFIX}/$img:$VERSION")
	if [ "$size" -ge 30000000 ]; then
		echo "build-images: ${IMAGE_PREFIX}/$img is $size bytes, over the 30 MB budget" >&2
		exit 1
	fi
done
