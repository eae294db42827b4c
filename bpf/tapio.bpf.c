/* The license and the tunables fixed before load; the maps live in tapio_common.bpf.h. */
#include "tapio_common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader from sysconf(_SC_PAGESIZE) between open and load. */
const volatile __u32 tapio_page_shift = 12;
