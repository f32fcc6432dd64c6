/// The thin KVM monitor (issue 4): VMs on /dev/kvm without QEMU.
public enum KVMModule {}
