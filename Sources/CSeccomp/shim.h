/* libseccomp (Debian's libseccomp-dev): seccomp filters built and loaded through the library. */
#include <seccomp.h>
