// CKVM helpers: ioctl(2) without varargs, the flexible-array structs, and kvm_run's union.
#include "ckvm.h"

#include <stdlib.h>
#include <sys/ioctl.h>

int ckvm_ioctl(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }

int ckvm_ioctl_value(int fd, unsigned long request, unsigned long value) { return ioctl(fd, request, value); }

struct kvm_cpuid2 *ckvm_cpuid2_alloc(uint32_t nent) {
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(struct kvm_cpuid_entry2));
    if (c) c->nent = nent;
    return c;
}

struct kvm_cpuid_entry2 *ckvm_cpuid2_entry(struct kvm_cpuid2 *cpuid, uint32_t i) { return &cpuid->entries[i]; }

struct kvm_msrs *ckvm_msrs_alloc(uint32_t nmsrs) {
    struct kvm_msrs *m = calloc(1, sizeof(*m) + (size_t)nmsrs * sizeof(struct kvm_msr_entry));
    if (m) m->nmsrs = nmsrs;
    return m;
}

struct kvm_msr_entry *ckvm_msrs_entry(struct kvm_msrs *msrs, uint32_t i) { return &msrs->entries[i]; }

uint8_t ckvm_run_io_direction(const struct kvm_run *run) { return run->io.direction; }
uint8_t ckvm_run_io_size(const struct kvm_run *run) { return run->io.size; }
uint16_t ckvm_run_io_port(const struct kvm_run *run) { return run->io.port; }
uint32_t ckvm_run_io_count(const struct kvm_run *run) { return run->io.count; }
uint64_t ckvm_run_io_data_offset(const struct kvm_run *run) { return run->io.data_offset; }

uint64_t ckvm_run_mmio_phys_addr(const struct kvm_run *run) { return run->mmio.phys_addr; }
uint8_t *ckvm_run_mmio_data(struct kvm_run *run) { return run->mmio.data; }
uint32_t ckvm_run_mmio_len(const struct kvm_run *run) { return run->mmio.len; }
uint8_t ckvm_run_mmio_is_write(const struct kvm_run *run) { return run->mmio.is_write; }

uint64_t ckvm_run_fail_entry_reason(const struct kvm_run *run) {
    return run->fail_entry.hardware_entry_failure_reason;
}
uint32_t ckvm_run_fail_entry_cpu(const struct kvm_run *run) { return run->fail_entry.cpu; }

uint32_t ckvm_run_internal_suberror(const struct kvm_run *run) { return run->internal.suberror; }
uint32_t ckvm_run_internal_ndata(const struct kvm_run *run) { return run->internal.ndata; }
uint64_t ckvm_run_internal_data(const struct kvm_run *run, uint32_t i) {
    return i < 16 ? run->internal.data[i] : 0;
}

uint32_t ckvm_run_system_event_type(const struct kvm_run *run) { return run->system_event.type; }
uint64_t ckvm_run_system_event_flags(const struct kvm_run *run) {
    return run->system_event.ndata > 0 ? run->system_event.data[0] : 0;
}

/* ---- deferred release of a VM file (see ckvm.h) ---- */
#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int ckvm_defer_release(int fd) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    int ring = (int)syscall(__NR_io_uring_setup, 1, &params);
    if (ring < 0) return -1;
    int files[1] = {fd};
    if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_FILES, files, 1) < 0) {
        int e = errno;
        close(ring);
        errno = e;
        return -1;
    }
    return ring;
}

uint32_t ckvm_coalesced_ring_capacity(void) {
    long page = sysconf(_SC_PAGESIZE);
    return (uint32_t)(((size_t)page - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio));
}

uint32_t ckvm_coalesced_ring_last(const struct kvm_coalesced_mmio_ring *ring) {
    return __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
}

uint32_t ckvm_coalesced_ring_first(const struct kvm_coalesced_mmio_ring *ring) {
    return __atomic_load_n(&ring->first, __ATOMIC_RELAXED);
}

const struct kvm_coalesced_mmio *ckvm_coalesced_ring_entry(const struct kvm_coalesced_mmio_ring *ring, uint32_t i) {
    return &ring->coalesced_mmio[i];
}

void ckvm_coalesced_ring_set_first(struct kvm_coalesced_mmio_ring *ring, uint32_t first) {
    __atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
}
