# shellcheck shell=sh
# mmdebstrap's customize hook for the lab's systemd images (lab/image.rs);
# $1 is the new root. Sent after quoted assignments of mirror (the lab
# mirror's apt URL) and stack (ifupdown, networkd or networkmanager). Part
# of the image's recipe: any change here rebuilds the cached images.
# shellcheck disable=SC2154 # mirror and stack are assigned before this text
set -e
# No shared identity: every host gets its own keys, machine-id and name.
rm -f "$1"/etc/ssh/ssh_host_* "$1"/etc/hostname
: > "$1"/etc/machine-id
# apt reads the lab's mirror on the wan host (local, unsigned: trusted=yes).
rm -f "$1"/etc/apt/sources.list.d/*
echo "deb [trusted=yes] $mirror ./" > "$1"/etc/apt/sources.list
case $stack in
  ifupdown)
    printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' > "$1"/etc/network/interfaces
    ;;
  networkd)
    systemctl --root="$1" enable systemd-networkd.service systemd-resolved.service
    ln -sf ../run/systemd/resolve/stub-resolv.conf "$1"/etc/resolv.conf
    ;;
  networkmanager)
    mkdir -p "$1"/etc/NetworkManager/conf.d
    printf '[main]\nno-auto-default=*\n' > "$1"/etc/NetworkManager/conf.d/lab.conf
    ;;
  *) echo "customize.sh: unknown stack $stack" >&2; exit 1 ;;
esac
