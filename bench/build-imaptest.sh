#!/bin/sh
# Build Dovecot's imaptest (for bench/imaptest.py) into bench/imaptest/.
#
# Commit 924f619 ("Update git-version-gen", 2022-03-09) is the newest that
# builds against Debian 12's Dovecot 2.3.19 headers: the next, ba1d6ab, uses
# Dovecot 2.4's str_begins(h, n, &suffix).  One local change: Debian's
# security update (2.3.19.1+dfsg1-2.1+deb12u7) gave imap_parser_create() a
# fourth argument (struct imap_parser_params, a list-depth limit); imaptest
# passes three, so NULL (no limit, as before) is added at its three calls.
#
# usage: bench/build-imaptest.sh        (as root it installs the build packages)
# env:   IMAPTEST_GIT  a clone or URL of https://github.com/dovecot/imaptest
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=${IMAPTEST_GIT:-https://github.com/dovecot/imaptest.git}
commit=924f619
if [ "$(id -u)" = 0 ]; then
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        dovecot-dev dovecot-imapd autoconf automake libtool pkg-config make gcc libc6-dev git
fi
src=$here/imaptest
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/repo"
rm -rf "$src"
mkdir -p "$src"
git -C "$work/repo" archive "$commit" | tar -x -C "$src"
cd "$src"
echo "0.0.0-$commit" > version   # git-version-gen needs it outside a git tree
sed -i 's/imap_parser_create(\(.*\), (size_t)-1);/imap_parser_create(\1, (size_t)-1, NULL);/' \
    src/commands.c src/imap-client.c src/test-parser.c
./autogen.sh
./configure --with-dovecot=/usr/lib/dovecot
make -j"$(nproc)"
echo "built $src/src/imaptest"
