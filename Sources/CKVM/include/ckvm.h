// CKVM: <linux/kvm.h> for Swift.
//
// The ioctl request numbers are function-like macros (_IO/_IOR/_IOW/_IOWR) that Swift cannot
// import, so each one used by the KVM target is copied into a `static const unsigned long` here.
// `ioctl(2)` itself is variadic, so Swift calls it through `ckvm_ioctl`/`ckvm_ioctl_value`.
// `struct kvm_cpuid2` and `struct kvm_msrs` end in flexible arrays; the helpers at the bottom
// allocate and index them. Source of every number: Documentation/virt/kvm/api.rst and
// include/uapi/linux/kvm.h.
#ifndef CKVM_H
#define CKVM_H
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

// System ioctls (on the /dev/kvm fd), api.rst §4.
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;

// VM ioctls.
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CKVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned long CKVM_IRQ_LINE = KVM_IRQ_LINE;
static const unsigned long CKVM_REGISTER_COALESCED_MMIO = KVM_REGISTER_COALESCED_MMIO;
static const unsigned long CKVM_UNREGISTER_COALESCED_MMIO = KVM_UNREGISTER_COALESCED_MMIO;

// vCPU ioctls.
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CKVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CKVM_SET_LAPIC = KVM_SET_LAPIC;
static const unsigned long CKVM_GET_MP_STATE = KVM_GET_MP_STATE;
static const unsigned long CKVM_SET_MP_STATE = KVM_SET_MP_STATE;

/// KVM_MAX_CPUID_ENTRIES since Linux 5.9 (arch/x86/include/asm/kvm_host.h); a smaller `nent`
/// makes KVM_GET_SUPPORTED_CPUID fail with E2BIG.
static const uint32_t CKVM_MAX_CPUID_ENTRIES = 256;

/// ioctl(2) with a pointer argument; returns -1 and sets errno on failure.
int ckvm_ioctl(int fd, unsigned long request, void *arg);
/// ioctl(2) with an integer argument (KVM_CREATE_VCPU, KVM_SET_TSS_ADDR, KVM_CHECK_EXTENSION …).
int ckvm_ioctl_value(int fd, unsigned long request, unsigned long value);

/// Hands a reference to `fd` (a VM file) to a new io_uring instance's fixed-file table
/// (io_uring_setup(2) with 1 entry, IORING_REGISTER_FILES) and returns the ring's descriptor
/// (close-on-exec), or -1 with errno (ENOSYS, EPERM where io_uring is disabled). When the process
/// later exits, its own references go with it, and the ring's is dropped by the kernel's io_uring
/// exit work in a worker thread: the VM's destruction (kvm_destroy_vm and its SRCU grace periods,
/// 10-20 ms on the hosts measured in BENCHMARKS.md) runs there instead of in the exit the caller
/// of the process waits for.
int ckvm_defer_release(int fd);

/// The coalesced MMIO/PIO ring (`struct kvm_coalesced_mmio_ring`, api.rst 4.116
/// KVM_(UN)REGISTER_COALESCED_MMIO): the kernel appends the guest's writes to registered zones at
/// `last` instead of exiting; the VMM applies entries `first..<last` in order and then advances
/// `first`. The ring is one page of every vCPU's mmap, at the page offset KVM_CHECK_EXTENSION
/// (KVM_CAP_COALESCED_MMIO) returns, shared by all vCPUs of the VM.
/// Number of entries in the ring: (page size - header) / entry size (KVM_COALESCED_MMIO_MAX).
uint32_t ckvm_coalesced_ring_capacity(void);
/// `ring->last`, read with acquire ordering (the entries before it are complete).
uint32_t ckvm_coalesced_ring_last(const struct kvm_coalesced_mmio_ring *ring);
/// `ring->first`.
uint32_t ckvm_coalesced_ring_first(const struct kvm_coalesced_mmio_ring *ring);
/// Entry `i` of the ring.
const struct kvm_coalesced_mmio *ckvm_coalesced_ring_entry(const struct kvm_coalesced_mmio_ring *ring, uint32_t i);
/// Sets `ring->first` with release ordering (the entries before it may be reused).
void ckvm_coalesced_ring_set_first(struct kvm_coalesced_mmio_ring *ring, uint32_t first);

/// A zeroed `struct kvm_cpuid2` with room for `nent` entries and `nent` set; free with free(3).
struct kvm_cpuid2 *ckvm_cpuid2_alloc(uint32_t nent);
/// Entry `i` of a `struct kvm_cpuid2`.
struct kvm_cpuid_entry2 *ckvm_cpuid2_entry(struct kvm_cpuid2 *cpuid, uint32_t i);

/// A zeroed `struct kvm_msrs` with room for `nmsrs` entries and `nmsrs` set; free with free(3).
struct kvm_msrs *ckvm_msrs_alloc(uint32_t nmsrs);
/// Entry `i` of a `struct kvm_msrs`.
struct kvm_msr_entry *ckvm_msrs_entry(struct kvm_msrs *msrs, uint32_t i);

// `struct kvm_run` keeps its per-exit data in an anonymous union; these read it by name.
/// `run->io`: KVM_EXIT_IO (direction, size, port, count, data_offset).
uint8_t ckvm_run_io_direction(const struct kvm_run *run);
uint8_t ckvm_run_io_size(const struct kvm_run *run);
uint16_t ckvm_run_io_port(const struct kvm_run *run);
uint32_t ckvm_run_io_count(const struct kvm_run *run);
uint64_t ckvm_run_io_data_offset(const struct kvm_run *run);
/// `run->mmio`: KVM_EXIT_MMIO.
uint64_t ckvm_run_mmio_phys_addr(const struct kvm_run *run);
uint8_t *ckvm_run_mmio_data(struct kvm_run *run);
uint32_t ckvm_run_mmio_len(const struct kvm_run *run);
uint8_t ckvm_run_mmio_is_write(const struct kvm_run *run);
/// `run->fail_entry.hardware_entry_failure_reason` and `.cpu`: KVM_EXIT_FAIL_ENTRY.
uint64_t ckvm_run_fail_entry_reason(const struct kvm_run *run);
uint32_t ckvm_run_fail_entry_cpu(const struct kvm_run *run);
/// `run->internal.suberror`, `.ndata` and `.data[i]`: KVM_EXIT_INTERNAL_ERROR.
uint32_t ckvm_run_internal_suberror(const struct kvm_run *run);
uint32_t ckvm_run_internal_ndata(const struct kvm_run *run);
uint64_t ckvm_run_internal_data(const struct kvm_run *run, uint32_t i);
/// `run->system_event.type` and `.ndata`/`.data[0]` (flags): KVM_EXIT_SYSTEM_EVENT.
uint32_t ckvm_run_system_event_type(const struct kvm_run *run);
uint64_t ckvm_run_system_event_flags(const struct kvm_run *run);

#endif
