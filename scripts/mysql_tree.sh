#!/bin/bash
# Build, once, a private tree holding Oracle's MySQL server and client tools from
# Debian's unstable suite (sid), and a directory of wrappers that run them.
#
#   scripts/mysql_tree.sh DIR      (make mysql: DIR is build/mysql-sid)
#
# Debian 12 has no MySQL package; sid has mysql-server-core and mysql-client-core,
# whose libraries are newer than this system's.  debootstrap unpacks them with
# their own C library into DIR/tree; DIR/bin/<tool> runs DIR/tree's <tool> through
# DIR/tree's own dynamic loader, so nothing of the tree is installed on the system
# and no chroot is needed to run it.
#
# The tree is built in a temporary directory beside DIR and renamed to DIR only
# when complete: an interrupted build leaves no DIR and is redone from scratch.
# When DIR exists, nothing is built.  Either way the last line printed is the
# version of the MySQL server in DIR.  sid moves, so the version is whatever sid
# served on the day the tree was built.
#
# MYSQL_SUITE and MYSQL_MIRROR choose another suite or mirror.

set -euo pipefail

dest=${1:?usage: $0 DIR}
suite=${MYSQL_SUITE:-sid}
mirror=${MYSQL_MIRROR:-http://deb.debian.org/debian}
packages=mysql-server-core,mysql-client-core
tools=(mysqld mysql mysqldump mysqlbinlog mysqladmin)

# Prints the version line of DIR's server through its wrapper.
print_version() {
    local line
    line=$("$1/bin/mysqld" --no-defaults --version)
    echo "mysql: MySQL ${line#*mysqld  } in $1"
}

if [ -d "$dest" ]; then
    print_version "$dest"
    exit 0
fi

parent=$(dirname "$dest")
mkdir -p "$parent"
# One build at a time: a second waits, then finds the tree built.  Holding the
# lock, any temporary directory left is a killed build's (SIGKILL runs no trap).
exec {lock}>"$parent/.$(basename "$dest").lock"
flock "$lock"
if [ -d "$dest" ]; then
    print_version "$dest"
    exit 0
fi
rm -rf "$parent/.$(basename "$dest")".??????

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "mysql: installing debootstrap"
    sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

work=$(mktemp -d "$parent/.$(basename "$dest").XXXXXX")
# An interrupted or failed build leaves nothing behind (the tree is about 650 MB).
trap 'rm -rf "$work"' EXIT
trap 'echo "mysql: interrupted: nothing kept; make mysql builds it again" >&2; exit 130' INT TERM

echo "mysql: debootstrap $suite with $packages into $dest (about 650 MB, a minute or two)"
log="$work/debootstrap.log"
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$work/tree" "$mirror" \
        >"$log" 2>&1; then
    # debootstrap's own last error line says which package or mirror failed.
    reason=$(grep -E '^(E|W):' "$log" | tail -n 1 || true)
    echo "mysql: $mirror did not serve $packages for Debian $suite: ${reason:-see the output of debootstrap}" >&2
    exit 1
fi

mkdir "$work/bin"
for tool in "${tools[@]}"; do
    case $tool in
        mysqld) path=usr/sbin/$tool ;;
        *) path=usr/bin/$tool ;;
    esac
    if [ ! -x "$work/tree/$path" ]; then
        echo "mysql: $suite's packages hold no $path" >&2
        exit 1
    fi
    # The wrapper finds the tree beside its own directory, so the rename below
    # (and moving the whole directory) keeps it working.  It adds nothing to the
    # command line nor to the environment: its arguments reach the tool unchanged.
    cat >"$work/bin/$tool" <<EOF
#!/bin/sh
# Runs MySQL's $tool from the tree beside this directory (scripts/mysql_tree.sh).
tree=\$(dirname "\$(dirname "\$(readlink -f "\$0")")")/tree
exec "\$tree/lib64/ld-linux-x86-64.so.2" \\
    --library-path "\$tree/usr/lib/x86_64-linux-gnu:\$tree/lib/x86_64-linux-gnu" \\
    "\$tree/$path" "\$@"
EOF
    chmod 755 "$work/bin/$tool"
done

print_version "$work" >/dev/null  # the tree runs before it is called complete
rm -f "$log"
mv -T "$work" "$dest"
trap - EXIT
print_version "$dest"
