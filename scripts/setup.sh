#!/usr/bin/env bash
# Installs whatever this machine is missing to build and test Vitals, idempotently, then puts the
# project's tools first on PATH. Sourced by scripts/run and scripts/test.
#
# Tools built here live in $VITALS_TOOLS_DIR (default ~/.cache/vitals/tools) so that fresh clones
# (and CI) reuse them; nothing is downloaded except from the package registries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${VITALS_TOOLS_DIR:-$HOME/.cache/vitals/tools}"
CARGO_LEPTOS_VERSION=0.3.11

# Each step with the time it started, so a slow set-up shows where its minutes went.
say() { printf '\033[1;32m==>\033[0m %s %s\n' "$(date +%T)" "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# System packages: a C toolchain for -sys crates, Node for Playwright, Debian's Chromium.
command -v cc >/dev/null || apt_install build-essential
command -v pkg-config >/dev/null || apt_install pkg-config
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
command -v chromium >/dev/null || apt_install chromium

# Rust: the toolchain named in rust-toolchain.toml, with the WASM target.
if ! command -v rustup >/dev/null; then
  echo "error: rustup is required (it provides the Rust toolchain named in rust-toolchain.toml)" >&2
  exit 1
fi
cd "$ROOT"
rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || { say "rustup target add wasm32-unknown-unknown"; rustup target add wasm32-unknown-unknown; }

mkdir -p "$TOOLS/bin"
export PATH="$TOOLS/bin:$ROOT/end2end/node_modules/.bin:$PATH"

# cargo-leptos, built from the pinned library without its downloaders (tools/cargo-leptos), and
# rebuilt when that entry point changes (it reads Leptos.toml).
CARGO_LEPTOS_STAMP="$(cat tools/cargo-leptos/Cargo.toml tools/cargo-leptos/Cargo.lock tools/cargo-leptos/src/*.rs | sha256sum | cut -c1-16)"
if [ "$("$TOOLS/bin/cargo-leptos" --version 2>/dev/null || true)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ] \
  || [ "$(cat "$TOOLS/cargo-leptos.stamp" 2>/dev/null || true)" != "$CARGO_LEPTOS_STAMP" ]; then
  say "building cargo-leptos $CARGO_LEPTOS_VERSION (about 4 minutes the first time)"
  cargo install --locked --force --path tools/cargo-leptos --root "$TOOLS" \
    --target-dir "$TOOLS/../tools-target"
  echo "$CARGO_LEPTOS_STAMP" > "$TOOLS/cargo-leptos.stamp"
fi

# wasm-bindgen CLI: must equal the wasm-bindgen version in Cargo.lock.
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
if [ "$("$TOOLS/bin/wasm-bindgen" --version 2>/dev/null || true)" != "wasm-bindgen $WB_VERSION" ]; then
  say "installing wasm-bindgen-cli $WB_VERSION (about 2 minutes)"
  cargo install --force wasm-bindgen-cli --version "$WB_VERSION" --root "$TOOLS" \
    --target-dir "$TOOLS/../tools-target"
fi

# Playwright and wasm-opt (binaryen) from npm; never `playwright install`.
if [ ! -x end2end/node_modules/.bin/playwright ] || [ ! -x end2end/node_modules/.bin/wasm-opt ] \
  || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "npm ci (end2end)"
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
fi

# Where the release binary lands (CARGO_TARGET_DIR may be relative or absolute).
case "${CARGO_TARGET_DIR:-target}" in
  /*) VITALS_BIN="${CARGO_TARGET_DIR}/release/vitals" ;;
  *) VITALS_BIN="$ROOT/${CARGO_TARGET_DIR:-target}/release/vitals" ;;
esac
export VITALS_BIN

# What a release build is made from: the sources, the settings and the tools. Two builds of the
# same inputs make the same dashboard. Never fails: what cannot be read is named instead.
release_inputs() {
  echo "$ROOT"
  rustc -vV 2>&1 || echo "rustc: failed"
  cargo-leptos --version 2>&1 || echo "cargo-leptos: failed"
  wasm-bindgen --version 2>&1 || echo "wasm-bindgen: failed"
  wasm-opt --version 2>&1 || echo "wasm-opt: failed"
  cat "$TOOLS/cargo-leptos.stamp" 2>&1 || echo "cargo-leptos stamp: missing"
  cat "${CARGO_HOME:-$HOME/.cargo}/config.toml" 2>/dev/null || true
  env | grep -E '^(RUST|CARGO_BUILD_|CARGO_TARGET_|CARGO_ENCODED_|CARGO_PROFILE_|LEPTOS_)' \
    | LC_ALL=C sort || true
  tree_hashes .cargo rust-toolchain.toml Cargo.toml Cargo.lock Leptos.toml build.rs src style public
}

# The sha256 of every file under the given paths of the project, in a stable order; never fails.
tree_hashes() {
  (cd "$ROOT" && find "$@" -type f -print0 2>&1 | LC_ALL=C sort -z | xargs -0 sha256sum 2>&1) || true
}

# What was built: the binary, and the site it embeds (which is also what the tests' release build
# of the server embeds; a debug `cargo leptos build` rewrites the site but not the binary).
release_outputs() {
  sha256sum <"$VITALS_BIN" 2>&1 | cut -c1-32
  tree_hashes target/site | sha256sum | cut -c1-32
}

# The release build (site + server), skipped when the binary and site were built from these very
# inputs. cargo-leptos writes the whole site anew on every build, and the server embeds the site,
# so each `cargo leptos build` compiles the server again (about 4.5 minutes) even when nothing
# changed (BENCHMARKS.md, "Quick start"): this is what lets `./scripts/run` after `./scripts/test`
# start at once. The fingerprint sits beside the binary as `vitals.inputs`: the inputs' hash and
# the hashes of the binary and the site, so a binary or site built since by other means (a plain
# `cargo build`, a debug `cargo leptos build`) is not taken for these. Delete that file to force a
# build.
release_build() {
  local inputs
  inputs="$(release_inputs | sha256sum | cut -c1-32)"
  if [ -x "$VITALS_BIN" ] && [ -f "$ROOT/target/site/pkg/vitals.wasm" ] \
    && [ "$(cat "$VITALS_BIN.inputs" 2>/dev/null || true)" = "$(echo "$inputs"; release_outputs)" ]; then
    say "release build: up to date (built from these sources, tools and settings)"
    return
  fi
  say "release build (site + server): cargo leptos build --release --precompress"
  rm -f "$VITALS_BIN.inputs"
  cargo leptos build --release --precompress
  { echo "$inputs"; release_outputs; } >"$VITALS_BIN.inputs"
}
