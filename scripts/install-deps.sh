#!/bin/bash
# Installs every Debian package the build, the tests, the demo and the
# benchmark need. The one list: README's quick start and .ci/run both use it.
set -euo pipefail

packages=(
        # build
        gcc meson ninja-build pkg-config
        clang libclang-rt-14-dev
        libxml2-dev libssl-dev libblkid-dev libfdisk-dev libext2fs-dev comerr-dev
        libisal-dev liblzma-dev libzstd-dev liblz4-dev liblzo2-dev libbz2-dev libarchive-dev
        libcurl4-openssl-dev libgpgme-dev ca-certificates
        # tests, demo and benchmark
        bmap-tools python3 e2fsprogs util-linux fdisk coreutils dosfstools mtools openssl btrfs-progs
        fuse2fs # a filesystem without O_TMPFILE, for copy's fallback (test-copy-targets)
        gzip pigz bzip2 xz-utils zstd lz4 lzop tar zip isal
        qemu-utils # qemu-img, qemu-io: the qcow2 tests, fuzz seeds and benchmark
        gnupg gpg-agent
        python3-pyftpdlib openssh-server # test-ftp: an FTP server, and an sshd of the test's own for sftp
        cryptsetup-bin squashfs-tools erofs-utils xorriso
        exfatprogs exfat-fuse # exFAT: mkfs/fsck, and a FUSE mount to read files back
        ntfs-3g # mkfs.ntfs, ntfs-3g (FUSE), ntfscat, ntfscluster: the NTFS tests and benchmark
        xfsprogs # mkfs.xfs, xfs_db, xfs_repair, xfs_io: the XFS tests
        f2fs-tools # mkfs.f2fs, sload.f2fs, fsck.f2fs, dump.f2fs: the F2FS probe's tests (no kernel driver needed)
        lvm2 # pvcreate, vgcreate, lvcreate -an: the LVM tests and the server benchmark
        android-sdk-libsparse-utils # img2simg, simg2img, simg_dump: the Android sparse image tests and benchmark
        fuse3 libfuse3-dev # tests/throttle-fuse (a card-speed FUSE file, test helper only): bench.sh's card rows, test-throttle-fuse
        # man pages and completions: rendered and checked (test-install)
        groff-base man-db zsh fish
        # the Debian package (scripts/package.sh)
        dpkg-dev debhelper lintian bash-completion
)

if [ "$(id -u)" != 0 ]; then
        echo "install-deps: run as root (it installs Debian packages with apt-get)" >&2
        exit 1
fi
missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
        echo "install-deps: all ${#packages[@]} packages are installed"
        exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
