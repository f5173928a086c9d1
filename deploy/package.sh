#!/usr/bin/env bash
# Builds the Debian package of `kiosk` or `backoffice` from a built binary, with dpkg-deb alone
# (no packaging tool to install): stages the files with their modes in a temporary tree, writes
# DEBIAN/control from the workspace version, and builds with every file owned by root.
# Usage: package.sh kiosk|backoffice BIN_DIR OUT_DIR
#   BIN_DIR: where the binary is (target/release for a release, target/debug in the tests).
#   OUT_DIR: where NAME_VERSION_ARCH.deb is written; its path is printed.
# PACKAGE_COMPRESSION: dpkg-deb's compressor, xz by default; the tests use none, since xz takes
# minutes over an unoptimised binary.
set -euo pipefail

package="${1:?usage: package.sh kiosk|backoffice BIN_DIR OUT_DIR}"
bin_dir="${2:?usage: package.sh kiosk|backoffice BIN_DIR OUT_DIR}"
out_dir="${3:?usage: package.sh kiosk|backoffice BIN_DIR OUT_DIR}"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace=$(dirname "$here")

case "$package" in
    kiosk | backoffice) ;;
    *) echo "package.sh: unknown package '$package' (kiosk, backoffice)" >&2; exit 2 ;;
esac
if [ ! -x "$bin_dir/$package" ]; then
    echo "package.sh: $bin_dir/$package is missing (cargo build --release -p $package)" >&2
    exit 1
fi

# The version of [workspace.package]; Debian's version is the same string.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$workspace/Cargo.toml")
if [ -z "$version" ]; then
    echo "package.sh: no version in $workspace/Cargo.toml [workspace.package]" >&2
    exit 1
fi
arch=$(dpkg --print-architecture)
source_dir="$here/$package"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"

# put MODE SOURCE DESTINATION: one file into the tree, with its directories.
put() {
    install -D -m "$1" "$2" "$root$3"
}

put 0755 "$bin_dir/$package" "/usr/bin/$package"
put 0644 "$source_dir/$package.service" "/usr/lib/systemd/system/$package.service"
put 0644 "$source_dir/sysusers.conf" "/usr/lib/sysusers.d/$package.conf"
put 0644 "$source_dir/copyright" "/usr/share/doc/$package/copyright"
case "$package" in
    kiosk)
        put 0644 "$source_dir/default" /etc/default/kiosk
        put 0644 "$source_dir/kiosk-display.service" /usr/lib/systemd/system/kiosk-display.service
        put 0644 "$source_dir/kiosk.toml.example" /usr/share/doc/kiosk/examples/kiosk.toml
        put 0644 "$here/wireguard/wg0.conf.template" /usr/share/doc/kiosk/examples/wg0.conf
        for runbook in enrolment upgrade wireguard monitoring; do
            put 0644 "$here/$runbook.md" "/usr/share/doc/kiosk/$runbook.md"
        done
        ;;
    backoffice)
        # May hold a PostgreSQL password: readable by root only (systemd reads it as root).
        put 0640 "$source_dir/default" /etc/default/backoffice
        put 0644 "$here/monitoring/prometheus.yml" /usr/share/doc/backoffice/examples/prometheus.yml
        put 0644 "$here/monitoring/alerts.yml" /usr/share/doc/backoffice/examples/alerts.yml
        for runbook in postgresql enrolment monitoring; do
            put 0644 "$here/$runbook.md" "/usr/share/doc/backoffice/$runbook.md"
        done
        ;;
esac

mkdir -p "$root/DEBIAN"
for script in preinst postinst prerm postrm; do
    if [ -f "$source_dir/$script" ]; then
        install -m 0755 "$source_dir/$script" "$root/DEBIAN/$script"
    fi
done
# Every file under /etc is the administrator's once installed: dpkg keeps their changes.
(cd "$root" && find etc -type f -printf '/%p\n' | sort) >"$root/DEBIAN/conffiles"

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
    "$source_dir/control" >"$root/DEBIAN/control"

mkdir -p "$out_dir"
deb="$out_dir/${package}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${PACKAGE_COMPRESSION:-xz}" --build "$root" "$deb" >/dev/null
echo "$deb"
