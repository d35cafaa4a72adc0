// glibc's malloc tuning (mallopt), which Swift's Glibc module does not expose. Used by the trainer only.
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif
