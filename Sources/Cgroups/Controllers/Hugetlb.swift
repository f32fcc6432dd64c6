import OCI

/// Writing `linux.resources.hugepageLimits` (bytes per page size).
/// v2: cgroup-v2.rst "HugeTLB Interface Files" (`hugetlb.<size>.max`); v1:
/// cgroup-v1/hugetlb.rst (`hugetlb.<size>.limit_in_bytes`). Sizes are spelled as the kernel
/// names the files: "2MB", "1GB", "64KB" (`mm/hugetlb_cgroup.c` `mem_fmt`).
enum HugetlbLimits {
    static func apply(_ limits: [Spec.Resources.HugepageLimit], to dir: Cgroup.Directory) throws(CgroupError) {
        for limit in limits {
            let size = limit.pageSize
            let digits = size.dropLast(2)
            guard size.hasSuffix("KB") || size.hasSuffix("MB") || size.hasSuffix("GB"), !digits.isEmpty,
                digits.allSatisfy({ $0 >= "0" && $0 <= "9" })
            else {
                throw .invalidResource(
                    setting: "hugepage limit for page size \"\(size)\"",
                    reason: "page sizes are written like the kernel's file names: 2MB, 1GB, 64KB")
            }
            let file = dir.version == .v2 ? "hugetlb.\(size).max" : "hugetlb.\(size).limit_in_bytes"
            guard dir.has(file) else {
                throw .invalidResource(
                    setting: "hugepage limit for page size \(size)",
                    reason: "\(dir.file(file)) does not exist: this kernel has no \(size) huge pages "
                        + "(see /sys/kernel/mm/hugepages)")
            }
            try dir.write(file, String(limit.limit))
        }
    }
}
