// Files written into the image tree. Kept as data so that the builder code
// stays about *how* to assemble a disk and this file about *what* the guest runs.

/** sshd_config.d is included at the top of Debian's sshd_config, so the first value wins. */
export const SSHD_CONFIG = `# Djinn image requirements (root with an empty password, env from the runner)
PermitRootLogin yes
PermitEmptyPasswords yes
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
GSSAPIAuthentication no
# Without PAM an empty-password login works and each connection is faster under emulation.
UsePAM no
UseDNS no
AcceptEnv *
PermitUserEnvironment yes
`;

/** cloud flavor: as Debian's cloud images, root logs in by key only (the key comes from cloud-init). */
export const CLOUD_SSHD_CONFIG = `# Djinn cloud flavor: key login only, keys written by cloud-init
PermitRootLogin prohibit-password
PasswordAuthentication no
PubkeyAuthentication yes
KbdInteractiveAuthentication no
GSSAPIAuthentication no
UseDNS no
AcceptEnv *
PermitUserEnvironment yes
`;

/**
 * cloud flavor: our oneshot network unit configures the NIC (Debian's cloud
 * images use ifupdown/netplan, which cost seconds under emulation); NoCloud is
 * the only datasource that can exist under QEMU here.
 */
export const CLOUD_CFG = `# Djinn cloud flavor
datasource_list: [NoCloud, None]
network:
  config: disabled
`;

/**
 * Credits a seed baked in at build time to the kernel RNG (ioctl RNDADDENTROPY):
 * software-emulated CPUs have no RDRAND, and sshd would block in getrandom()
 * for seconds. CI-only machines: every boot mixes the same seed with boot noise.
 */
export const SEED_SCRIPT = `#!/usr/bin/perl
open(my $in, "<", "/var/lib/djinn-seed") or exit 0;
read($in, my $seed, 512);
open(my $rng, ">", "/dev/urandom") or exit 0;
ioctl($rng, 0x40085203, pack("ii", length($seed) * 8, length($seed)) . $seed) or warn "djinn-seed: $!\\n";
`;

/** busybox udhcpc's hook: applies the lease QEMU's user network hands out (10.0.2.15, gateway 10.0.2.2, DNS 10.0.2.3). */
export const UDHCPC_SCRIPT = `#!/bin/busybox sh
case "$1" in
  deconfig)
    ip link set "$interface" up
    ip addr flush dev "$interface"
    ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "djinn: $interface has address $ip"
    ;;
esac
exit 0
`;

/** Brings up the virtio NIC by DHCP; falls back to QEMU's fixed user-network addresses. */
export const NET_UP = `#!/bin/busybox sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
[ -e /sys/class/net/eth0 ] || modprobe virtio_net 2>/dev/null
ip link set lo up
ip link set eth0 up
if ! udhcpc -i eth0 -n -q -f -t 4 -T 1 -s /etc/djinn/udhcpc.script >/dev/null 2>&1; then
  echo "djinn: DHCP failed, using QEMU's user-network defaults"
  ip addr add 10.0.2.15/24 dev eth0
  ip route replace default via 10.0.2.2
  echo "nameserver 10.0.2.3" > /etc/resolv.conf
fi
`;

/** fast flavor: busybox init runs this, then keeps sshd running. */
export const FAST_INITTAB = `::sysinit:/etc/djinn/rc
::respawn:/usr/sbin/sshd -D -e
::ctrlaltdel:/bin/busybox reboot -f
::shutdown:/bin/busybox sync
`;

/** fast flavor's whole boot: only busybox applets, which run in-process (fast under emulation). */
export const FAST_RC = `#!/bin/busybox sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q " /dev " /proc/mounts || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mkdir -p /run/sshd /run/lock /var/log
ln -sf /proc/self/fd /dev/fd
/usr/local/sbin/djinn-seed &
hostname -F /etc/hostname
/etc/djinn/net-up
echo "djinn: starting sshd"
`;

/** systemd flavor: network by a oneshot unit (systemd-networkd costs seconds under emulation). */
export const NET_UNIT = `[Unit]
Description=Network for QEMU's user network (DHCP)
DefaultDependencies=no
After=systemd-udevd.service
Before=network.target network-online.target
Wants=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/etc/djinn/net-up
[Install]
WantedBy=multi-user.target network-online.target
`;

/** ssh.service without its `sshd -t` pre-check (a whole extra exec) and with the seed credited first. */
export const SSH_DROPIN = `[Service]
ExecStartPre=
ExecStartPre=-/usr/local/sbin/djinn-seed
ExecStartPre=/usr/bin/mkdir -p /run/sshd
`;

/** Units that only cost boot time in a throwaway CI machine. */
export const MASKED_UNITS = [
  'e2scrub_reap.service',
  'getty-static.service',
  'getty@tty1.service',
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'dpkg-db-backup.timer',
  'e2scrub_all.timer',
  'fstrim.timer',
  'systemd-networkd-wait-online.service',
  'man-db.timer',
];

/**
 * The initrd's /init: the cloud kernel has virtio as modules and no
 * devtmpfs automount, so load them, mount the root and switch to it.
 * Failures are printed to the serial console before the kernel stops.
 */
export const INITRD_INIT = `#!/bin/busybox sh
B=/bin/busybox
$B mount -t devtmpfs devtmpfs /dev
$B mount -t proc proc /proc
for m in $($B cat /modules.order); do $B insmod /modules/$m; done
R=/dev/vda2
I=/sbin/init
for o in $($B cat /proc/cmdline); do
  case $o in root=/dev/*) R=\${o#root=};; init=*) I=\${o#init=};; esac
done
i=0
while [ ! -b $R ] && [ $i -lt 200 ]; do $B usleep 50000; i=$((i+1)); done
if ! $B mount -o rw,noatime $R /newroot; then
  echo "djinn initrd: cannot mount the root file system $R"
  exec $B sh
fi
$B umount /proc
$B mount --move /dev /newroot/dev
exec $B switch_root /newroot $I
`;
