"""Components on a libvirt host: networks, guest images, VMs, and tiers, registries and
container hosts made of VMs."""
