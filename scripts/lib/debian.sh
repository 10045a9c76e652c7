# Installing what a script needs from Debian's packages, for the project's scripts to source.
# The sourcing script defines `log` first; `need COMMAND PACKAGE` installs PACKAGE when COMMAND
# is missing, with one `apt-get update` per run at most.

export DEBIAN_FRONTEND=noninteractive

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo --non-interactive "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

need() { # need COMMAND DEBIAN-PACKAGE
    if command -v "$1" >/dev/null 2>&1; then
        return
    fi
    log "installing $1 (Debian package $2)"
    apt_install "$2"
}
