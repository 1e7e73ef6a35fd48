#!/bin/bash
# Builds the Debian package (source and binary) from a copy of the tree,
# checks it with lintian, installs it on this machine and runs what it
# installed. Leaves the packages in build-deb/ and nothing else in the tree.
#
# The build runs in a temporary copy of the files git knows (tracked, and
# new files not ignored) so that debian/.debhelper, obj-* and the packages
# never land in the working tree and build/ and build-sanitize/ are not
# touched. Run as root (CI), it builds as the user nobody, as Debian's build
# daemons build as an ordinary user: that proves the tests the build runs
# need no root, and keeps them off loop devices. Installing needs root; as
# another user the script stops after lintian.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${SKIP_DEPS:-0}" = 1 ] || bash scripts/install-deps.sh

out=$PWD/build-deb
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
deb=bmapscan_${version}_${arch}.deb

work=$(mktemp -d "${TMPDIR:-/tmp}/bmapscan-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/bmapscan-$version
mkdir "$src"
# A file deleted but not yet committed is still listed: skip it.
git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done |
        tar --null -T - -cf - | tar -xf - -C "$src"

as_builder=()
if [ "$(id -u)" = 0 ]; then
        chown -R nobody:nogroup "$work"
        as_builder=(runuser -u nobody --)
fi

rm -rf "$out"
mkdir -p "$out"
echo "=== building bmapscan $version (log: build-deb/build.log)"
if ! (cd "$src" && "${as_builder[@]}" env HOME="$work" dpkg-buildpackage -us -uc -j"$(nproc)") >"$out/build.log" 2>&1; then
        tail -n 60 "$out/build.log"
        echo "package: dpkg-buildpackage failed; the whole log is build-deb/build.log" >&2
        exit 1
fi

echo "=== lintian"
(cd "$work" && "${as_builder[@]}" env HOME="$work" lintian --fail-on error --info "bmapscan_${version}_${arch}.changes")
# What dpkg-buildpackage made beside the source directory: the packages,
# the source, .changes and .buildinfo.
find "$work" -maxdepth 1 -type f -exec cp -t "$out" {} +

if [ "$(id -u)" != 0 ]; then
        echo "package: built build-deb/$deb; install it as root: apt-get install ./build-deb/$deb"
        exit 0
fi

echo "=== installing build-deb/$deb"
# --reinstall: a rebuild of the same version must replace what is installed.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$out/$deb" >"$out/install.log" 2>&1 || {
        cat "$out/install.log"
        echo "package: apt-get install $out/$deb failed" >&2
        exit 1
}
installed=$(dpkg-query -W -f='${Version}' bmapscan)
[ "$installed" = "$version" ] || {
        echo "package: bmapscan $installed is installed, not the $version just built" >&2
        exit 1
}
echo "=== the installed tool"
got=$(/usr/bin/bmapscan --version)
echo "$got"
[ "$got" = "bmapscan $version" ] || {
        echo "package: /usr/bin/bmapscan --version says '$got', the package is $version: make debian/changelog and meson.build agree" >&2
        exit 1
}
status=0
man -w bmapscan bmapscan-copy || {
        echo "package: man -w finds no bmapscan(1) or bmapscan-copy(1): the package must install the man pages (mandir/man1)" >&2
        status=1
}
# Each shell finds a completion by the command's name, so these names are fixed.
for f in /usr/share/bash-completion/completions/bmapscan /usr/share/zsh/vendor-completions/_bmapscan \
        /usr/share/fish/vendor_completions.d/bmapscan.fish; do
        if dpkg-query -S "$f" >/dev/null 2>&1; then
                echo "$f"
        else
                echo "package: the package does not install $f: meson install must put the completion there" >&2
                status=1
        fi
done
[ $status = 0 ] || exit 1
echo "package: build-deb/$deb built, lintian-clean and installed"
