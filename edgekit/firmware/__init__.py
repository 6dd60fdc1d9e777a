"""Device set-up: write Raspberry Pi OS images and Jetson root filesystems with the agent preinstalled, and
provision running Linux devices. The Python here prepares and checks everything on the host; the shell scripts in
``firmware_scripts/`` (shipped as ``edgekit.firmware_scripts``) do the work on the device.

One payload serves all three paths (see :mod:`edgekit.firmware.payload`): ``install-agent.sh`` installs it,
whether it arrives on a FAT boot partition, in a Jetson ``rootfs/`` or over ssh.
"""
