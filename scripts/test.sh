#!/usr/bin/env bash
# The README's test command: installs what the test suite needs on a fresh Debian/Ubuntu machine
# that has only the Rust toolchain, then runs the whole suite. Extra arguments go to cargo test
# (e.g. `scripts/test.sh --test integration sftp::`). .ci/run calls this same script after fmt and clippy.
#
# What it installs, only if missing: Debian's openssh-server (the SFTP tests in tests/sftp.rs
# start a real sshd on loopback, see tests/sshd/), with apt-get, through sudo unless run as root.
# Everything else comes from crates.io (SQLite is bundled).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
  echo "scripts/test.sh: installing openssh-server (for tests/sftp.rs)" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
fi

exec cargo test --workspace "$@"
