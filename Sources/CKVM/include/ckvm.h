// CKVM: <linux/kvm.h> for Swift — ioctl numbers (function-like macros Swift cannot import) and
// the structs, plus thin wrappers. Filled in by the KVM work (issue 4).
#ifndef CKVM_H
#define CKVM_H
#include <linux/kvm.h>
#endif
