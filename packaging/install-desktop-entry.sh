#!/usr/bin/env bash
# Add cxr-desktop to the desktop's application menu for the current user (Linux).
#
#   bash packaging/install-desktop-entry.sh                  # runs `cxr-desktop` from PATH
#   bash packaging/install-desktop-entry.sh --exec /opt/cxr-desktop/cxr-desktop   # a bundle
#   bash packaging/install-desktop-entry.sh --uninstall
#
# Copies packaging/cxr-desktop.desktop to $XDG_DATA_HOME/applications and
# resources/icons/cxr-desktop.png to $XDG_DATA_HOME/icons/hicolor/256x256/apps
# ($XDG_DATA_HOME defaults to ~/.local/share). Nothing needs root or the network.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
APPS=$DATA_HOME/applications
ICONS=$DATA_HOME/icons/hicolor
ENTRY=$APPS/cxr-desktop.desktop
ICON=$ICONS/256x256/apps/cxr-desktop.png

exec_path=""
uninstall=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --exec) exec_path=${2:?--exec needs the path of the cxr-desktop program}; shift ;;
        --uninstall) uninstall=1 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "install-desktop-entry.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

refresh_caches() {
    # Menus find the entry without it too, only later; a failure is not an error. (No icon
    # cache is made for the user's icon folder: a stale one would hide icons added later.)
    if command -v update-desktop-database >/dev/null; then
        update-desktop-database "$APPS" 2>/dev/null || true
    fi
}

if [[ $uninstall == 1 ]]; then
    rm -f "$ENTRY" "$ICON"
    refresh_caches
    echo "removed $ENTRY and $ICON"
    exit 0
fi

if [[ -n $exec_path ]]; then
    exec_path=$(realpath "$exec_path")
    if [[ ! -x $exec_path ]]; then
        echo "install-desktop-entry.sh: $exec_path is not an executable program" >&2
        exit 1
    fi
    if [[ $exec_path =~ [^A-Za-z0-9_./+@\ -] ]]; then
        echo "install-desktop-entry.sh: $exec_path: use a path of letters, digits, spaces" \
             "and _ . / + @ -" >&2
        exit 1
    fi
fi

install -D -m 644 "$ROOT/packaging/cxr-desktop.desktop" "$ENTRY"
install -D -m 644 "$ROOT/resources/icons/cxr-desktop.png" "$ICON"

if [[ -n $exec_path ]]; then
    quoted=$exec_path
    [[ $exec_path == *" "* ]] && quoted="\"$exec_path\""
    # Keep the arguments after the program (field codes such as %F), replace the program.
    # sed's replacement treats & and \ specially; the check above keeps both out.
    sed -i -e "s|^Exec=[^ ]*|Exec=$quoted|" -e "s|^TryExec=.*|TryExec=$exec_path|" "$ENTRY"
fi

refresh_caches
echo "installed $ENTRY and $ICON"
