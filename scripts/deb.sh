#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed with `cargo install` when missing; the
# metadata is [package.metadata.deb] in Cargo.toml) and checks its file list: the binary, every
# man page, the completions, the example config and crontab, the systemd units and the sysusers
# snippet. Prints the .deb's path. Extra arguments go to `cargo deb`; e.g. after a debug build,
# `scripts/deb.sh --profile dev --no-build` checks the packaging in seconds (cargo-deb 3.8 warns
# that it will refuse the dev profile some day; then build with --release first and pass
# --no-build alone).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null; then
  echo "scripts/deb.sh: installing cargo-deb" >&2
  cargo install cargo-deb --locked
fi

deb="$(cargo deb "$@" | tail -n 1)"
list="$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's#^\./#/#')"

expected=(/usr/bin/engage-sync
          /usr/share/bash-completion/completions/engage-sync
          /usr/share/zsh/vendor-completions/_engage-sync
          /usr/share/fish/vendor_completions.d/engage-sync.fish
          /usr/share/doc/engage-sync/examples/engage-sync.toml.example
          /usr/share/doc/engage-sync/examples/crontab
          /usr/share/doc/engage-sync/copyright
          /usr/lib/sysusers.d/engage-sync.conf)
for page in man/*.1; do
  expected+=("/usr/share/man/man1/$(basename "$page")")
done
for unit in examples/systemd/*.service examples/systemd/*.timer; do
  expected+=("/usr/lib/systemd/system/$(basename "$unit")")
done

missing=0
for path in "${expected[@]}"; do
  # Man pages may be shipped gzipped.
  if ! grep -qxF -e "$path" -e "$path.gz" <<<"$list"; then
    echo "scripts/deb.sh: $deb lacks $path" >&2
    missing=1
  fi
done
if [ "$missing" -ne 0 ]; then exit 1; fi
if ! dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -qx './postinst'; then
  echo "scripts/deb.sh: $deb has no postinst (creates the user engage-sync)" >&2
  exit 1
fi
echo "scripts/deb.sh: ${#expected[@]} files checked" >&2
echo "$deb"
