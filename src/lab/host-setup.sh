# clusterctl lab: builds a lab host's root. Run by the host's PID 1
# (`clusterctl lab init-host`) inside the host's fresh mount, UTS, IPC, PID and
# network namespaces, before anything else runs there. Embedded in the binary.
#
# In:  LAB_HOST (hostname), LAB_MNT (an empty directory: mount point of the
#      host's private tmpfs), LAB_FILES (a tree copied over the new root).
# Out: the calling process's root is the host's overlay; nothing of this is
#      visible outside the host's mount namespace.
# shellcheck shell=sh
set -eu
M=$LAB_MNT
# The upper layer lives on a tmpfs mounted only in this namespace: no other
# host, and not the machine, can see it.
mount -t tmpfs -o mode=0755,size=1g "lab-$LAB_HOST" "$M"
mkdir -p "$M/upper" "$M/work" "$M/root"
mount -t overlay -o "lowerdir=/,upperdir=$M/upper,workdir=$M/work" "lab-$LAB_HOST" "$M/root"
R=$M/root

# Fresh kernel filesystems. Kernel-wide sysctls read-only; per-netns ones
# (net.*) writable.
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
mount --bind "$R/proc/sys/net" "$R/proc/sys/net"
mount -o remount,bind,rw "$R/proc/sys/net"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m run "$R/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$R/tmp"
mount -t tmpfs -o mode=0755,nosuid,size=1m dev "$R/dev"
for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
  # shellcheck disable=SC2086
  set -- $n
  mknod -m 0666 "$R/dev/$1" c "$2" "$3"
done
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
mkdir -p "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$R/dev/shm"
mount -t mqueue mqueue "$R/dev/mqueue" 2>/dev/null || true

# What the machine has that a fresh host must not inherit: its identity, its
# SSH keys and drop-ins, its resolver, its root's dotfiles and DHCP leases.
rm -rf "$R/etc/ssh/ssh_host_"* "$R/etc/ssh/sshd_config.d/"* "$R/root/.ssh" \
  "$R/root/.bash_profile" "$R/root/.bash_login" "$R/root/.bash_logout" \
  "$R/etc/resolv.conf" "$R/etc/hostname" "$R/etc/machine-id" "$R/etc/hosts" \
  "$R/var/lib/dhcp/"* "$R/etc/clusterctl-lab"
cp -a "$LAB_FILES/." "$R/"
if [ -e "$R/var/lib/dbus" ]; then ln -sf /etc/machine-id "$R/var/lib/dbus/machine-id" 2>/dev/null || true; fi

hostname "$LAB_HOST"
# Make the overlay the root of this namespace and drop the machine's tree.
cd "$R"
pivot_root . .
umount -l .
cd /
