/* libcap (Debian's libcap-dev): capability sets, bounding set and ambient set through the library. */
#include <sys/capability.h>
