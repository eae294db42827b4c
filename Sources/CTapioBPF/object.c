/* The embedded BPF object. The skeleton is generated (git-ignored): a fresh clone must run
 * scripts/gen-bpf.sh before `swift build`. */
#if __has_include("generated/tapio.skel.h")
#include "generated/tapio.skel.h"
#else
#error "Sources/CTapioBPF/generated/tapio.skel.h is missing: run `bash scripts/gen-bpf.sh` (needs bpftool, clang, libbpf-dev and kernel BTF) before `swift build`"
#endif
#include "ctapio_bpf.h"

const void *ctapio_bpf_object_bytes(size_t *size)
{
	return tapio_bpf__elf_bytes(size);
}

struct tapio_bpf *ctapio_skel_open(const char *btf_custom_path)
{
	/* Naming the kernel's own BTF as a custom path makes libbpf treat it as an override: when a CO-RE
	 * relocation names a type vmlinux lacks (our mm_rss_stat___old existence check on 6.2+ kernels), libbpf
	 * 1.1 then stops there instead of walking kernel-module BTF, which needs CAP_SYS_ADMIN
	 * (BPF_BTF_GET_NEXT_ID). Tapio's programs touch no module types, so nothing is lost. */
	LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = btf_custom_path);
	return tapio_bpf__open_opts(&opts);
}

struct bpf_object *ctapio_skel_object(struct tapio_bpf *skel)
{
	return skel->obj;
}

void ctapio_skel_set_page_shift(struct tapio_bpf *skel, uint32_t shift)
{
	skel->rodata->tapio_page_shift = shift;
}

int ctapio_skel_load(struct tapio_bpf *skel)
{
	return tapio_bpf__load(skel);
}

void ctapio_skel_destroy(struct tapio_bpf *skel)
{
	tapio_bpf__destroy(skel);
}
